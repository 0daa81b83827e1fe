# Driven by tests/embedded_backend.rs: deletes on the embedded backend on its own, with
# boto3. An object is three files (body, attributes, internal info); a deleted object
# must leave none of them behind. DeleteObjects answers each key on its own, as S3 does:
# a key the backend cannot store is an <Error> entry and the other keys are deleted, and
# quiet mode lists only the errors. DeleteBucket refuses a bucket that holds an object
# (409 BucketNotEmpty) and leaves every object in it, and takes the bucket's unfinished
# multipart uploads with it; a write into a missing bucket is NoSuchBucket and makes no
# bucket. Reads racing deletes see an object whole, with its attributes, or no object;
# PUTs, DELETEs and copies of a key onto itself racing each other end as one of them,
# never as a body without its attributes or with another write's.
#
# usage: embedded_deletes.py BUCKET ROOT  prints "ok" and the number of checks
#        (ROOT: the directory that holds the backend's buckets and the object files'
#        attributes and internal info)

import base64
import hashlib
import os
import sys
import threading

# run_python writes the shared client and step checks beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boto3_client import client  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
import s3check  # noqa: E402

check, expect_error = s3check.check, s3check.expect_error

s3 = client()
bucket, root = sys.argv[1], sys.argv[2]
s3.create_bucket(Bucket=bucket)


def files_of(name):
    """The files in ROOT that hold attributes or internal info of bucket `name`'s objects."""
    encoded = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
    return sorted(f for f in os.listdir(root) if f.startswith(f".bucket-{encoded}."))


def keys():
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


# DeleteObject removes the object's attributes and internal info with its body, under a
# nested key too; deleting it again, or a key never written, answers 204.
s3.put_object(Bucket=bucket, Key="one", Body=b"1", Metadata={"m": "1"})
s3.put_object(Bucket=bucket, Key="a/b/two", Body=b"2", Metadata={"m": "2"})
check(len(files_of(bucket)) == 4, f"attribute and info files of two objects: {files_of(bucket)}")
for key in ("one", "a/b/two"):
    r = s3.delete_object(Bucket=bucket, Key=key)
    check(r["ResponseMetadata"]["HTTPStatusCode"] == 204, f"delete {key}: {r['ResponseMetadata']['HTTPStatusCode']}")
check(files_of(bucket) == [], f"files left by deleted objects: {files_of(bucket)}")
for key in ("one", "never-written", "a/b"):
    r = s3.delete_object(Bucket=bucket, Key=key)
    check(r["ResponseMetadata"]["HTTPStatusCode"] == 204, f"delete of missing {key}: {r['ResponseMetadata']['HTTPStatusCode']}")
expect_error("GET of a deleted object", lambda: s3.get_object(Bucket=bucket, Key="one"), "NoSuchKey", 404)
expect_error("DeleteObject in a missing bucket", lambda: s3.delete_object(Bucket=bucket + "-missing", Key="k"), "NoSuchBucket", 404)

# DeleteObjects: each key on its own. An unstorable key among them is an error entry; the
# keys around it are deleted, with their files.
for key in ("x1", "x2", "x3"):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode(), Metadata={"k": key})
r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "x1"}, {"Key": "../outside"}, {"Key": "x2"}, {"Key": "never"}]})
check(sorted(d["Key"] for d in r.get("Deleted", [])) == ["never", "x1", "x2"], f"Deleted: {r.get('Deleted')}")
errors = [(e["Key"], e["Code"]) for e in r.get("Errors", [])]
check(errors == [("../outside", "InvalidArgument")], f"Errors: {r.get('Errors')}")
check(keys() == ["x3"], f"keys after DeleteObjects: {keys()}")
check(len(files_of(bucket)) == 2, f"files after DeleteObjects (x3's two): {files_of(bucket)}")

# Quiet mode lists only the errors.
r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "x3"}, {"Key": "/absolute"}], "Quiet": True})
check("Deleted" not in r, f"quiet mode listed deletions: {r.get('Deleted')}")
check([(e["Key"], e["Code"]) for e in r.get("Errors", [])] == [("/absolute", "InvalidArgument")], f"quiet Errors: {r.get('Errors')}")
check(keys() == [] and files_of(bucket) == [], f"after quiet DeleteObjects: {keys()} {files_of(bucket)}")
expect_error("DeleteObjects in a missing bucket",
             lambda: s3.delete_objects(Bucket=bucket + "-missing", Delete={"Objects": [{"Key": "k"}]}), "NoSuchBucket", 404)

# DeleteBucket refuses a bucket with an object in it, however deep, and keeps the object.
other = bucket + "-full"
s3.create_bucket(Bucket=other)
s3.put_object(Bucket=other, Key="deep/down/object", Body=b"kept", Metadata={"m": "kept"})
expect_error("DeleteBucket of a bucket holding an object", lambda: s3.delete_bucket(Bucket=other), "BucketNotEmpty", 409)
r = s3.get_object(Bucket=other, Key="deep/down/object")
check(r["Body"].read() == b"kept" and r["Metadata"] == {"m": "kept"}, "object of a bucket DeleteBucket refused")
# Once its object is deleted (directories of nested keys are no objects), it goes, and
# nothing of it stays.
s3.delete_object(Bucket=other, Key="deep/down/object")
r = s3.delete_bucket(Bucket=other)
check(r["ResponseMetadata"]["HTTPStatusCode"] == 204, f"DeleteBucket of an emptied bucket: {r['ResponseMetadata']['HTTPStatusCode']}")
check(other not in os.listdir(root) and files_of(other) == [], f"left of a deleted bucket: {files_of(other)}")
expect_error("DeleteBucket of a missing bucket", lambda: s3.delete_bucket(Bucket=other), "NoSuchBucket", 404)

# DeleteBucket takes the bucket's unfinished multipart uploads with it, as S3 does:
# nothing of the upload stays in the root.
pending = bucket + "-pending"
s3.create_bucket(Bucket=pending)
upload = s3.create_multipart_upload(Bucket=pending, Key="big", Metadata={"m": "x"})["UploadId"]
s3.upload_part(Bucket=pending, Key="big", UploadId=upload, PartNumber=1, Body=os.urandom(1024))
check(any(upload in f for f in os.listdir(root)), "an unfinished upload's files in the root")
r = s3.delete_bucket(Bucket=pending)
check(r["ResponseMetadata"]["HTTPStatusCode"] == 204, f"DeleteBucket with an unfinished upload: {r['ResponseMetadata']['HTTPStatusCode']}")
left = [f for f in os.listdir(root) if upload in f]
check(left == [] and files_of(pending) == [], f"left of a deleted bucket's upload: {left} {files_of(pending)}")

# A write into a bucket that does not exist is NoSuchBucket, and makes no bucket: not a
# PUT, a directory object, a copy or a multipart upload (upstream made the directory).
missing = bucket + "-never-made"
s3.put_object(Bucket=bucket, Key="source", Body=b"s")
expect_error("PUT into a missing bucket", lambda: s3.put_object(Bucket=missing, Key="k", Body=b"x"), "NoSuchBucket", 404)
expect_error("PUT of a nested key into a missing bucket",
             lambda: s3.put_object(Bucket=missing, Key="a/b", Body=b"x"), "NoSuchBucket", 404)
expect_error("directory object in a missing bucket", lambda: s3.put_object(Bucket=missing, Key="d/", Body=b""), "NoSuchBucket", 404)
expect_error("copy into a missing bucket",
             lambda: s3.copy_object(Bucket=missing, Key="k", CopySource={"Bucket": bucket, "Key": "source"}), "NoSuchBucket", 404)
expect_error("multipart upload into a missing bucket",
             lambda: s3.create_multipart_upload(Bucket=missing, Key="k"), "NoSuchBucket", 404)
check(missing not in os.listdir(root) and files_of(missing) == [], f"a missing bucket written to: {files_of(missing)}")
expect_error("HeadBucket of the missing bucket", lambda: s3.head_bucket(Bucket=missing), "404", 404)
s3.delete_object(Bucket=bucket, Key="source")

# Reads racing a writer that PUTs and DELETEs one key, a second writer deleting it too,
# and a third copying it onto itself with fresh attributes (REPLACE, with the length of
# the body it copies, as the PUTs set it): every read sees no object, or a body with
# the attributes and ETag of its own write. A copy answers, succeeds, or finds the key
# gone or changed (404, 412), never an error of its own. When the writers stop, the key
# holds one whole object or none.
versions = [os.urandom(n) for n in (1000, 3000)]
answers = {(len(v), f'"{hashlib.md5(v).hexdigest()}"', str(len(v))) for v in versions}
mixed, missing, running = [], [0], threading.Event()
copies, copy_errors = [0], []
running.set()


def read_while_deleting(op):
    reader = client()
    while running.is_set():
        try:
            seen = s3check.read_version(reader, op, bucket, "racing")
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                mixed.append((op, "error", e.response["Error"].get("Code")))
            missing[0] += 1
            continue
        if seen not in answers:
            mixed.append((op, *seen))


def delete_repeatedly():
    deleter = client()
    while running.is_set():
        deleter.delete_object(Bucket=bucket, Key="racing")


def copy_onto_itself_repeatedly():
    copier = client()
    while running.is_set():
        try:
            h = copier.head_object(Bucket=bucket, Key="racing")
            copier.copy_object(Bucket=bucket, Key="racing", CopySource={"Bucket": bucket, "Key": "racing"},
                               CopySourceIfMatch=h["ETag"], MetadataDirective="REPLACE",
                               Metadata={"len": str(h["ContentLength"])})
            copies[0] += 1
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] not in (404, 412):
                copy_errors.append(e.response["Error"].get("Code"))


threads = [threading.Thread(target=read_while_deleting, args=(op,)) for op in ("head", "get", "get")]
threads.append(threading.Thread(target=delete_repeatedly))
threads.append(threading.Thread(target=copy_onto_itself_repeatedly))
for t in threads:
    t.start()
for i in range(300):
    v = versions[i % 2]
    s3.put_object(Bucket=bucket, Key="racing", Body=v, Metadata={"len": str(len(v))})
    if i % 3 == 0:
        s3.delete_object(Bucket=bucket, Key="racing")
running.clear()
for t in threads:
    t.join()
check(not mixed, f"{len(mixed)} reads racing deletes saw a partial object, e.g. {mixed[:3]}")
check(missing[0] > 0, "no read found the key deleted: the race did not run")
check(not copy_errors, f"{len(copy_errors)} copies onto the racing key failed, e.g. {copy_errors[:3]}")
check(copies[0] > 0, "no copy onto the racing key succeeded: the race did not run")
try:
    r = s3.get_object(Bucket=bucket, Key="racing")
    final = (len(r["Body"].read()), r["ETag"], r["Metadata"].get("len"))
    check(final in answers, f"the key after racing writers: {final}")
    check(len(files_of(bucket)) == 2, f"files of the one object left: {files_of(bucket)}")
except ClientError as e:
    check(e.response["Error"]["Code"] == "NoSuchKey", f"the key after racing writers: {e.response['Error']}")
    check(files_of(bucket) == [], f"files left with no object: {files_of(bucket)}")

print(f"ok {s3check.passed}")
