# Driven by tests/post_object.rs: browser form uploads (PostObject) through the proxy.
# boto3's generate_presigned_post makes the SigV4 forms, as a web application would;
# the forms are sent with http.client so bodies can also be cut short or altered.
# Every check that fails exits non-zero with what was seen; the Rust side then looks
# at what the backend holds.
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import sys
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boto3_client import client  # noqa: E402

MIB = 1024 * 1024
PATTERN = b"SEALGATE-PATTERN"


def check(ok, what):
    if not ok:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def encode(fields, file_name, data, boundary="sealgateform0123456789"):
    """multipart/form-data as browsers send it: fields in order, then the file."""
    out = bytearray()
    for name, value in fields:
        if isinstance(value, str):
            value = value.encode()
        out += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode()
        out += value + b"\r\n"
    out += (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def connection():
    u = urllib.parse.urlparse(os.environ["SG_ENDPOINT"])
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def post(bucket, body, content_type, send_only=None):
    """POSTs the form; with send_only, announces the whole length but sends that many
    bytes and closes. Returns (status, headers, body) or None when cut."""
    conn = connection()
    conn.putrequest("POST", f"/{bucket}")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    if send_only is not None:
        conn.send(body[:send_only])
        conn.close()
        return None
    conn.send(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def error_code(data):
    try:
        return ET.fromstring(data).findtext("Code")
    except ET.ParseError:
        return None


def presigned(s3, bucket, key, fields=None, conditions=None, expires=600):
    p = s3.generate_presigned_post(
        Bucket=bucket, Key=key, Fields=fields or {}, Conditions=conditions or [], ExpiresIn=expires
    )
    return list(p["fields"].items())


def exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as e:
        check(e.response["Error"]["Code"] in ("404", "NoSuchKey"), f"head {key}: {e}")
        return False


def plaintext(n, seed):
    rng = random.Random(seed)
    head = bytes(rng.getrandbits(8) for _ in range(64))
    return (head + PATTERN * (n // len(PATTERN) + 1))[:n]


def main(bucket):
    s3 = client()
    out = {}

    # 1. SigV4 presigned POST, 201 with the PostResponse document; reads back whole.
    data = plaintext(300_000, 1)
    fields = presigned(
        s3,
        bucket,
        "dir/${filename}",
        fields={"success_action_status": "201", "x-amz-meta-colour": "blue", "Content-Type": "text/plain"},
        conditions=[
            ["starts-with", "$key", "dir/"],
            {"success_action_status": "201"},
            {"x-amz-meta-colour": "blue"},
            ["starts-with", "$Content-Type", "text/"],
            ["content-length-range", 1, 1 * MIB],
        ],
    )
    body, ctype = encode(fields, "hello.txt", data)
    status, headers, text = post(bucket, body, ctype)
    check(status == 201, f"201 form: {status} {text[:400]}")
    doc = ET.fromstring(text)
    check(doc.tag == "PostResponse", f"201 body: {text[:400]}")
    check(doc.findtext("Key") == "dir/hello.txt", f"201 key: {text[:400]}")
    check(doc.findtext("Bucket") == bucket, f"201 bucket: {text[:400]}")
    check(doc.findtext("ETag") == headers.get("etag"), f"201 etag: {text[:400]} {headers}")
    check(doc.findtext("Location", "").endswith(f"/{bucket}/dir/hello.txt"), f"201 location: {text[:400]}")
    check(headers.get("x-amz-server-side-encryption") == "aws:kms", f"SSE headers: {headers}")
    got = s3.get_object(Bucket=bucket, Key="dir/hello.txt")
    check(got["Body"].read() == data, "form upload reads back identical")
    check(got["Metadata"].get("colour") == "blue", f"metadata: {got['Metadata']}")
    check(got["ContentType"] == "text/plain", f"content type: {got['ContentType']}")
    out["posted"] = "dir/hello.txt"

    # 2. success_action_redirect: 303 to the URL with bucket, key and ETag.
    fields = presigned(
        s3,
        bucket,
        "redirected",
        fields={"success_action_redirect": "http://example.invalid/done?x=1"},
        conditions=[{"success_action_redirect": "http://example.invalid/done?x=1"}],
    )
    body, ctype = encode(fields, "r.txt", b"redirect me")
    status, headers, text = post(bucket, body, ctype)
    etag = s3.head_object(Bucket=bucket, Key="redirected")["ETag"]
    want = f"http://example.invalid/done?x=1&bucket={bucket}&key=redirected&etag={urllib.parse.quote(etag)}"
    check(status == 303 and headers.get("location") == want, f"303: {status} {headers} want {want}")

    # 3. Default answer: 204, no body.
    fields = presigned(s3, bucket, "plain204")
    body, ctype = encode(fields, "p.txt", b"no content")
    status, headers, text = post(bucket, body, ctype)
    check(status == 204 and text == b"", f"204: {status} {text[:300]}")

    # 4. A tampered policy: the signature no longer matches.
    fields = presigned(s3, bucket, "tampered", conditions=[["content-length-range", 0, 10]])
    tampered = []
    for name, value in fields:
        if name == "policy":
            doc = json.loads(base64.b64decode(value))
            doc["conditions"] = [c for c in doc["conditions"] if not isinstance(c, list)]
            value = base64.b64encode(json.dumps(doc).encode()).decode()
        tampered.append((name, value))
    body, ctype = encode(tampered, "t.txt", b"x" * 100)
    status, _, text = post(bucket, body, ctype)
    check(status == 403 and error_code(text) == "SignatureDoesNotMatch", f"tampered: {status} {text[:300]}")
    check(not exists(s3, bucket, "tampered"), "tampered form stored nothing")

    # 5. An expired policy.
    fields = presigned(s3, bucket, "expired", expires=-60)
    body, ctype = encode(fields, "e.txt", b"late")
    status, _, text = post(bucket, body, ctype)
    check(status == 403 and error_code(text) == "AccessDenied" and b"expired" in text, f"expired: {status} {text[:300]}")
    check(not exists(s3, bucket, "expired"), "expired form stored nothing")

    # 6. Outside content-length-range: EntityTooLarge, nothing stored.
    fields = presigned(s3, bucket, "too-large", conditions=[["content-length-range", 0, 10]])
    body, ctype = encode(fields, "l.txt", b"y" * 100)
    status, _, text = post(bucket, body, ctype)
    check(status == 400 and error_code(text) == "EntityTooLarge", f"range: {status} {text[:300]}")
    check(not exists(s3, bucket, "too-large"), "too large form stored nothing")

    # 7. A field the policy does not name.
    fields = presigned(s3, bucket, "extra") + [("x-amz-meta-sneaky", "1")]
    body, ctype = encode(fields, "x.txt", b"extra")
    status, _, text = post(bucket, body, ctype)
    check(status == 403 and b"Extra input fields" in text, f"extra field: {status} {text[:300]}")

    # 8. Anonymous: refused (auth.anonymous = "refuse", the default).
    body, ctype = encode([("key", "anonymous")], "a.txt", b"anyone")
    status, _, text = post(bucket, body, ctype)
    check(status == 403 and error_code(text) == "AccessDenied", f"anonymous: {status} {text[:300]}")
    check(not exists(s3, bucket, "anonymous"), "anonymous form stored nothing")

    # 9. SigV2 form (as s3-tests builds it), with a tagging document.
    expiration = "2099-01-01T00:00:00Z"
    policy = base64.b64encode(
        json.dumps(
            {
                "expiration": expiration,
                "conditions": [
                    {"bucket": bucket},
                    ["starts-with", "$key", "v2"],
                    ["starts-with", "$tagging", ""],
                    ["content-length-range", 0, 1024],
                ],
            }
        ).encode()
    )
    sig = base64.b64encode(hmac.new(os.environ["SG_SECRET_KEY"].encode(), policy, hashlib.sha1).digest())
    tagging = "<Tagging><TagSet><Tag><Key>k 1</Key><Value>v&amp;1</Value></Tag></TagSet></Tagging>"
    fields = [
        ("KEY", "v2.txt"),
        ("AWSAccessKeyId", os.environ["SG_ACCESS_KEY"]),
        ("policy", policy),
        ("signature", sig),
        ("tagging", tagging),
        ("x-ignore-me", "ignored"),
    ]
    body, ctype = encode(fields, "v2.txt", b"version two")
    status, _, text = post(bucket, body, ctype)
    check(status == 204, f"SigV2 form: {status} {text[:300]}")
    check(s3.get_object(Bucket=bucket, Key="v2.txt")["Body"].read() == b"version two", "SigV2 reads back")
    try:
        tags = s3.get_object_tagging(Bucket=bucket, Key="v2.txt")["TagSet"]
        check(tags == [{"Key": "k 1", "Value": "v&1"}], f"tags: {tags}")
    except s3.exceptions.ClientError as e:
        # The embedded backend keeps no tags; the header itself is unit-tested.
        check(e.response["Error"]["Code"] == "NotImplemented", f"tagging: {e}")

    # 10. Cut short (small form, read whole): nothing stored.
    fields = presigned(s3, bucket, "cut-small")
    body, ctype = encode(fields, "c.txt", plaintext(50_000, 2))
    post(bucket, body, ctype, send_only=len(body) - 5_000)
    # 11. Cut short while streaming (large form): nothing stored.
    fields = presigned(s3, bucket, "cut-large")
    body, ctype = encode(fields, "c.txt", plaintext(3 * MIB, 3))
    post(bucket, body, ctype, send_only=2 * MIB)
    # 12. A large form whose closing delimiter is wrong: MalformedPOSTRequest.
    fields = presigned(s3, bucket, "bad-end")
    body, ctype = encode(fields, "b.txt", plaintext(3 * MIB, 4))
    body = body[:-4] + b"XX\r\n"
    status, _, text = post(bucket, body, ctype)
    check(status == 400 and error_code(text) == "MalformedPOSTRequest", f"bad end: {status} {text[:300]}")
    for key in ("cut-small", "cut-large", "bad-end"):
        check(not exists(s3, bucket, key), f"{key}: a broken form stored an object")

    # 13. A 20 MiB file streams through and reads back identical.
    big = plaintext(20 * MIB, 5)
    fields = presigned(s3, bucket, "big.bin", conditions=[["content-length-range", 0, 64 * MIB]])
    body, ctype = encode(fields, "big.bin", big)
    status, _, text = post(bucket, body, ctype)
    check(status == 204, f"20 MiB form: {status} {text[:300]}")
    got = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    check(hashlib.sha256(got).digest() == hashlib.sha256(big).digest(), "20 MiB reads back identical")
    out["big"] = "big.bin"
    out["form_bytes"] = len(body)

    # 14. Not a form: 412 PreconditionFailed.
    status, _, text = post(bucket, b"key=x", "application/x-www-form-urlencoded")
    check(status == 412 and error_code(text) == "PreconditionFailed", f"not a form: {status} {text[:300]}")

    # 15. Chunked, without Content-Length: 411, as for PutObject.
    fields = presigned(s3, bucket, "chunked")
    body, ctype = encode(fields, "c.txt", b"chunked")
    conn = connection()
    conn.putrequest("POST", f"/{bucket}")
    conn.putheader("Content-Type", ctype)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        # The answer may come (and the connection close) before the body is sent.
        conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    except (BrokenPipeError, ConnectionResetError):
        pass
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    check(resp.status == 411 and error_code(text) == "MissingContentLength", f"chunked: {resp.status} {text[:300]}")

    # 16. The proxy's reserved metadata cannot be set through a form either.
    fields = presigned(
        s3, bucket, "reserved", fields={"x-amz-meta-sealgate-envelope": "x"},
        conditions=[{"x-amz-meta-sealgate-envelope": "x"}],
    )
    body, ctype = encode(fields, "r.txt", b"reserved")
    status, _, text = post(bucket, body, ctype)
    check(status == 400 and error_code(text) == "InvalidArgument", f"reserved metadata: {status} {text[:300]}")
    check(not exists(s3, bucket, "reserved"), "reserved-metadata form stored nothing")

    # 17. Fields before the file over 1 MiB together.
    fields = presigned(s3, bucket, "huge-fields") + [("x-ignore-padding", "p" * (MIB + 10))]
    body, ctype = encode(fields, "h.txt", b"h")
    status, _, text = post(bucket, body, ctype)
    check(status == 400 and error_code(text) == "MaxPostPreDataLengthExceededError", f"pre-data: {status} {text[:300]}")

    # 18. No file part; no key field; an unknown access key.
    fields = presigned(s3, bucket, "no-file")
    body, ctype = encode(fields, "n.txt", b"n")
    body = body.replace(b'name="file"', b'name="other"')
    status, _, text = post(bucket, body, ctype)
    check(status == 400 and b"exactly one file" in text, f"no file: {status} {text[:300]}")
    fields = [(n, v) for n, v in presigned(s3, bucket, "no-key") if n != "key"]
    body, ctype = encode(fields, "n.txt", b"n")
    status, _, text = post(bucket, body, ctype)
    check(status == 400 and error_code(text) == "InvalidArgument" and b"field named &apos;key&apos;" in text, f"no key: {status} {text[:300]}")
    fields = [
        (n, v.replace(os.environ["SG_ACCESS_KEY"], "NOSUCHKEY") if n == "x-amz-credential" else v)
        for n, v in presigned(s3, bucket, "bad-key")
    ]
    body, ctype = encode(fields, "n.txt", b"n")
    status, _, text = post(bucket, body, ctype)
    check(status == 403 and error_code(text) == "InvalidAccessKeyId", f"unknown key: {status} {text[:300]}")

    # 19. As s3-tests sends forms: `requests` with files=, every part with a filename,
    # mixed-case condition names, SigV2, a 3 MiB file (streamed). requests comes with
    # moto[server] in scripts/requirements-test.txt.
    import requests

    policy = base64.b64encode(
        json.dumps(
            {
                "expiration": expiration,
                "conditions": [
                    {"bUcKeT": bucket},
                    ["StArTs-WiTh", "$KeY", "foo"],
                    {"AcL": "private"},
                    ["StArTs-WiTh", "$CoNtEnT-TyPe", "text/plain"],
                    ["content-length-range", 0, 5 * MIB],
                ],
            }
        ).encode()
    )
    sig = base64.b64encode(hmac.new(os.environ["SG_SECRET_KEY"].encode(), policy, hashlib.sha1).digest())
    big = "foo" * MIB
    payload = [
        ("kEy", "${filename}"),
        ("AWSAccessKeyId", os.environ["SG_ACCESS_KEY"]),
        ("acl", "private"),
        ("signature", sig),
        ("policy", policy),
        ("Content-Type", "text/plain"),
        ("x-ignore-foo", "bar"),
        ("file", ("foo.txt", big)),
    ]
    r = requests.post(f"{os.environ['SG_ENDPOINT']}/{bucket}", files=payload)
    check(r.status_code == 204, f"requests form: {r.status_code} {r.content[:300]}")
    check(s3.get_object(Bucket=bucket, Key="foo.txt")["Body"].read() == big.encode(), "requests form reads back")
    print(json.dumps(out))


def plain(bucket):
    """A bucket the proxy does not encrypt: the form is stored as sent, small and large."""
    s3 = client()
    out = {}
    for key, data in (("plain-small", plaintext(1000, 6)), ("plain-large", plaintext(3 * MIB, 7))):
        fields = presigned(s3, bucket, key, fields={"success_action_status": "200"}, conditions=[{"success_action_status": "200"}])
        body, ctype = encode(fields, key, data)
        status, headers, text = post(bucket, body, ctype)
        check(status == 200 and text == b"", f"{key}: {status} {text[:300]}")
        check("x-amz-server-side-encryption" not in headers, f"{key}: SSE headers on a plain bucket: {headers}")
        # The proxy refuses plaintext reads by default: the Rust side reads the disk.
        out[key] = hashlib.sha256(data).hexdigest()
    print(json.dumps(out))


def stream(bucket, mib):
    """One large form, for the Rust side to watch the proxy's memory while it streams."""
    s3 = client()
    data = plaintext(int(mib) * MIB, 8)
    fields = presigned(s3, bucket, "stream.bin", conditions=[["content-length-range", 0, 1024 * MIB]])
    body, ctype = encode(fields, "stream.bin", data)
    status, _, text = post(bucket, body, ctype)
    check(status == 204, f"{mib} MiB form: {status} {text[:300]}")
    print(json.dumps({"sha256": hashlib.sha256(data).hexdigest()}))


if __name__ == "__main__":
    {"main": main, "plain": plain, "stream": stream}[sys.argv[1]](*sys.argv[2:])
