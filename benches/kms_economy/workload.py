"""N PUTs then N GETs of small objects through sealgate, for benches/kms-economy.sh.

  workload.py ENDPOINT BUCKET N MODE THREADS
MODE is `bucket-key` (the default S3 Bucket Key path) or `per-object` (every PUT sends
x-amz-server-side-encryption-bucket-key-enabled: false, so every object gets its own KMS
data key). Keys test/test, path-style, one attempt per request (a retry would make a
KMS call the count does not expect). Every GET body is compared with what was PUT.
Prints one JSON line: {"puts": N, "gets": N, "errors": 0, "seconds": S}.
"""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

OBJECT_BYTES = 1024


def client(endpoint, threads):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            max_pool_connections=threads,
            connect_timeout=10,
            read_timeout=60,
        ),
    )


def body_of(i):
    # Distinct per object so a mixed-up GET cannot pass the comparison.
    seed = f"object {i:08d} ".encode()
    return (seed * (OBJECT_BYTES // len(seed) + 1))[:OBJECT_BYTES]


def main(endpoint, bucket, n, mode, threads):
    n, threads = int(n), int(threads)
    if mode not in ("bucket-key", "per-object"):
        sys.exit(f"unknown mode {mode}")
    s3 = client(endpoint, threads)
    s3.create_bucket(Bucket=bucket)
    extra = {"BucketKeyEnabled": False} if mode == "per-object" else {}

    def put(i):
        s3.put_object(Bucket=bucket, Key=f"obj/{i:08d}", Body=body_of(i), **extra)

    def get(i):
        got = s3.get_object(Bucket=bucket, Key=f"obj/{i:08d}")["Body"].read()
        if got != body_of(i):
            raise ValueError(f"object {i}: body differs")

    errors = 0
    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for op in (put, get):
            for f in [pool.submit(op, i) for i in range(n)]:
                try:
                    f.result()
                except Exception as e:  # counted and reported, the run goes on
                    errors += 1
                    if errors <= 3:
                        print(f"{op.__name__}: {e}", file=sys.stderr)
    print(
        json.dumps(
            {
                "puts": n,
                "gets": n,
                "errors": errors,
                "seconds": round(time.monotonic() - start, 2),
            }
        )
    )
    return 1 if errors else 0


if __name__ == "__main__":
    # Never read the user's ~/.aws: everything comes from the arguments.
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    sys.exit(main(*sys.argv[1:]))
