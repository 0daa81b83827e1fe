# Driven by tests/embedded_backend.rs: the embedded backend on its own, with boto3.
# Since GetObject, HeadObject and PutObject do their file work in one trip through
# the blocking pool (vendor/README.md), this checks what that work must still give:
# whole and ranged reads of small, empty and multi-chunk objects (the first chunk is
# read with the open, the rest streamed), user metadata and content headers, a missing
# key, nested keys and directories, an overwrite, and a PUT refused for a wrong
# Content-MD5, which must leave the object it would have replaced exactly as it was;
# CopyObject, whose copy must take the destination's place whole; and HEADs, GETs and
# copies racing overwrites, which must see (or copy) an object's body, attributes and
# ETag from one write. Read conditions come before a Range, as S3 orders them, and
# copy-source conditions follow a read's order with 412 for 304; a file placed in the
# backend's directory by hand (no attributes, no internal info) reads whole and ranged
# and copies, with its MD5 as ETag; and an aws-chunked body that does not add up to its declared
# decoded length, refused with IncompleteBody whatever its size, storing nothing.
#
# usage: embedded_backend.py BUCKET ROOT  prints "ok" and the number of checks
#        (ROOT: the directory that holds the backend's buckets)
import base64
import datetime
import hashlib
import os
import sys
import threading

# run_python writes the shared client and step checks beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boto3_client import client  # noqa: E402
import s3check  # noqa: E402

KIB = 1024
COPIES = 300
check, expect_error = s3check.check, s3check.expect_error


s3 = client()
bucket, root = sys.argv[1], sys.argv[2]
s3.create_bucket(Bucket=bucket)


def get(key, **kw):
    r = s3.get_object(Bucket=bucket, Key=key, **kw)
    return r, r["Body"].read()


def put_and_read(key, data, **kw):
    s3.put_object(Bucket=bucket, Key=key, Body=data, **kw)
    r, body = get(key)
    check(body == data, f"{key}: body of {len(data)} bytes read back differently ({len(body)} bytes)")
    check(r["ContentLength"] == len(data), f"{key}: Content-Length {r['ContentLength']}")
    check(r["ETag"] == f'"{hashlib.md5(data).hexdigest()}"', f"{key}: ETag {r['ETag']}")
    return r


# Small object with user metadata and content headers: GET and HEAD return them.
small = os.urandom(4 * KIB)
r = put_and_read("small", small, Metadata={"colour": "blue", "n": "7"},
                 ContentType="text/plain", CacheControl="no-cache")
check(r["Metadata"] == {"colour": "blue", "n": "7"}, f"GET metadata {r['Metadata']}")
check(r["ContentType"] == "text/plain", f"GET content type {r['ContentType']}")
check(r.get("CacheControl") == "no-cache", f"GET cache control {r.get('CacheControl')}")
h = s3.head_object(Bucket=bucket, Key="small")
check(h["ContentLength"] == len(small), f"HEAD length {h['ContentLength']}")
check(h["Metadata"] == {"colour": "blue", "n": "7"}, f"HEAD metadata {h['Metadata']}")
check(h["ETag"] == f'"{hashlib.md5(small).hexdigest()}"', f"HEAD ETag {h['ETag']}")

# Empty object; an object of several 256 KiB read chunks; a nested key.
put_and_read("empty", b"")
big = os.urandom(700 * KIB + 5)
put_and_read("big", big)
put_and_read("dir/sub/nested", os.urandom(10))

# A key whose `..` segment would leave the bucket's directory is refused as a bad
# argument, and nothing lands outside the bucket. (Empty bodies: the backend answers
# before it reads a body, and one still arriving as it closes the connection can cut
# its answer off.)
before = sorted(os.listdir(root))
expect_error("key leaving the bucket", lambda: s3.put_object(Bucket=bucket, Key="../escaped", Body=b""), "InvalidArgument", 400)
expect_error("key leaving a prefix into another", lambda: s3.put_object(Bucket=bucket, Key="dir/../../escaped", Body=b""), "InvalidArgument", 400)
check(sorted(os.listdir(root)) == before, f"files outside the bucket: {sorted(set(os.listdir(root)) - set(before))}")

# Ranges, across the first chunk's end (256 KiB) and the file's end.
n = len(big)
for header, want in [
    ("bytes=0-0", big[0:1]),
    ("bytes=1000-300000", big[1000:300001]),
    ("bytes=262143-262145", big[262143:262146]),
    ("bytes=500000-", big[500000:]),
    ("bytes=-5000", big[-5000:]),
    (f"bytes={n - 1}-{n + 100}", big[n - 1:]),
]:
    r, body = get("big", Range=header)
    check(body == want, f"range {header}: {len(body)} bytes, wanted {len(want)}")
    check(r["ContentLength"] == len(want), f"range {header}: Content-Length {r['ContentLength']}")
    check(r["ContentRange"].endswith(f"/{n}"), f"range {header}: Content-Range {r['ContentRange']}")
expect_error("range past the end", lambda: get("big", Range=f"bytes={n}-"), "InvalidRange", 416)

# A missing key, on GET and HEAD.
expect_error("missing key GET", lambda: get("no-such-key"), "NoSuchKey", 404)
# A HEAD answer has no body, so botocore names the error by its status.
expect_error("missing key HEAD", lambda: s3.head_object(Bucket=bucket, Key="no-such-key"), "404", 404)

# Overwrite, then a PUT whose Content-MD5 is not its body's: refused, and the object it
# would have replaced keeps its body, ETag and metadata.
second = os.urandom(6 * KIB)
put_and_read("small", second, Metadata={"colour": "green"})
wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
expect_error("wrong Content-MD5", lambda: s3.put_object(
    Bucket=bucket, Key="small", Body=os.urandom(5 * KIB), ContentMD5=wrong_md5,
    Metadata={"colour": "red"}), "BadDigest", 400)
r, body = get("small")
check(body == second, "the refused PUT replaced the object's body")
check(r["ETag"] == f'"{hashlib.md5(second).hexdigest()}"', f"ETag after the refused PUT: {r['ETag']}")
check(r["Metadata"] == {"colour": "green"}, f"metadata after the refused PUT: {r['Metadata']}")

# The listing holds exactly the objects written: no temporary files in the bucket.
keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
check(keys == ["big", "dir/sub/nested", "empty", "small"], f"listing {keys}")

# A key ending in `/` is a directory object: empty. A directory made by a nested key is
# no object, nor is a file asked for under its key with a `/` added.
s3.put_object(Bucket=bucket, Key="folder/", Body=b"")
r, body = get("folder/")
check(body == b"" and r["ContentLength"] == 0, f"directory object: {len(body)} bytes")
check(r["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"', f"directory object ETag {r['ETag']}")
h = s3.head_object(Bucket=bucket, Key="folder/")
check(h["ContentLength"] == 0, f"directory object HEAD length {h['ContentLength']}")
for key in ["dir/sub", "big/"]:
    expect_error(f"GET {key}", lambda: get(key), "NoSuchKey", 404)
    expect_error(f"HEAD {key}", lambda: s3.head_object(Bucket=bucket, Key=key), "404", 404)

# CopyObject puts the copy in the destination's place whole: readers of the destination
# while copies run see one of the two bodies, never a truncated or mixed one. The copy
# carries the source's attributes (COPY) or the request's (REPLACE), nothing of the
# object it replaced.
MIB = 1024 * KIB
sources = {"copy-a": os.urandom(16 * MIB), "copy-b": os.urandom(16 * MIB)}
by_digest = {hashlib.md5(b).hexdigest(): k for k, b in sources.items()}
for k, b in sources.items():
    s3.put_object(Bucket=bucket, Key=k, Body=b, Metadata={"from": k}, ContentType="application/x-" + k)
s3.put_object(Bucket=bucket, Key="copy-dst", Body=sources["copy-a"], Metadata={"stale": "yes"})
reads, copying = [], threading.Event()
copying.set()


def read_while_copying():
    reader = client()
    while copying.is_set():
        try:
            body = reader.get_object(Bucket=bucket, Key="copy-dst")["Body"].read()
            reads.append(by_digest.get(hashlib.md5(body).hexdigest(), f"neither body ({len(body)} bytes)"))
        except Exception as e:  # a torn read may surface as a short body or an error
            reads.append(f"error {e!r}")


readers = [threading.Thread(target=read_while_copying) for _ in range(2)]
for t in readers:
    t.start()
for i in range(12):
    source = "copy-b" if i % 2 == 0 else "copy-a"
    s3.copy_object(Bucket=bucket, Key="copy-dst", CopySource={"Bucket": bucket, "Key": source})
copying.clear()
for t in readers:
    t.join()
torn = [r for r in reads if r not in sources]
check(reads and not torn, f"{len(reads)} reads during copies; not one of the two bodies: {torn[:3]}")
r, body = get("copy-dst")
check(body == sources["copy-a"], "the last copy's body")
check(r["Metadata"] == {"from": "copy-a"} and r["ContentType"] == "application/x-copy-a",
      f"copied attributes {r['Metadata']} {r['ContentType']}")
s3.copy_object(Bucket=bucket, Key="copy-dst", CopySource={"Bucket": bucket, "Key": "copy-b"},
               MetadataDirective="REPLACE", Metadata={"fresh": "yes"})
r, body = get("copy-dst")
check(body == sources["copy-b"] and r["Metadata"] == {"fresh": "yes"},
      f"REPLACE: {len(body)} bytes, metadata {r['Metadata']}")
s3.copy_object(Bucket=bucket, Key="copy-dst", CopySource={"Bucket": bucket, "Key": "copy-dst"},
               MetadataDirective="REPLACE", Metadata={"again": "yes"})
r, body = get("copy-dst")
check(body == sources["copy-b"] and r["Metadata"] == {"again": "yes"},
      f"onto itself: {len(body)} bytes, metadata {r['Metadata']}")
check(r["ETag"] == f'"{hashlib.md5(sources["copy-b"]).hexdigest()}"', f"ETag after the copies: {r['ETag']}")

# An object is three files (body, attributes, internal info), put in place one after
# another: a HEAD or GET racing overwrites must still see all three from one write.
# Each version's size, metadata and ETag name the same body.
versions = [os.urandom(n) for n in (1000, 3000)]
answers = {(len(v), f'"{hashlib.md5(v).hexdigest()}"', str(len(v))) for v in versions}
mixed, overwriting = [], threading.Event()
overwriting.set()


def read_while_overwriting(op):
    reader = client()
    while overwriting.is_set():
        seen = s3check.read_version_or_error(reader, op, bucket, "versions")
        if seen not in answers:
            mixed.append((op, *seen))


s3.put_object(Bucket=bucket, Key="versions", Body=versions[0], Metadata={"len": str(len(versions[0]))})
readers = [threading.Thread(target=read_while_overwriting, args=(op,)) for op in ("head", "head", "get")]
for t in readers:
    t.start()
for i in range(300):
    v = versions[i % 2]
    s3.put_object(Bucket=bucket, Key="versions", Body=v, Metadata={"len": str(len(v))})
overwriting.clear()
for t in readers:
    t.join()
check(not mixed, f"{len(mixed)} reads mixed two writes, e.g. {mixed[:3]}")

# Copies of the key racing overwrites of it each take the body, attributes and ETag of
# one write, never a mix.
def overwrite_repeatedly():
    writer = client()
    i = 0
    while overwriting.is_set():
        v = versions[i % 2]
        writer.put_object(Bucket=bucket, Key="versions", Body=v, Metadata={"len": str(len(v))})
        i += 1


overwriting.set()
writer = threading.Thread(target=overwrite_repeatedly)
writer.start()
mixed_copies = []
try:
    for _ in range(COPIES):
        s3.copy_object(Bucket=bucket, Key="versions-copy", CopySource={"Bucket": bucket, "Key": "versions"})
        seen = s3check.read_version_or_error(s3, "get", bucket, "versions-copy")
        if seen not in answers:
            mixed_copies.append(seen)
finally:
    overwriting.clear()
    writer.join()
check(not mixed_copies, f"{len(mixed_copies)} of {COPIES} copies racing overwrites mixed two writes, e.g. {mixed_copies[:3]}")

# Conditions on dates compare at the whole second of the Last-Modified a client was
# given (the file's time has nanoseconds): the object's own Last-Modified is "not
# modified since" for a read, and fails a copy that asks for a source modified since.
s3.put_object(Bucket=bucket, Key="dated", Body=b"dated")
modified = s3.head_object(Bucket=bucket, Key="dated")["LastModified"]
expect_error("GET If-Modified-Since its Last-Modified", lambda: get("dated", IfModifiedSince=modified), "304", 304)
check(get("dated", IfUnmodifiedSince=modified)[1] == b"dated", "GET If-Unmodified-Since its Last-Modified")
source = {"Bucket": bucket, "Key": "dated"}
expect_error("copy with x-amz-copy-source-if-modified-since the source's Last-Modified", lambda: s3.copy_object(Bucket=bucket, Key="dated-copy", CopySource=source, CopySourceIfModifiedSince=modified), "PreconditionFailed", 412)
s3.copy_object(Bucket=bucket, Key="dated-copy", CopySource=source, CopySourceIfUnmodifiedSince=modified)
check(get("dated-copy")[1] == b"dated", "copy with x-amz-copy-source-if-unmodified-since the source's Last-Modified")

# A failed condition is the answer even when the Range could not be served (RFC 9110,
# section 13.2.2: conditions before Range); with the conditions met, the Range's 416.
etag = s3.head_object(Bucket=bucket, Key="dated")["ETag"]
other = '"0123456789abcdef0123456789abcdef"'
beyond = "bytes=100-200"
expect_error("unservable Range with If-Match of another ETag", lambda: get("dated", Range=beyond, IfMatch=other), "PreconditionFailed", 412)
expect_error("unservable Range with If-None-Match of the ETag", lambda: get("dated", Range=beyond, IfNoneMatch=etag), "304", 304)
expect_error("unservable Range with If-Modified-Since Last-Modified", lambda: get("dated", Range=beyond, IfModifiedSince=modified), "304", 304)
expect_error("unservable Range with If-Match of the ETag", lambda: get("dated", Range=beyond, IfMatch=etag), "InvalidRange", 416)

# A file put in the bucket's directory by hand has no attributes and no internal info:
# its ETag is its MD5, hashed on read, and its body is still read from the start.
placed = os.urandom(300 * KIB)
with open(os.path.join(root, bucket, "placed"), "wb") as f:
    f.write(placed)
placed_etag = f'"{hashlib.md5(placed).hexdigest()}"'
r, body = get("placed")
check(body == placed, f"placed file read back differently ({len(body)} bytes)")
check(r["ETag"] == placed_etag, f"placed file: ETag {r['ETag']}, want {placed_etag}")
r, body = get("placed", Range="bytes=1000-1999", IfMatch=placed_etag)
check(body == placed[1000:2000], f"placed file, ranged with If-Match: {len(body)} bytes")
expect_error("placed file with If-None-Match of its MD5", lambda: get("placed", IfNoneMatch=placed_etag), "304", 304)
check(s3.head_object(Bucket=bucket, Key="placed")["ETag"] == placed_etag, "placed file: HEAD ETag")

# Copy-source conditions are a read's, in the same order, but a copy refuses with 412
# where a read would answer 304.
earlier = modified - datetime.timedelta(days=1)
expect_error("copy with x-amz-copy-source-if-match of another ETag", lambda: s3.copy_object(Bucket=bucket, Key="cond-copy", CopySource=source, CopySourceIfMatch=other), "PreconditionFailed", 412)
expect_error("copy with x-amz-copy-source-if-none-match of the ETag", lambda: s3.copy_object(Bucket=bucket, Key="cond-copy", CopySource=source, CopySourceIfNoneMatch=etag), "PreconditionFailed", 412)
s3.copy_object(Bucket=bucket, Key="cond-copy", CopySource=source, CopySourceIfMatch=etag, CopySourceIfUnmodifiedSince=earlier)
check(get("cond-copy")[1] == b"dated", "copy-source If-Match of the ETag decides over If-Unmodified-Since a day before")
s3.copy_object(Bucket=bucket, Key="cond-copy", CopySource=source, CopySourceIfNoneMatch=other, CopySourceIfModifiedSince=modified)
check(get("cond-copy")[1] == b"dated", "copy-source If-None-Match of another ETag decides over If-Modified-Since Last-Modified")
# The placed file's ETag, its MD5, is the one its copy gets and its conditions compare.
r = s3.copy_object(Bucket=bucket, Key="placed-copy", CopySource={"Bucket": bucket, "Key": "placed"}, CopySourceIfMatch=placed_etag)
check(r["CopyObjectResult"]["ETag"] == placed_etag, f"copy of the placed file: ETag {r['CopyObjectResult']['ETag']}")
check(get("placed-copy")[1] == placed, "copy of the placed file reads back differently")

# An aws-chunked body whose bytes do not add up to its x-amz-decoded-content-length is
# refused with IncompleteBody, as S3 refuses it, whether it is small (held in memory),
# large (streamed to a file) or a part; longer or shorter. Nothing is stored: the object
# it would have replaced stays, a new key stays absent, an upload gets no part.
def send_chunked(key, data, declared, query=""):
    """PUTs `data` as one aws-chunked chunk (STREAMING-UNSIGNED-PAYLOAD-TRAILER, with
    the data's right CRC32 as trailer) declaring `declared` decoded bytes; the answer's
    status and body."""
    import urllib.request
    import zlib
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big"))
    body = b"%x\r\n" % len(data) + data + b"\r\n0\r\nx-amz-checksum-crc32:" + crc + b"\r\n\r\n"
    url = f"{os.environ['SG_ENDPOINT']}/{bucket}/{key}{query}"
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(declared),
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32",
        "Content-Length": str(len(body)),
    }
    req = AWSRequest(method="PUT", url=url, data=body, headers=headers)
    SigV4Auth(s3._request_signer._credentials, "s3", "us-east-1").add_auth(req)
    prepared = urllib.request.Request(url, data=body, method="PUT", headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(prepared) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


chunked_ok = os.urandom(3 * KIB)
status, answer = send_chunked("chunked", chunked_ok, len(chunked_ok))
check(status == 200, f"aws-chunked PUT of its declared length: {status} {answer[:200]!r}")
check(get("chunked")[1] == chunked_ok, "aws-chunked PUT read back differently")
upload = s3.create_multipart_upload(Bucket=bucket, Key="chunked-upload")["UploadId"]
for what, key, size, declared, query in [
    ("small, longer than declared", "chunked", 3 * KIB, 2 * KIB, ""),
    ("small, shorter than declared", "chunked", 2 * KIB, 3 * KIB, ""),
    ("large, longer than declared", "chunked", 300 * KIB, 200 * KIB, ""),
    ("large, shorter than declared", "chunked", 200 * KIB, 300 * KIB, ""),
    ("new key, shorter than declared", "chunked-new", 200 * KIB, 300 * KIB, ""),
    ("part, longer than declared", "chunked-upload", 6 * KIB, 5 * KIB, f"?partNumber=1&uploadId={upload}"),
    ("part, shorter than declared", "chunked-upload", 5 * KIB, 6 * KIB, f"?partNumber=1&uploadId={upload}"),
]:
    status, answer = send_chunked(key, os.urandom(size), declared, query)
    check(status == 400 and b"<Code>IncompleteBody</Code>" in answer, f"aws-chunked {what}: {status} {answer[:200]!r}")
check(get("chunked")[1] == chunked_ok, "a refused aws-chunked PUT replaced the object")
expect_error("key of a refused aws-chunked PUT", lambda: get("chunked-new"), "NoSuchKey", 404)
parts = s3.list_parts(Bucket=bucket, Key="chunked-upload", UploadId=upload).get("Parts", [])
check(parts == [], f"parts of refused aws-chunked uploads: {parts}")
s3.abort_multipart_upload(Bucket=bucket, Key="chunked-upload", UploadId=upload)

print(f"ok {s3check.passed}")
