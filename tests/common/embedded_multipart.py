# Driven by tests/embedded_backend.rs: multipart uploads to the embedded backend on its
# own, with boto3. CompleteMultipartUpload checks the whole part list before it changes
# anything (vendor/README.md): a list S3 refuses (parts out of order, a part missing, an
# ETag that is not the part's, a part under 5 MiB before the last) is refused the same
# way and leaves the upload whole, so the client can complete it after all. Part numbers
# may have gaps. The object's ETag is the MD5 of the parts' MD5s and their count, and
# nothing of an object it replaces (metadata, body) carries over. ListParts lists the
# parts in order with their ETags. An upload id it never issued is NoSuchUpload in every
# call, whatever its spelling.
#
# usage: embedded_multipart.py BUCKET       prints "ok" and the number of checks
import hashlib
import os
import sys

# run_python writes the shared client and step checks beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boto3_client import client  # noqa: E402
import s3check  # noqa: E402

MIB = 1024 * 1024
check, expect_error = s3check.check, s3check.expect_error


s3 = client()
bucket = sys.argv[1]
s3.create_bucket(Bucket=bucket)
key = "assembled"

# An object already at the key, with metadata the upload does not set.
s3.put_object(Bucket=bucket, Key=key, Body=b"old body", Metadata={"stale": "yes"})

upload = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata={"fresh": "yes"})["UploadId"]
bodies = {1: os.urandom(5 * MIB), 3: os.urandom(5 * MIB + 17), 4: os.urandom(1234)}
etags = {}
for n, body in bodies.items():
    etags[n] = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]
    check(etags[n] == f'"{hashlib.md5(body).hexdigest()}"', f"part {n} ETag {etags[n]}")
small = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=2, Body=b"tiny")["ETag"]
listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]
check([(p["PartNumber"], p["ETag"], p["Size"]) for p in listed]
      == [(1, etags[1], len(bodies[1])), (2, small, 4), (3, etags[3], len(bodies[3])), (4, etags[4], len(bodies[4]))],
      f"ListParts: {[(p['PartNumber'], p.get('ETag'), p['Size']) for p in listed]}")


def complete(parts):
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})


def untouched(step):
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload).get("Parts", [])
    numbers = sorted(p["PartNumber"] for p in listed)
    check(numbers == [1, 2, 3, 4], f"after {step}: parts {numbers}")
    r = s3.get_object(Bucket=bucket, Key=key)
    check(r["Body"].read() == b"old body", f"after {step}: the old object changed")


expect_error("parts out of order", lambda: complete([(3, etags[3]), (1, etags[1])]),
             "InvalidPartOrder", 400)
untouched("parts out of order")
expect_error("a part listed twice", lambda: complete([(1, etags[1]), (1, etags[1])]),
             "InvalidPartOrder", 400)
expect_error("a part never uploaded", lambda: complete([(1, etags[1]), (5, etags[4])]),
             "InvalidPart", 400)
untouched("a missing part")
expect_error("another part's ETag", lambda: complete([(1, etags[3]), (3, etags[3])]),
             "InvalidPart", 400)
untouched("a wrong ETag")
expect_error("a small part before the last", lambda: complete([(1, etags[1]), (2, small), (3, etags[3])]),
             "EntityTooSmall", 400)
untouched("a small part")

# Parts 1, 3 and 4: a gap, and a last part under 5 MiB.
done = complete([(1, etags[1]), (3, etags[3]), (4, etags[4])])
md5s = b"".join(hashlib.md5(bodies[n]).digest() for n in (1, 3, 4))
want_etag = f'"{hashlib.md5(md5s).hexdigest()}-3"'
check(done["ETag"] == want_etag, f"completed ETag {done['ETag']}, want {want_etag}")
r = s3.get_object(Bucket=bucket, Key=key)
body = r["Body"].read()
check(body == bodies[1] + bodies[3] + bodies[4], f"assembled body: {len(body)} bytes")
check(r["ETag"] == want_etag, f"GET ETag {r['ETag']}")
check(r["Metadata"] == {"fresh": "yes"}, f"metadata {r['Metadata']}: the replaced object's carried over")
r = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={5 * MIB - 2}-{5 * MIB + 1}")
check(r["Body"].read() == bodies[1][-2:] + bodies[3][:2], "a range across the parts' seam")

# The upload is gone, and with it every part (part 2 was uploaded, never listed).
expect_error("the completed upload", lambda: s3.list_parts(Bucket=bucket, Key=key, UploadId=upload),
             "NoSuchUpload", 404)
keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
check(keys == [key], f"listing {keys}")
expect_error("aborting the completed upload",
             lambda: s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload), "NoSuchUpload", 404)

# A part uploaded again: only its latest ETag completes the upload.
key2 = "replaced-part"
upload2 = s3.create_multipart_upload(Bucket=bucket, Key=key2)["UploadId"]
first, second, tail = os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"
old = s3.upload_part(Bucket=bucket, Key=key2, UploadId=upload2, PartNumber=1, Body=first)["ETag"]
new = s3.upload_part(Bucket=bucket, Key=key2, UploadId=upload2, PartNumber=1, Body=second)["ETag"]
last = s3.upload_part(Bucket=bucket, Key=key2, UploadId=upload2, PartNumber=2, Body=tail)["ETag"]


def complete2(parts):
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key2, UploadId=upload2,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})


expect_error("a replaced part's old ETag", lambda: complete2([(1, old), (2, last)]), "InvalidPart", 400)
# Replaced by a copy: the copy's ETag is the part's now, not the upload's before it.
copied = s3.upload_part_copy(Bucket=bucket, Key=key2, UploadId=upload2, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": key},
                             CopySourceRange=f"bytes=0-{5 * MIB - 1}")["CopyPartResult"]["ETag"]
check(copied == f'"{hashlib.md5(bodies[1]).hexdigest()}"', f"copied part ETag {copied}")
listed = s3.list_parts(Bucket=bucket, Key=key2, UploadId=upload2)["Parts"]
check(listed[0]["ETag"] == copied, f"ListParts after the copy: {listed[0].get('ETag')}")
expect_error("the ETag from before the copy", lambda: complete2([(1, new), (2, last)]), "InvalidPart", 400)
new = s3.upload_part(Bucket=bucket, Key=key2, UploadId=upload2, PartNumber=1, Body=second)["ETag"]
complete2([(1, new), (2, last)])
body = s3.get_object(Bucket=bucket, Key=key2)["Body"].read()
check(body == second + tail, f"replaced part: {len(body)} bytes, the latest part's content")

# An upload id that is no id of this backend's, however spelled, is an unknown upload.
for bogus in ("not-an-upload-id", "00000000-0000-0000-0000-000000000000"):
    expect_error(f"UploadPart to {bogus}", lambda: s3.upload_part(
        Bucket=bucket, Key=key2, UploadId=bogus, PartNumber=1, Body=b"x"), "NoSuchUpload", 404)
    expect_error(f"UploadPartCopy to {bogus}", lambda: s3.upload_part_copy(
        Bucket=bucket, Key=key2, UploadId=bogus, PartNumber=1,
        CopySource={"Bucket": bucket, "Key": key}), "NoSuchUpload", 404)
    expect_error(f"ListParts of {bogus}", lambda: s3.list_parts(
        Bucket=bucket, Key=key2, UploadId=bogus), "NoSuchUpload", 404)
    expect_error(f"CompleteMultipartUpload of {bogus}", lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key=key2, UploadId=bogus,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": new}]}), "NoSuchUpload", 404)
    expect_error(f"AbortMultipartUpload of {bogus}", lambda: s3.abort_multipart_upload(
        Bucket=bucket, Key=key2, UploadId=bogus), "NoSuchUpload", 404)

print(f"ok {s3check.passed}")
