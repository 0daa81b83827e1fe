# Scenarios for tests/copy.rs and tests/migrate.rs, driven through the proxy with
# boto3 and the aws CLI (real clients), checked against the backend directly where it
# has an address of its own. Exits non-zero on the first failed check.
import base64
import json
import os
import random
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

MIB = 1024 * 1024
ENVELOPE = "sealgate-envelope"


def proxy():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["SG_ENDPOINT"],
        aws_access_key_id=os.environ["SG_ACCESS_KEY"],
        aws_secret_access_key=os.environ["SG_SECRET_KEY"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def direct():
    """The backend itself, or None for the embedded backend."""
    if not os.environ.get("SG_DIRECT_ENDPOINT"):
        return None
    extra = {}
    if os.environ.get("SG_DIRECT_CEPH"):
        extra = {"request_checksum_calculation": "when_required"}
    return boto3.client(
        "s3",
        endpoint_url=os.environ["SG_DIRECT_ENDPOINT"],
        aws_access_key_id=os.environ["SG_DIRECT_ACCESS_KEY"],
        aws_secret_access_key=os.environ["SG_DIRECT_SECRET_KEY"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **extra),
    )


def check(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def metric(name, labels=None):
    text = urllib.request.urlopen(os.environ["SG_ADMIN"] + "/metrics").read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        if labels and not all(f'{k}="{v}"' in (m.group(2) or "") for k, v in labels.items()):
            continue
        total += float(m.group(3))
    return total


def copy_bytes():
    return metric("sealgate_copy_bytes_total")


def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"].get("Message", "")
    return None, None


def data(n, seed):
    return random.Random(seed).randbytes(n)


def read(c, bucket, key, rng=None):
    kw = {"Range": rng} if rng else {}
    return c.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def envelope_key_id(d, bucket, key):
    """The KMS key id named by the stored envelope (FORMAT.md §2), from the backend."""
    meta = d.head_object(Bucket=bucket, Key=key)["Metadata"]
    raw = base64.b64decode(meta[ENVELOPE])
    n = int.from_bytes(raw[3:5], "big")
    return raw[5 : 5 + n].decode()


def make_buckets(c, *names):
    for b in names:
        c.create_bucket(Bucket=b)


def scenario_copy():
    c, d = proxy(), direct()
    a, b, plain = os.environ["SG_BUCKET_A"], os.environ["SG_BUCKET_B"], os.environ["SG_BUCKET_PLAIN"]
    key_a, key_b = os.environ["SG_KEY_A"], os.environ["SG_KEY_B"]
    make_buckets(c, a, b, plain)
    small = data(300_000, 1)
    c.put_object(Bucket=a, Key="small", Body=small, Metadata={"color": "blue"}, ContentType="text/x-small")
    etag = c.head_object(Bucket=a, Key="small")["ETag"]

    # Server-side copy between buckets under different KMS keys: no bytes through.
    before, copies = copy_bytes(), metric("sealgate_copies_total", {"kind": "server_side"})
    r = c.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": a, "Key": "small"})
    check(copy_bytes() == before, "server-side copy moved no object bytes through the proxy")
    check(metric("sealgate_copies_total", {"kind": "server_side"}) == copies + 1, "counted as a server-side copy")
    check(r.get("SSEKMSKeyId") == key_b and r.get("ServerSideEncryption") == "aws:kms", f"copy answers the destination key ({r.get('SSEKMSKeyId')})")
    check(r["CopyObjectResult"]["ETag"], "CopyObjectResult has an ETag")
    check(read(c, b, "copy") == small, "copy reads back identical")
    h = c.head_object(Bucket=b, Key="copy")
    check(h["Metadata"] == {"color": "blue"} and h["ContentType"] == "text/x-small", f"COPY kept metadata and content type ({h['Metadata']}, {h['ContentType']})")
    if d:
        check(envelope_key_id(d, b, "copy") == key_b, "the stored envelope names the destination key")
        check(envelope_key_id(d, a, "small") == key_a, "the source envelope still names its key")

    # REPLACE: the request's metadata and content headers.
    c.copy_object(Bucket=b, Key="replaced", CopySource={"Bucket": a, "Key": "small"},
                  MetadataDirective="REPLACE", Metadata={"shape": "round"}, ContentType="application/x-replaced")
    h = c.head_object(Bucket=b, Key="replaced")
    check(h["Metadata"] == {"shape": "round"} and h["ContentType"] == "application/x-replaced", f"REPLACE took the request's metadata ({h['Metadata']})")
    check(read(c, b, "replaced") == small, "REPLACE copy reads back")

    # Conditional copies.
    src = {"Bucket": a, "Key": "small"}
    conds = [
        ("CopySourceIfMatch", '"0123456789abcdef0123456789abcdef"'),
        ("CopySourceIfNoneMatch", etag),
        ("CopySourceIfModifiedSince", "2099-01-01T00:00:00Z"),
        ("CopySourceIfUnmodifiedSince", "2000-01-01T00:00:00Z"),
    ]
    for name, value in conds:
        code, _ = error_code(lambda: c.copy_object(Bucket=b, Key="cond", CopySource=src, **{name: value}))
        check(code == "PreconditionFailed", f"{name} failing is 412 PreconditionFailed (got {code})")
    code, _ = error_code(lambda: c.head_object(Bucket=b, Key="cond"))
    check(code in ("404", "NoSuchKey"), "no failed conditional copy wrote anything")
    c.copy_object(Bucket=b, Key="cond", CopySource=src, CopySourceIfMatch=etag, CopySourceIfUnmodifiedSince="2000-01-01T00:00:00Z")
    check(read(c, b, "cond") == small, "a matching If-Match wins over If-Unmodified-Since")

    # A tampered envelope on the copy makes reads fail.
    if d:
        meta = d.head_object(Bucket=b, Key="copy")["Metadata"]
        raw = bytearray(base64.b64decode(meta[ENVELOPE]))
        raw[-1] ^= 1
        meta[ENVELOPE] = base64.b64encode(bytes(raw)).decode()
        d.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "copy"}, MetadataDirective="REPLACE", Metadata=meta)
        code, _ = error_code(lambda: read(c, b, "copy"))
        check(code == "InternalError", f"a tampered copy envelope fails the read (got {code})")

    # Plaintext source: sealed through the proxy.
    pattern = data(200_000, 2)
    c.put_object(Bucket=plain, Key="p", Body=pattern, Metadata={"origin": "plain"})
    before = copy_bytes()
    r = c.copy_object(Bucket=a, Key="from-plain", CopySource={"Bucket": plain, "Key": "p"})
    check(copy_bytes() - before >= 2 * len(pattern), "a plaintext source moved through the proxy (read and written)")
    check(r.get("SSEKMSKeyId") == key_a, "the sealed copy names the bucket's key")
    check(read(c, a, "from-plain") == pattern, "the sealed copy reads back identical")
    check(c.head_object(Bucket=a, Key="from-plain")["Metadata"] == {"origin": "plain"}, "metadata kept on a sealing copy")
    if d:
        stored = read(d, a, "from-plain")
        check(pattern[1000:1064] not in stored and len(stored) > len(pattern), "raw backend bytes hold no plaintext")

    # Encrypted source into a plaintext bucket: opened through the proxy.
    c.copy_object(Bucket=plain, Key="decrypted", CopySource={"Bucket": a, "Key": "small"})
    check(read(c, plain, "decrypted") == small, "decrypting copy reads back")
    if d:
        check(read(d, plain, "decrypted") == small, "decrypting copy is plaintext on the backend")

    # Multipart source: copied as a grid, part count kept, ranges read.
    big = data(11 * MIB + 12345, 3)
    path = os.path.join(os.environ["SG_WORK_DIR"], "big")
    with open(path, "wb") as f:
        f.write(big)
    c.upload_file(path, a, "mp", Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB))
    check(c.head_object(Bucket=a, Key="mp")["ETag"].strip('"').endswith("-3"), "source is a 3-part object")
    before = copy_bytes()
    c.copy_object(Bucket=b, Key="mp-copy", CopySource={"Bucket": a, "Key": "mp"})
    check(copy_bytes() == before, "multipart server-side copy moved no object bytes")
    check(c.head_object(Bucket=b, Key="mp-copy")["ETag"].strip('"').endswith("-3"), "the copy keeps its part count")
    check(read(c, b, "mp-copy") == big, "multipart copy reads back identical")
    for lo, hi in [(0, 99), (5 * MIB - 10, 5 * MIB + 10), (10 * MIB - 1, 11 * MIB + 12344), (123, 6 * MIB)]:
        check(read(c, b, "mp-copy", f"bytes={lo}-{hi}") == big[lo : hi + 1], f"range {lo}-{hi} of the copy")
    if d:
        check(envelope_key_id(d, b, "mp-copy") == key_b, "multipart copy envelope names the destination key")

    # Copy to itself: rotation works, an unchanged copy is refused.
    r = c.copy_object(Bucket=a, Key="small", CopySource={"Bucket": a, "Key": "small"},
                      ServerSideEncryption="aws:kms", SSEKMSKeyId=key_b)
    check(r.get("SSEKMSKeyId") == key_b, "copy to itself rotated the key")
    check(read(c, a, "small") == small, "rotated object reads back")
    check(c.head_object(Bucket=a, Key="small")["Metadata"] == {"color": "blue"}, "rotation kept metadata")
    if d:
        check(envelope_key_id(d, a, "small") == key_b, "rotated envelope names the new key")
    code, msg = error_code(lambda: c.copy_object(Bucket=a, Key="small", CopySource={"Bucket": a, "Key": "small"}))
    check(code == "InvalidRequest" and "copy an object to itself" in msg, f"unchanged copy to itself is refused ({code}: {msg})")

    # UploadPartCopy with ranges assembles an object that reads back.
    up = c.create_multipart_upload(Bucket=b, Key="assembled")["UploadId"]
    p1 = c.upload_part_copy(Bucket=b, Key="assembled", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": a, "Key": "mp"}, CopySourceRange=f"bytes=0-{5 * MIB - 1}")
    p2 = c.upload_part_copy(Bucket=b, Key="assembled", UploadId=up, PartNumber=2,
                            CopySource={"Bucket": plain, "Key": "p"}, CopySourceRange="bytes=1000-150999")
    code, _ = error_code(lambda: c.upload_part_copy(Bucket=b, Key="assembled", UploadId=up, PartNumber=3,
                         CopySource={"Bucket": a, "Key": "mp"}, CopySourceRange="bytes=0-999999999"))
    check(code == "InvalidRange", f"out-of-bounds copy range is InvalidRange (got {code})")
    code, _ = error_code(lambda: c.upload_part_copy(Bucket=b, Key="assembled", UploadId=up, PartNumber=3,
                         CopySource={"Bucket": a, "Key": "mp"}, CopySourceRange="bytes=x-1"))
    check(code == "InvalidArgument", f"malformed copy range is InvalidArgument (got {code})")
    c.complete_multipart_upload(Bucket=b, Key="assembled", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
    ]})
    want = big[: 5 * MIB] + pattern[1000:151000]
    check(read(c, b, "assembled") == want, "UploadPartCopy parts assemble an identical object")
    check(read(c, b, "assembled", "bytes=5242000-5243999") == want[5242000:5244000], "range across the copied parts")

    # The aws CLI copies above its multipart threshold with UploadPartCopy.
    env = dict(os.environ, AWS_ACCESS_KEY_ID=os.environ["SG_ACCESS_KEY"], AWS_SECRET_ACCESS_KEY=os.environ["SG_SECRET_KEY"], AWS_DEFAULT_REGION="us-east-1")
    before = metric("sealgate_copies_total", {"kind": "part"})
    subprocess.run(["aws", "--endpoint-url", os.environ["SG_ENDPOINT"], "s3", "cp", f"s3://{a}/mp", f"s3://{b}/cli-copy"], check=True, env=env, capture_output=True)
    check(metric("sealgate_copies_total", {"kind": "part"}) >= before + 3, "aws s3 cp used UploadPartCopy through the proxy")
    check(read(c, b, "cli-copy") == big, "aws s3 cp copy reads back identical")


def scenario_fill():
    """Writes the migrate test's plaintext objects directly to the backend."""
    d = direct()
    bucket = os.environ["SG_BUCKET"]
    count = int(os.environ["SG_COUNT"])
    d.create_bucket(Bucket=bucket)

    def put(i):
        size = 3 * MIB + i if i % 250 == 0 else 100 + (i * 37) % 5000
        d.put_object(Bucket=bucket, Key=f"obj/{i:05d}", Body=data(size, 1000 + i),
                     Metadata={"index": str(i)}, ContentType="application/x-migrate")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))
    print(f"wrote {count} objects")


def envelopes(bucket):
    d = direct()
    keys = []
    for page in d.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]

    def env(k):
        return k, d.head_object(Bucket=bucket, Key=k)["Metadata"].get(ENVELOPE)

    with ThreadPoolExecutor(16) as pool:
        return dict(pool.map(env, keys))


def scenario_envelopes():
    """Prints {key: envelope or null} of the bucket, from the backend."""
    out = envelopes(os.environ["SG_BUCKET"])
    with open(os.path.join(os.environ["SG_WORK_DIR"], os.environ["SG_OUT"]), "w") as f:
        json.dump(out, f)
    print(f"{sum(1 for v in out.values() if v)} of {len(out)} objects have an envelope")


def scenario_verify():
    """Every object reads back through the proxy as written, metadata kept."""
    c = proxy()
    bucket = os.environ["SG_BUCKET"]
    count = int(os.environ["SG_COUNT"])
    key_id = os.environ.get("SG_EXPECT_KEY")

    def one(i):
        size = 3 * MIB + i if i % 250 == 0 else 100 + (i * 37) % 5000
        r = c.get_object(Bucket=bucket, Key=f"obj/{i:05d}")
        body = r["Body"].read()
        ok = body == data(size, 1000 + i) and r["Metadata"] == {"index": str(i)} and r["ContentType"] == "application/x-migrate"
        ok = ok and r.get("ServerSideEncryption") == "aws:kms" and (key_id is None or r.get("SSEKMSKeyId") == key_id)
        return i, ok

    with ThreadPoolExecutor(16) as pool:
        bad = [i for i, ok in pool.map(one, range(count)) if not ok]
    check(not bad, f"all {count} objects read back identical, encrypted, metadata kept (bad: {bad[:10]})")


if __name__ == "__main__":
    {"copy": scenario_copy, "fill": scenario_fill, "envelopes": scenario_envelopes, "verify": scenario_verify}[sys.argv[1]]()
