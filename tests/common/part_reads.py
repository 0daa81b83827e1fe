# Driven by tests/part_reads.rs: uploads one multipart object through the proxy with
# the given part size (a few full parts and a short last one), then reads it back as
# random ranges and as every partNumber, comparing each answer byte for byte with the
# source. All reads run in this one process over one connection pool, so 1,000 reads
# cost milliseconds each instead of a process start each.
#
# usage: part_reads.py BUCKET KEY PART_MIB FULL_PARTS LAST_PART_BYTES RANGES SEED
# Prints one JSON line: counts of each kind of read and the elapsed seconds.
import json
import os
import random
import sys
import time

import boto3
from botocore.config import Config

MIB = 1024 * 1024


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["SG_ENDPOINT"],
        aws_access_key_id=os.environ["SG_ACCESS_KEY"],
        aws_secret_access_key=os.environ["SG_SECRET_KEY"],
        region_name="us-east-1",
        verify=os.environ.get("SG_CA_BUNDLE") or True,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def fail(msg):
    sys.exit(f"FAIL: {msg}")


def upload(s3, bucket, key, data, part_len):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)
    done = []
    for n, off in enumerate(range(0, len(data), part_len), start=1):
        r = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=up["UploadId"],
            PartNumber=n,
            Body=data[off : off + part_len],
        )
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )
    return len(done)


def random_ranges(rng, total, part_len, parts, count):
    """(Range header, expected start, expected end inclusive) of every kind."""
    kinds = ["inside", "spanning", "open", "suffix", "single"]
    out = [(f"bytes=0-{total - 1}", 0, total - 1), ("bytes=0-", 0, total - 1)]
    out.append((f"bytes=0-{total + 1000}", 0, total - 1))
    out.append((f"bytes=-{total + 5}", 0, total - 1))
    while len(out) < count:
        kind = kinds[len(out) % len(kinds)]
        if kind == "inside":
            k = rng.randrange(parts)
            lo = k * part_len
            hi = min(total, lo + part_len) - 1
            a = rng.randint(lo, hi)
            b = rng.randint(a, min(hi, a + rng.choice([16, 4096, 70000, 300000])))
        elif kind == "spanning":
            k = rng.randrange(1, parts)
            boundary = k * part_len
            a = rng.randint(max(0, boundary - 200000), boundary - 1)
            b = rng.randint(boundary, min(total - 1, boundary + 200000))
        elif kind == "open":
            a = rng.randint(max(0, total - 300000), total - 1)
            out.append((f"bytes={a}-", a, total - 1))
            continue
        elif kind == "suffix":
            n = rng.randint(1, 300000)
            out.append((f"bytes=-{n}", max(0, total - n), total - 1))
            continue
        else:
            a = rng.randrange(total)
            b = a
        out.append((f"bytes={a}-{b}", a, b))
    return out


def main(bucket, key, part_mib, full_parts, last_len, ranges, seed):
    part_len = int(part_mib) * MIB
    rng = random.Random(int(seed))
    total = part_len * int(full_parts) + int(last_len)
    data = rng.randbytes(total)
    s3 = client()
    parts = upload(s3, bucket, key, data, part_len)
    started = time.monotonic()
    for header, a, b in random_ranges(rng, total, part_len, parts, int(ranges)):
        r = s3.get_object(Bucket=bucket, Key=key, Range=header)
        body = r["Body"].read()
        if body != data[a : b + 1]:
            fail(f"{header}: {len(body)} bytes differ from source [{a}, {b}]")
        if r["ContentLength"] != b - a + 1:
            fail(f"{header}: Content-Length {r['ContentLength']}")
        whole = a == 0 and b == total - 1
        want = None if whole else f"bytes {a}-{b}/{total}"
        if r.get("ContentRange") != want and not whole:
            fail(f"{header}: Content-Range {r.get('ContentRange')} != {want}")
    range_secs = time.monotonic() - started
    for n in range(1, parts + 1):
        a = (n - 1) * part_len
        b = min(total, n * part_len) - 1
        want_range = f"bytes {a}-{b}/{total}"
        h = s3.head_object(Bucket=bucket, Key=key, PartNumber=n)
        g = s3.get_object(Bucket=bucket, Key=key, PartNumber=n)
        body = g["Body"].read()
        for what, r in (("head", h), ("get", g)):
            if r["ResponseMetadata"]["HTTPStatusCode"] != 206:
                fail(f"{what} part {n}: status {r['ResponseMetadata']['HTTPStatusCode']}")
            if r["ContentLength"] != b - a + 1:
                fail(f"{what} part {n}: Content-Length {r['ContentLength']}")
            if r.get("ContentRange") != want_range:
                fail(f"{what} part {n}: Content-Range {r.get('ContentRange')}")
            if r.get("PartsCount") != parts:
                fail(f"{what} part {n}: PartsCount {r.get('PartsCount')}")
            if not r["ETag"].endswith(f'-{parts}"'):
                fail(f"{what} part {n}: ETag {r['ETag']}")
        if body != data[a : b + 1]:
            fail(f"part {n}: body differs from source [{a}, {b}]")
    try:
        s3.get_object(Bucket=bucket, Key=key, PartNumber=parts + 1)
        fail("a part beyond the count was served")
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] != "InvalidPartNumber":
            fail(f"part {parts + 1}: {e.response['Error']}")
        if e.response["ResponseMetadata"]["HTTPStatusCode"] != 416:
            fail(f"part {parts + 1}: status {e.response['ResponseMetadata']['HTTPStatusCode']}")
    s3.delete_object(Bucket=bucket, Key=key)
    print(
        json.dumps(
            {
                "total": total,
                "parts": parts,
                "ranges": int(ranges),
                "range_secs": round(range_secs, 2),
                "secs": round(time.monotonic() - started, 2),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
