# Driven by tests/object_surface.rs and tests/not_implemented.rs: one scenario per run
# against the endpoint in SG_ENDPOINT (the proxy), each step checked here; any failure
# exits non-zero with a message naming the step. `raw` requests are signed with
# botocore's own SigV4 signer, so the proxy sees exactly what an SDK would send.
#
# usage: object_surface.py SCENARIO BUCKET [ARGS...]
import base64
import datetime
import hashlib
import json
import os
import re
import sys
import zlib

import boto3
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from s3check import check, expect_error, fail

MIB = 1024 * 1024
ENDPOINT = os.environ["SG_ENDPOINT"]


def client(validate=True, **extra):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=os.environ["SG_ACCESS_KEY"],
        aws_secret_access_key=os.environ["SG_SECRET_KEY"],
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            parameter_validation=validate,
            **extra,
        ),
    )


def raw(method, path, query="", headers=None, body=b""):
    """A SigV4-signed request built by hand: (status, headers, body)."""
    url = f"{ENDPOINT}{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    creds = Credentials(os.environ["SG_ACCESS_KEY"], os.environ["SG_SECRET_KEY"])
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib3.PoolManager().request(
        method, prepared.url, body=body, headers=dict(prepared.headers), retries=False
    )
    return r.status, r.headers, r.data


def b64(raw_bytes):
    return base64.b64encode(raw_bytes).decode()


# CRC32C and CRC64NVME: botocore computes them only with awscrt, which the test machines
# do not install, so the values are computed here (table-driven, reflected CRCs).
def _table(poly, bits):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _table(0x82F63B78, 32)
_CRC64NVME = _table(0x9A6C9329AC4BC9B5, 64)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return (c ^ 0xFFFFFFFF).to_bytes(4, "big")


def crc64nvme(data):
    c = 0xFFFFFFFFFFFFFFFF
    for b in data:
        c = _CRC64NVME[(c ^ b) & 0xFF] ^ (c >> 8)
    return (c ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


assert crc32c(b"123456789").hex() == "e3069283"
assert crc64nvme(b"123456789").hex() == "ae8b14860a799888"

DIGESTS = {
    "CRC32": lambda d: zlib.crc32(d).to_bytes(4, "big"),
    "CRC32C": crc32c,
    "CRC64NVME": crc64nvme,
    "SHA1": lambda d: hashlib.sha1(d).digest(),
    "SHA256": lambda d: hashlib.sha256(d).digest(),
}
# Computed by the SDK itself where botocore can (no awscrt needed).
SDK_COMPUTES = {"CRC32", "SHA1", "SHA256"}


def part_edges(bucket, backend=None):
    s3 = client(validate=False)
    data = os.urandom(100_000)
    etag = s3.put_object(Bucket=bucket, Key="single", Body=data)["ETag"]
    for what, r in (
        ("get", s3.get_object(Bucket=bucket, Key="single", PartNumber=1)),
        ("head", s3.head_object(Bucket=bucket, Key="single", PartNumber=1)),
    ):
        check(r["ResponseMetadata"]["HTTPStatusCode"] == 206, f"{what} part 1 status")
        check(r["ContentLength"] == len(data), f"{what} part 1 length {r['ContentLength']}")
        check(r.get("ContentRange") == f"bytes 0-{len(data) - 1}/{len(data)}", f"{what} part 1 range")
        check("PartsCount" not in r, f"{what} part 1 of a single PUT has a PartsCount")
        check(r["ETag"] == etag, f"{what} part 1 ETag {r['ETag']} != {etag}")
    body = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)["Body"].read()
    check(body == data, "part 1 of a single PUT is not the object")
    expect_error("part 2 of a single PUT", lambda: s3.get_object(Bucket=bucket, Key="single", PartNumber=2), "InvalidPartNumber", 416)
    for n in (0, 10001):
        expect_error(f"partNumber={n}", lambda: s3.get_object(Bucket=bucket, Key="single", PartNumber=n), "InvalidArgument", 400)
    expect_error("partNumber and Range", lambda: s3.get_object(Bucket=bucket, Key="single", PartNumber=1, Range="bytes=0-9"), "InvalidRequest", 400)
    status, _, text = raw("GET", f"/{bucket}/single", "partNumber=abc")
    check(status == 400 and b"<Code>InvalidArgument</Code>" in text, f"partNumber=abc: {status} {text[:300]}")
    check(b"Part number must be an integer between 1 and 10000, inclusive" in text, "partNumber=abc message")
    status, _, _ = raw("HEAD", f"/{bucket}/missing", "partNumber=1")
    check(status == 404, f"HEAD partNumber of a missing key: {status}")
    expect_error("part of a missing key", lambda: s3.get_object(Bucket=bucket, Key="missing", PartNumber=1), "NoSuchKey", 404)
    s3.delete_object(Bucket=bucket, Key="single")
    # S3's minimum part size, whatever the backend enforces (the embedded one does not).
    err = expect_error("a part but the last under 5 MiB", lambda: multipart(s3, bucket, "small-parts", [10 * 1024, 10 * 1024]), "EntityTooSmall", 400)
    check(err["Error"].get("PartNumber") == "1", f"EntityTooSmall names part {err['Error'].get('PartNumber')}")
    abort_open_uploads(s3, bucket)


def abort_open_uploads(s3, bucket):
    try:
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    except ClientError:
        uploads = []  # s3s-fs lists no uploads; its temp dir goes with the proxy
    for u in uploads:
        s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])


def multipart(s3, bucket, key, sizes, algorithm=None, complete_extra=None, create_extra=None):
    data = os.urandom(sum(sizes))
    up = s3.create_multipart_upload(
        Bucket=bucket, Key=key, **({"ChecksumAlgorithm": algorithm} if algorithm else {}), **(create_extra or {})
    )
    done, off = [], 0
    for n, size in enumerate(sizes, start=1):
        chunk = data[off : off + size]
        off += size
        args = {}
        if algorithm:
            args[f"Checksum{algorithm}"] = b64(DIGESTS[algorithm](chunk))
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=chunk, **args)
        part = {"PartNumber": n, "ETag": r["ETag"]}
        if algorithm:
            check(r.get(f"Checksum{algorithm}") == args[f"Checksum{algorithm}"], f"part {n} {algorithm} not echoed: {r}")
            part[f"Checksum{algorithm}"] = args[f"Checksum{algorithm}"]
        done.append(part)
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": done}, **(complete_extra or {})
    )
    return data, r, up["UploadId"], done


def attributes(bucket, backend=None):
    s3 = client()
    everything = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="single", Body=data, ChecksumAlgorithm="SHA256")
    a = s3.get_object_attributes(Bucket=bucket, Key="single", ObjectAttributes=everything)
    check(a["ObjectSize"] == len(data), f"ObjectSize {a['ObjectSize']} != {len(data)}")
    check(a["ETag"] == put["ETag"].strip('"'), f"ETag {a['ETag']} != {put['ETag']}")
    check(a.get("StorageClass") == "STANDARD", f"StorageClass {a.get('StorageClass')}")
    check("ObjectParts" not in a, "a single PUT has ObjectParts")
    want = b64(hashlib.sha256(data).digest())
    check(a.get("Checksum", {}).get("ChecksumSHA256") == want, f"Checksum {a.get('Checksum')} != {want}")
    check("LastModified" in a, "no Last-Modified")
    only = s3.get_object_attributes(Bucket=bucket, Key="single", ObjectAttributes=["ObjectSize"])
    check(only["ObjectSize"] == len(data) and "ETag" not in only, f"ObjectSize only: {only}")

    sizes = [5 * MIB, 5 * MIB, 1234]
    data, done, _, _ = multipart(s3, bucket, "mp", sizes)
    a = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=everything, MaxParts=2)
    check(a["ObjectSize"] == sum(sizes), f"multipart ObjectSize {a['ObjectSize']}")
    head_etag = s3.head_object(Bucket=bucket, Key="mp")["ETag"]
    check(a["ETag"] == head_etag.strip('"'), f"multipart ETag {a['ETag']} != {head_etag}")
    check("Checksum" not in a, f"multipart object shows a checksum: {a.get('Checksum')}")
    p = a["ObjectParts"]
    check(p["TotalPartsCount"] == 3, f"TotalPartsCount {p}")
    check(p["IsTruncated"] is True and p["NextPartNumberMarker"] == 2, f"first page {p}")
    check([x["Size"] for x in p["Parts"]] == sizes[:2], f"first page sizes {p['Parts']}")
    a = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], PartNumberMarker=2)
    p = a["ObjectParts"]
    check(p["IsTruncated"] is False, f"second page {p}")
    check([(x["PartNumber"], x["Size"]) for x in p["Parts"]] == [(3, 1234)], f"second page parts {p['Parts']}")
    expect_error("attributes of a missing key", lambda: s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"]), "NoSuchKey", 404)
    status, _, text = raw("GET", f"/{bucket}/single", "attributes", {"x-amz-object-attributes": "ETag,Bogus"})
    check(status == 400 and b"InvalidArgument" in text, f"unknown attribute: {status} {text[:200]}")
    for k in ("single", "mp"):
        s3.delete_object(Bucket=bucket, Key=k)


def checksums(bucket, backend=None):
    s3 = client()
    data = os.urandom(200_000)
    for alg, digest in DIGESTS.items():
        key = f"sum-{alg}"
        want = b64(digest(data))
        if alg in SDK_COMPUTES:
            put = s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=alg)
        else:
            put = s3.put_object(Bucket=bucket, Key=key, Body=data, **{f"Checksum{alg}": want})
        check(put.get(f"Checksum{alg}") == want, f"{alg}: PUT echoed {put.get(f'Checksum{alg}')} != {want}")
        for what, r in (
            ("get", s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")),
            ("head", s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")),
        ):
            check(r.get(f"Checksum{alg}") == want, f"{alg} {what}: {r.get(f'Checksum{alg}')} != {want}")
            others = [k for k in r if k.startswith("Checksum") and k not in (f"Checksum{alg}", "ChecksumType")]
            check(not others, f"{alg} {what}: other checksums {others}")
            check(r.get("ChecksumType") == "FULL_OBJECT", f"{alg} {what}: ChecksumType {r.get('ChecksumType')}")
        r = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        check(r["Body"].read() == data, f"{alg}: body differs")
        r = s3.get_object(Bucket=bucket, Key=key, Range="bytes=10-99", ChecksumMode="ENABLED")
        check(not [k for k in r if k.startswith("Checksum")], f"{alg}: a range read carries a checksum")
        # A wrong value is refused and nothing is stored.
        bad = b64(digest(data[1:]))
        expect_error(
            f"{alg}: wrong checksum",
            lambda: s3.put_object(Bucket=bucket, Key=key + "-bad", Body=data, **{f"Checksum{alg}": bad}),
            "BadDigest",
            400,
        )
        expect_error(f"{alg}: wrong checksum stored something", lambda: s3.head_object(Bucket=bucket, Key=key + "-bad"), "404", 404)

        # Multipart: every part's checksum is verified on its plaintext.
        mp_key = f"mp-{alg}"
        mp_data, _, _, _ = multipart(s3, bucket, mp_key, [5 * MIB, 4321], algorithm=alg)
        r = s3.get_object(Bucket=bucket, Key=mp_key, ChecksumMode="ENABLED")
        check(r["Body"].read() == mp_data, f"{alg}: multipart body differs")
        check(not [k for k in r if k.startswith("Checksum") and k != "ChecksumType"], f"{alg}: multipart object returned a backend checksum {r}")
        up = s3.create_multipart_upload(Bucket=bucket, Key=mp_key + "-bad", ChecksumAlgorithm=alg)
        expect_error(
            f"{alg}: wrong part checksum",
            lambda: s3.upload_part(Bucket=bucket, Key=mp_key + "-bad", UploadId=up["UploadId"], PartNumber=1, Body=mp_data[:1000], **{f"Checksum{alg}": bad}),
            "BadDigest",
            400,
        )
        s3.abort_multipart_upload(Bucket=bucket, Key=mp_key + "-bad", UploadId=up["UploadId"])
        for k in (key, mp_key):
            s3.delete_object(Bucket=bucket, Key=k)
    # Content-MD5 is checked on the plaintext too.
    md5 = b64(hashlib.md5(data).digest())
    s3.put_object(Bucket=bucket, Key="md5", Body=data, ContentMD5=md5)
    check(s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == data, "Content-MD5 object differs")
    expect_error("wrong Content-MD5", lambda: s3.put_object(Bucket=bucket, Key="md5-bad", Body=data, ContentMD5=b64(hashlib.md5(b"x").digest())), "BadDigest", 400)
    s3.delete_object(Bucket=bucket, Key="md5")


def request_ids_agree(bucket):
    """An error's XML names the request id its x-amz-request-id header carries, both for
    errors the proxy answers itself and for backend errors it relays."""
    cases = (
        ("relayed (a bucket that does not exist)", f"/{bucket}-missing", "list-type=2"),
        ("relayed (a key that does not exist)", f"/{bucket}/missing-key", ""),
        ("the proxy's own (a part number out of range)", f"/{bucket}/missing-key", "partNumber=0"),
    )
    for what, path, query in cases:
        status, headers, text = raw("GET", path, query)
        m = re.search(rb"<RequestId>([^<]*)</RequestId>", text)
        check(status >= 400, f"{what}: answered {status}")
        header = headers.get("x-amz-request-id")
        check(header, f"{what}: no x-amz-request-id header")
        if m:
            check(m.group(1).decode() == header, f"{what}: body RequestId {m.group(1)!r} != header {header!r}")


def conditional(bucket, backend):
    s3 = client()
    request_ids_agree(bucket)
    first = s3.put_object(Bucket=bucket, Key="c", Body=b"first")
    expect_error("If-None-Match * on an existing key", lambda: s3.put_object(Bucket=bucket, Key="c", Body=b"second", IfNoneMatch="*"), "PreconditionFailed", 412)
    check(s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"first", "the refused write replaced the object")
    s3.put_object(Bucket=bucket, Key="c-new", Body=b"new", IfNoneMatch="*")
    check(s3.get_object(Bucket=bucket, Key="c-new")["Body"].read() == b"new", "If-None-Match * on a new key")
    expect_error("If-Match with another ETag", lambda: s3.put_object(Bucket=bucket, Key="c", Body=b"third", IfMatch='"0123456789abcdef0123456789abcdef"'), "PreconditionFailed", 412)
    if backend == "ceph":
        # Ceph RGW 16.2 answers 412 to If-Match on PUT even with the current ETag
        # (checked directly against RGW, without the proxy): a backend limitation.
        s3.put_object(Bucket=bucket, Key="c", Body=b"fourth")
    else:
        s3.put_object(Bucket=bucket, Key="c", Body=b"fourth", IfMatch=first["ETag"])
    check(s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"fourth", "If-Match with the ETag")
    conditional_reads(s3, bucket, "c", b"fourth")
    if backend == "ceph":
        # Ceph RGW 16.2 does not evaluate conditions on CompleteMultipartUpload; the
        # proxy forwards them unchanged (see docs/DESIGN.md).
        for k in ("c", "c-new"):
            s3.delete_object(Bucket=bucket, Key=k)
        return
    # CompleteMultipartUpload with If-None-Match * onto an existing key.
    expect_error(
        "complete with If-None-Match *",
        lambda: multipart(s3, bucket, "c", [5 * MIB, 10], complete_extra={"IfNoneMatch": "*"}),
        "PreconditionFailed",
        412,
    )
    check(s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"fourth", "the refused completion replaced the object")
    mp_data, _, _, _ = multipart(s3, bucket, "c-mp", [5 * MIB, 10], complete_extra={"IfNoneMatch": "*"})
    check(s3.get_object(Bucket=bucket, Key="c-mp")["Body"].read() == mp_data, "complete with If-None-Match * on a new key")
    for k in ("c", "c-new", "c-mp"):
        s3.delete_object(Bucket=bucket, Key=k)
    abort_open_uploads(s3, bucket)


def conditional_reads(s3, bucket, key, body):
    """Reads of an encrypted object under read conditions: ranged and part GETs (the
    proxy's first read carries the client's conditions, and a refusal is the answer,
    never a decryption of it), a Range past the end under conditions (the conditions
    decide first), then whole GETs and HEADs with the dates and S3's precedence."""
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    other = '"0123456789abcdef0123456789abcdef"'
    for label, extra in (("range", {"Range": "bytes=1-3"}), ("partNumber", {"PartNumber": 1})):
        expect_error(f"{label} GET with If-Match of another ETag", lambda: s3.get_object(Bucket=bucket, Key=key, IfMatch=other, **extra), "PreconditionFailed", 412)
        expect_error(f"{label} GET with If-None-Match of the ETag", lambda: s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag, **extra), "304", 304)
        r = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, **extra)
        want = body[1:4] if label == "range" else body
        got = r["Body"].read()
        check(got == want, f"{label} GET with If-Match of the ETag: {got!r}, want {want!r}")
        check(r["ResponseMetadata"]["HTTPStatusCode"] == 206, f"{label} GET with If-Match of the ETag: status {r['ResponseMetadata']['HTTPStatusCode']}")
    # Conditions before Range: a failed one is the answer even to a range past the end.
    beyond = {"Range": f"bytes={len(body) + 100}-{len(body) + 200}"}
    expect_error("unservable Range with If-Match of another ETag", lambda: s3.get_object(Bucket=bucket, Key=key, IfMatch=other, **beyond), "PreconditionFailed", 412)
    expect_error("unservable Range with If-None-Match of the ETag", lambda: s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag, **beyond), "304", 304)
    expect_error("unservable Range with If-Match of the ETag", lambda: s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, **beyond), "InvalidRange", 416)
    # Dates compare at the whole second of Last-Modified; a HEAD's refusal has no body,
    # so its code is the status.
    modified = s3.head_object(Bucket=bucket, Key=key)["LastModified"]
    earlier = modified - datetime.timedelta(days=1)
    expect_error("GET If-Modified-Since Last-Modified", lambda: s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=modified), "304", 304)
    expect_error("HEAD If-Unmodified-Since a day before", lambda: s3.head_object(Bucket=bucket, Key=key, IfUnmodifiedSince=earlier), "412", 412)
    check(s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=earlier)["Body"].read() == body, "GET If-Modified-Since a day before")
    check(s3.get_object(Bucket=bucket, Key=key, IfUnmodifiedSince=modified)["Body"].read() == body, "GET If-Unmodified-Since Last-Modified")
    # If-None-Match decides over If-Modified-Since, If-Match over If-Unmodified-Since.
    check(s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=other, IfModifiedSince=modified)["Body"].read() == body, "If-None-Match of another ETag with If-Modified-Since Last-Modified")
    check(s3.head_object(Bucket=bucket, Key=key, IfMatch=etag, IfUnmodifiedSince=earlier)["ETag"] == etag, "If-Match of the ETag with If-Unmodified-Since a day before")


def tagging(bucket, backend=None):
    s3 = client()
    data = os.urandom(70_000)
    s3.put_object(Bucket=bucket, Key="t", Body=data, Tagging="team=blue&tier=1")
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]}
    check(tags == {"team": "blue", "tier": "1"}, f"tags {tags}")
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]}
    check(tags == {"k": "v"}, f"tags after put {tags}")
    check(s3.get_object(Bucket=bucket, Key="t")["Body"].read() == data, "tagged object differs")
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    check(s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [], "tags after delete")
    keys = ["t", "d1", "d2/x"]
    for k in keys[1:]:
        s3.put_object(Bucket=bucket, Key=k, Body=os.urandom(1000))
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys + ["never-was"]]})
    deleted = sorted(d["Key"] for d in r.get("Deleted", []))
    check(deleted == sorted(keys + ["never-was"]), f"DeleteObjects deleted {deleted}, errors {r.get('Errors')}")
    left = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    check(left == [], f"objects left after DeleteObjects: {[o['Key'] for o in left]}")


def not_implemented(bucket, backend=None):
    """Every operation still answered 501: each signed like an SDK would, each must be
    `501 NotImplemented` XML. The keys it would have written are printed for the Rust
    side to look for on the backend."""
    s3 = client()
    s3.put_object(Bucket=bucket, Key="csv", Body=b"a,b\n1,2\n")
    out = {}
    # SelectObjectContent over an encrypted object: S3 Select would run on ciphertext.
    resp = expect_error(
        "SelectObjectContent",
        lambda: s3.select_object_content(
            Bucket=bucket,
            Key="csv",
            Expression="select * from s3object",
            ExpressionType="SQL",
            InputSerialization={"CSV": {}},
            OutputSerialization={"CSV": {}},
        ),
        "NotImplemented",
        501,
    )
    out["SelectObjectContent"] = resp["Error"]["Message"]
    # WriteGetObjectResponse (Object Lambda): would store a client-supplied body as is.
    status, _, text = raw(
        "POST",
        "/WriteGetObjectResponse",
        headers={"x-amz-request-route": "route", "x-amz-request-token": "token"},
        body=b"plaintext that must not be stored",
    )
    check(status == 501 and b"<Code>NotImplemented</Code>" in text, f"WriteGetObjectResponse: {status} {text[:300]}")
    out["WriteGetObjectResponse"] = "501"
    print(json.dumps(out))


SCENARIOS = {
    "part-edges": part_edges,
    "attributes": attributes,
    "checksums": checksums,
    "conditional": conditional,
    "tagging": tagging,
    "not-implemented": not_implemented,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](*sys.argv[2:])
