# Driven by tests/upload_registry.rs: multipart uploads through a proxy with an upload
# registry, in two phases around a proxy restart (the second proxy starts with empty
# caches, so every envelope it needs comes from the registry). Each step is checked
# here; any failure exits non-zero naming the step.
#
# usage: upload_registry.py PHASE BUCKET REGISTRY STATE_FILE
#   PHASE       before-restart | after-restart
#   REGISTRY    the registry bucket; its records are read and altered directly, in
#               SG_REGISTRY_DIR (the embedded backend's files) or at SG_DIRECT_ENDPOINT
#               with SG_DIRECT_ACCESS_KEY / SG_DIRECT_SECRET_KEY (a real backend)
import json
import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from s3check import check, expect_error, fail

MIB = 1024 * 1024
PREFIX = "pending-uploads/"


def s3_client(endpoint, access_key, secret_key):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            request_checksum_calculation="when_required",
        ),
    )


class Records:
    """The registry's records, seen directly on the backend."""

    def __init__(self, registry):
        self.registry = registry
        self.dir = os.environ.get("SG_REGISTRY_DIR")
        if not self.dir:
            self.s3 = s3_client(
                os.environ["SG_DIRECT_ENDPOINT"],
                os.environ["SG_DIRECT_ACCESS_KEY"],
                os.environ["SG_DIRECT_SECRET_KEY"],
            )

    def names(self):
        if self.dir:
            d = os.path.join(self.dir, PREFIX)
            return sorted(os.listdir(d)) if os.path.isdir(d) else []
        r = self.s3.list_objects_v2(Bucket=self.registry, Prefix=PREFIX)
        return sorted(o["Key"][len(PREFIX):] for o in r.get("Contents", []))

    def read(self, name):
        if self.dir:
            with open(os.path.join(self.dir, PREFIX, name), "rb") as f:
                return f.read()
        return self.s3.get_object(Bucket=self.registry, Key=PREFIX + name)["Body"].read()

    def write(self, name, data):
        if self.dir:
            with open(os.path.join(self.dir, PREFIX, name), "wb") as f:
                f.write(data)
            return
        self.s3.put_object(Bucket=self.registry, Key=PREFIX + name, Body=data)

    def wait_for_count(self, n, step):
        # Records of finished uploads are deleted in the background.
        deadline = time.time() + 10
        while time.time() < deadline:
            names = self.names()
            if len(names) == n:
                return names
            time.sleep(0.1)
        fail(f"{step}: {len(self.names())} records in the registry, want {n}")


def check_listed(s3, bucket, want, step):
    """ListMultipartUploads names exactly `want`, (key, upload id) pairs. The embedded
    backend has no ListMultipartUploads; there the step checks nothing."""
    try:
        r = s3.list_multipart_uploads(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"].get("Code") == "NotImplemented" and os.environ.get("SG_REGISTRY_DIR"):
            return
        raise
    got = {(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])}
    check(got == want, f"{step}: listed uploads {sorted(got)}, want {sorted(want)}")


def part_sizes(s3, bucket, key, upload_id):
    """ListParts sizes as listed, which S3 orders by part number (the embedded backend
    lists them unordered; the proxy sorts them)."""
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    numbers = [p["PartNumber"] for p in parts]
    check(numbers == sorted(numbers), f"ListParts not ordered by part number: {numbers}")
    return [p["Size"] for p in parts]


def before_restart(s3, bucket, registry, records, state_file):
    # The registry bucket is the proxy's own.
    expect_error("list the registry through the proxy", lambda: s3.list_objects_v2(Bucket=registry), "AccessDenied", 403)
    expect_error("write into the registry through the proxy", lambda: s3.put_object(Bucket=registry, Key=PREFIX + "x", Body=b"x"), "AccessDenied", 403)

    # A whole upload: the id is the backend's, listed as returned; parts listed in
    # plaintext sizes; the record goes with the completed upload.
    u1 = s3.create_multipart_upload(Bucket=bucket, Key="a")["UploadId"]
    check(not u1.startswith("sg1."), f"upload id carries the envelope: {u1[:40]}")
    check_listed(s3, bucket, {("a", u1)}, "one upload started")
    records.wait_for_count(1, "one upload started")
    p1, p2 = os.urandom(5 * MIB), os.urandom(1000)
    e1 = s3.upload_part(Bucket=bucket, Key="a", UploadId=u1, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="a", UploadId=u1, PartNumber=2, Body=p2)["ETag"]
    sizes = part_sizes(s3, bucket, "a", u1)
    check(sizes == [5 * MIB, 1000], f"ListParts sizes {sizes}")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="a", UploadId=u1,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    check(s3.get_object(Bucket=bucket, Key="a")["Body"].read() == p1 + p2, "completed object reads back different")
    records.wait_for_count(0, "upload completed")
    check_listed(s3, bucket, set(), "upload completed")

    # An aborted upload's record goes too.
    u2 = s3.create_multipart_upload(Bucket=bucket, Key="a")["UploadId"]
    records.wait_for_count(1, "second upload started")
    s3.abort_multipart_upload(Bucket=bucket, Key="a", UploadId=u2)
    records.wait_for_count(0, "upload aborted")

    # Uploads left pending across the restart: b and c continue, d and e get their
    # records swapped while the proxy is down.
    state = {}
    for key in ["b", "c", "d", "e"]:
        uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        part = os.urandom(5 * MIB)
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=part)["ETag"]
        state[key] = {"id": uid, "etag": etag, "part1": part.hex()}
    names = records.wait_for_count(4, "four uploads pending")
    check_listed(s3, bucket, {(k, v["id"]) for k, v in state.items()}, "four uploads pending")
    with open(state_file, "w") as f:
        json.dump({"uploads": state, "records": names}, f)
    print("before restart: ok")


def after_restart(s3, bucket, registry, records, state_file):
    with open(state_file) as f:
        saved = json.load(f)
    uploads = saved["uploads"]
    check_listed(s3, bucket, {(k, v["id"]) for k, v in uploads.items()}, "after the restart")

    # Swap the records of d and e before this proxy has looked at either.
    by_content = {records.read(n): n for n in records.names()}
    check(len(by_content) == 4, "records are not four distinct envelopes")
    # b and c continue: their records are read fresh, untouched.
    for key in ["b", "c"]:
        u = uploads[key]
        p2 = os.urandom(777)
        e2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=u["id"], PartNumber=2, Body=p2)["ETag"]
        sizes = part_sizes(s3, bucket, key, u["id"])
        check(sizes == [5 * MIB, 777], f"{key}: ListParts sizes after restart {sizes}")
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=u["id"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": u["etag"]}, {"PartNumber": 2, "ETag": e2}]},
        )
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        check(got == bytes.fromhex(u["part1"]) + p2, f"{key}: object continued after the restart reads back different")
    left = records.wait_for_count(2, "b and c completed")
    # The two records left are d's and e's: swap them.
    a, b = left
    ra, rb = records.read(a), records.read(b)
    records.write(a, rb)
    records.write(b, ra)
    for key in ["d", "e"]:
        u = uploads[key]
        try:
            s3.upload_part(Bucket=bucket, Key=key, UploadId=u["id"], PartNumber=2, Body=b"x" * 100)
            fail(f"{key}: a part was taken under another upload's envelope")
        except ClientError as e:
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            check(status == 500, f"{key}: swapped record answered {status}")
        parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=u["id"]).get("Parts", [])
        check([p["PartNumber"] for p in parts] == [1], f"{key}: parts after the refused one {parts}")
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=u["id"])
    records.wait_for_count(0, "d and e aborted")
    check_listed(s3, bucket, set(), "last upload aborted")
    print("after restart: ok")


def main():
    phase, bucket, registry, state_file = sys.argv[1:5]
    s3 = s3_client(os.environ["SG_ENDPOINT"], os.environ["SG_ACCESS_KEY"], os.environ["SG_SECRET_KEY"])
    records = Records(registry)
    {"before-restart": before_restart, "after-restart": after_restart}[phase](s3, bucket, registry, records, state_file)


main()
