# Driven by tests/backend_identity.rs: who the proxy is towards Ceph RGW for each
# client. Signed clients are boto3 with their own proxy keys; anonymous ones are boto3
# with UNSIGNED and raw http.client requests; what Ceph stores is read directly with
# the backend users' own keys (or unsigned). Every check that fails exits non-zero
# with what was seen.
#   backend_identity.py SCENARIO JSON   (the JSON names endpoints, keys and buckets)
import http.client
import json
import socket
import sys
import urllib.parse
import xml.etree.ElementTree as ET

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

PATTERN = b"SEALGATE-PATTERN"
DATA = PATTERN * 4096  # 64 KiB: one full segment and a little more with the tag


def check(ok, what):
    if not ok:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def s3(endpoint, keys=None):
    signing = {} if keys else {"signature_version": UNSIGNED}
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=keys["access_key"] if keys else None,
        aws_secret_access_key=keys["secret_key"] if keys else None,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            **signing,
        ),
    )


def refused(what, call, status=403, code="AccessDenied"):
    """Runs call, which must fail with `status` and `code`; returns the error response."""
    try:
        call()
    except ClientError as e:
        got = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        check(got[0] == status and (code is None or got[1] == code), f"{what}: {got}")
        return e.response
    check(False, f"{what}: succeeded, expected {status} {code}")


def raw(endpoint, method, path, body=b"", headers=None):
    """One request exactly as given: no signature, no SDK behaviour."""
    u = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.putrequest(method, path, skip_accept_encoding=True)
    headers = dict(headers or {})
    chunked = headers.get("Transfer-Encoding") == "chunked"
    if not chunked and method in ("PUT", "POST"):
        headers.setdefault("Content-Length", str(len(body)))
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    if chunked:
        conn.send(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    elif body:
        conn.send(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def expect_continue(endpoint, path, body):
    """An unsigned PUT with `Expect: 100-continue`: the status of the first answer
    (100 or a final one); after a 100 the body is sent and the final status returned
    as well."""
    u = urllib.parse.urlparse(endpoint)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Length: {len(body)}\r\n"
            "x-amz-acl: public-read\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        first = s.recv(65536).decode(errors="replace")
        status = first.split(" ")[1]
        if status != "100":
            return status, None
        s.sendall(body)
        rest = first.split("\r\n\r\n", 1)[1]
        while "\r\n" not in rest:
            rest += s.recv(65536).decode(errors="replace")
        return status, rest.split(" ")[1]


def error_code(data):
    try:
        return ET.fromstring(data).findtext("Code")
    except ET.ParseError:
        return None


def exists(client, bucket, key):
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, f"HEAD {key}: {e}")
        return False


def sealed(what, stored, headers):
    """What Ceph holds is ciphertext with the proxy's envelope, not the plaintext."""
    check(stored != DATA and PATTERN not in stored, f"{what}: plaintext at rest")
    check(len(stored) > len(DATA), f"{what}: {len(stored)} bytes at rest, no tags")
    check("x-amz-meta-sealgate-envelope" in headers, f"{what}: no envelope at rest")


def from_backend(what, headers):
    """An error relayed from Ceph keeps Ceph's request id (`tx…`); the proxy's own
    errors carry the proxy's (16 hex digits)."""
    rid = headers.get("x-amz-request-id", "")
    check(rid.startswith("tx"), f"{what}: request id {rid!r} is not Ceph's")


def from_proxy(what, headers):
    rid = headers.get("x-amz-request-id", "")
    check(len(rid) == 16 and not rid.startswith("tx"), f"{what}: request id {rid!r} is not the proxy's")


def isolated(cfg):
    """Client A is backend user main, client B backend user alt: B reaches none of A's
    private bucket through the proxy, and what B writes is B's and sealed."""
    a, b = s3(cfg["proxy"], cfg["a"]), s3(cfg["proxy"], cfg["b"])
    bucket_a, bucket_b = cfg["bucket_a"], cfg["bucket_b"]
    a.create_bucket(Bucket=bucket_a)
    a.put_object(Bucket=bucket_a, Key="secret", Body=DATA)
    check(a.get_object(Bucket=bucket_a, Key="secret")["Body"].read() == DATA, "A reads its own")
    b.create_bucket(Bucket=bucket_b)

    err = refused("B GetObject of A's object", lambda: b.get_object(Bucket=bucket_a, Key="secret"))
    from_backend("B GetObject of A's object", err["ResponseMetadata"]["HTTPHeaders"])
    refused("B HeadObject of A's object", lambda: b.head_object(Bucket=bucket_a, Key="secret"), code=None)
    refused("B ListObjectsV2 of A's bucket", lambda: b.list_objects_v2(Bucket=bucket_a))
    refused("B ListObjects of A's bucket", lambda: b.list_objects(Bucket=bucket_a))
    refused(
        "B CopyObject from A's bucket",
        lambda: b.copy_object(
            Bucket=bucket_b, Key="stolen", CopySource={"Bucket": bucket_a, "Key": "secret"}
        ),
    )
    check(not exists(b, bucket_b, "stolen"), "the refused copy stored nothing")
    refused(
        "B PutObject into A's bucket",
        lambda: b.put_object(Bucket=bucket_a, Key="planted", Body=DATA),
    )
    check(not exists(a, bucket_a, "planted"), "the refused PUT stored nothing")

    b.put_object(Bucket=bucket_b, Key="mine", Body=DATA)
    check(b.get_object(Bucket=bucket_b, Key="mine")["Body"].read() == DATA, "B reads its own")
    listed = b.list_objects_v2(Bucket=bucket_b).get("Contents", [])
    check([(o["Key"], o["Size"]) for o in listed] == [("mine", len(DATA))], f"B lists {listed}")
    refused("A GetObject of B's object", lambda: a.get_object(Bucket=bucket_b, Key="mine"))

    # At rest: B's bucket and object belong to backend user alt, sealed.
    alt = s3(cfg["ceph"], cfg["ceph_alt"])
    got = alt.get_object(Bucket=bucket_b, Key="mine")
    sealed("B's object read from Ceph as alt", got["Body"].read(), got["ResponseMetadata"]["HTTPHeaders"])
    main = s3(cfg["ceph"], cfg["ceph_main"])
    refused("Ceph user main reads B's object", lambda: main.get_object(Bucket=bucket_b, Key="mine"))
    print("isolated: ok")


def shared(cfg):
    """B without a backend pair of its own is the default identity (main, as A): it
    reads, lists and copies A's private bucket, which the mapping alone prevents."""
    a, b = s3(cfg["proxy"], cfg["a"]), s3(cfg["proxy"], cfg["b"])
    bucket = cfg["bucket_a"]
    a.create_bucket(Bucket=bucket)
    a.put_object(Bucket=bucket, Key="secret", Body=DATA)
    check(b.get_object(Bucket=bucket, Key="secret")["Body"].read() == DATA, "B reads A's object")
    keys = [o["Key"] for o in b.list_objects_v2(Bucket=bucket).get("Contents", [])]
    check(keys == ["secret"], f"B lists A's bucket: {keys}")
    b.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "secret"})
    check(a.get_object(Bucket=bucket, Key="copied")["Body"].read() == DATA, "B's copy")
    print("shared: ok")


def public_buckets(a, cfg):
    """A public-read-write bucket holding one object, and a private one holding one."""
    pub, priv = cfg["bucket_pub"], cfg["bucket_priv"]
    a.create_bucket(Bucket=pub, ACL="public-read-write")
    a.put_object(Bucket=pub, Key="by-owner", Body=DATA, ACL="public-read")
    a.create_bucket(Bucket=priv)
    a.put_object(Bucket=priv, Key="secret", Body=DATA)
    return pub, priv


def refuse(cfg):
    """auth.anonymous = "refuse": unsigned requests are the proxy's 403, even where the
    backend's ACL would let anyone in."""
    proxy = cfg["proxy"]
    a = s3(proxy, cfg["a"])
    pub, _ = public_buckets(a, cfg)
    status, headers, data = raw(proxy, "PUT", f"/{pub}/anon", DATA, {"x-amz-acl": "public-read"})
    check(status == 403 and error_code(data) == "AccessDenied", f"unsigned PUT: {status} {data[:200]}")
    from_proxy("unsigned PUT", headers)
    check(not exists(a, pub, "anon"), "the refused unsigned PUT stored nothing")
    status, headers, data = raw(proxy, "GET", f"/{pub}/by-owner")
    check(status == 403 and error_code(data) == "AccessDenied", f"unsigned GET: {status} {data[:200]}")
    from_proxy("unsigned GET", headers)
    status, _, data = raw(proxy, "GET", f"/{pub}")
    check(status == 403, f"unsigned ListObjects: {status} {data[:200]}")
    # Directly, Ceph would have served it: the refusal is the proxy's.
    status, _, _ = raw(cfg["ceph"], "GET", f"/{pub}/by-owner")
    check(status == 200, f"unsigned GET directly from Ceph: {status}")
    print("refuse: ok")


def forward(cfg):
    """auth.anonymous = "forward": unsigned requests reach Ceph unsigned, sealed and
    opened as signed ones are; Ceph's ACLs decide."""
    proxy, ceph = cfg["proxy"], cfg["ceph"]
    a, anon = s3(proxy, cfg["a"]), s3(proxy)
    pub, priv = public_buckets(a, cfg)

    # An SDK without credentials (its checksum header is verified as for signed PUTs).
    anon.put_object(Bucket=pub, Key="anon", Body=DATA, ACL="public-read")
    check(anon.get_object(Bucket=pub, Key="anon")["Body"].read() == DATA, "unsigned GET of anon")
    check(anon.get_object(Bucket=pub, Key="by-owner")["Body"].read() == DATA, "unsigned GET of by-owner")
    listed = {o["Key"]: o["Size"] for o in anon.list_objects_v2(Bucket=pub).get("Contents", [])}
    check(listed == {"anon": len(DATA), "by-owner": len(DATA)}, f"unsigned listing: {listed}")
    # Sealed at rest (read straight from Ceph, unsigned too: the object is public-read).
    status, headers, stored = raw(ceph, "GET", f"/{pub}/anon")
    check(status == 200, f"unsigned GET of anon directly from Ceph: {status}")
    sealed("anonymous object at rest", stored, headers)

    # Plain HTTP without any SDK.
    status, _, data = raw(proxy, "PUT", f"/{pub}/raw", DATA, {"x-amz-acl": "public-read"})
    check(status == 200, f"raw unsigned PUT: {status} {data[:200]}")
    status, _, data = raw(proxy, "GET", f"/{pub}/raw")
    check(status == 200 and data == DATA, f"raw unsigned GET: {status} {len(data)} bytes")
    status, headers, stored = raw(ceph, "GET", f"/{pub}/raw")
    sealed("raw unsigned PUT at rest", stored, headers)

    # A private bucket: Ceph refuses, and the refusal is relayed, not served with any
    # credential of the proxy's.
    status, headers, data = raw(proxy, "GET", f"/{priv}/secret")
    check(status == 403 and error_code(data) == "AccessDenied", f"unsigned GET private: {status} {data[:200]}")
    from_backend("unsigned GET of a private object", headers)
    check(PATTERN not in data, "unsigned GET of a private object leaked data")
    status, headers, _ = raw(proxy, "PUT", f"/{priv}/planted", DATA)
    check(status == 403, f"unsigned PUT into a private bucket: {status}")
    from_backend("unsigned PUT into a private bucket", headers)
    check(not exists(a, priv, "planted"), "the refused unsigned PUT stored nothing")
    status, headers, _ = raw(proxy, "GET", f"/{priv}")
    check(status == 403, f"unsigned ListObjects of a private bucket: {status}")
    from_backend("unsigned ListObjects of a private bucket", headers)

    # A failed signature is never downgraded to anonymous, even on a public bucket.
    url = a.generate_presigned_url("put_object", Params={"Bucket": pub, "Key": "bad-sig"}, ExpiresIn=600)
    u = urllib.parse.urlparse(url)
    query = u.query.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    status, headers, data = raw(proxy, "PUT", f"{u.path}?{query}", DATA)
    check(status == 403 and error_code(data) == "SignatureDoesNotMatch", f"bad presigned PUT: {status} {data[:200]}")
    check(not exists(a, pub, "bad-sig"), "the bad presigned PUT stored nothing")
    status, _, data = raw(
        proxy, "PUT", f"/{pub}/bad-header", DATA,
        {"Authorization": "AWS4-HMAC-SHA256 Credential=nobody/20240101/us-east-1/s3/aws4_request, "
         "SignedHeaders=host, Signature=" + "0" * 64, "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
         "x-amz-date": "20240101T000000Z"},
    )
    check(status == 403, f"bad Authorization PUT: {status} {data[:200]}")
    check(not exists(a, pub, "bad-header"), "the bad Authorization PUT stored nothing")

    # Expect: 100-continue: only Ceph can tell whether it takes the upload, so the
    # client hears Ceph's refusal before any 100 Continue, and the 100 only when Ceph
    # asks for the body.
    first, _ = expect_continue(proxy, f"/{priv}/continued", DATA)
    check(first == "403", f"Expect: 100-continue into a private bucket: first answer {first}")
    check(not exists(a, priv, "continued"), "the refused upload stored nothing")
    first, final = expect_continue(proxy, f"/{pub}/continued", DATA)
    check((first, final) == ("100", "200"), f"Expect: 100-continue into a public bucket: {first}, {final}")
    status, _, data = raw(proxy, "GET", f"/{pub}/continued")
    check(status == 200 and data == DATA, f"unsigned GET of the continued upload: {status}")

    # Body framing as for signed requests: chunked without a length is 411.
    status, _, data = raw(proxy, "PUT", f"/{pub}/chunked", DATA, {"Transfer-Encoding": "chunked"})
    check(status == 411 and error_code(data) == "MissingContentLength", f"unsigned chunked PUT: {status} {data[:200]}")
    check(not exists(a, pub, "chunked"), "the chunked PUT stored nothing")

    # An unsigned form (no signature, no policy) to the public bucket.
    boundary = "sealgateanonymousform"
    form = b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n".encode()
        for n, v in [("key", "form"), ("acl", "public-read")]
    )
    form += (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + DATA + f"\r\n--{boundary}--\r\n".encode()
    status, _, data = raw(proxy, "POST", f"/{pub}", form, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    check(status == 204, f"unsigned form: {status} {data[:200]}")
    status, _, data = raw(proxy, "GET", f"/{pub}/form")
    check(status == 200 and data == DATA, f"unsigned GET of the form's object: {status}")
    status, headers, stored = raw(ceph, "GET", f"/{pub}/form")
    sealed("unsigned form at rest", stored, headers)
    status, _, data = raw(proxy, "POST", f"/{priv}", form.replace(b"public-read", b"private"),
                          {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    check(status == 403, f"unsigned form into a private bucket: {status} {data[:200]}")
    print("forward: ok")


if __name__ == "__main__":
    scenario, cfg = sys.argv[1], json.loads(sys.argv[2])
    {"isolated": isolated, "shared": shared, "refuse": refuse, "forward": forward}[scenario](cfg)
