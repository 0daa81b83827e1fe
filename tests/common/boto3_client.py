# Driven by tests/common/clients.rs: one S3 operation per run, through boto3.
# Endpoint, keys and CA come from the environment the harness sets (SG_*), never
# from the user's home.
import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1024 * 1024


def client(signature_version="s3v4"):
    return boto3.client(
        "s3",
        endpoint_url=os.environ["SG_ENDPOINT"],
        aws_access_key_id=os.environ["SG_ACCESS_KEY"],
        aws_secret_access_key=os.environ["SG_SECRET_KEY"],
        region_name="us-east-1",
        verify=os.environ.get("SG_CA_BUNDLE") or True,
        config=Config(
            signature_version=signature_version,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


# Small thresholds so a 5 MiB + 1 B file goes up in two parts.
TRANSFER = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)


def main(op, *args):
    if op == "mb":
        client().create_bucket(Bucket=args[0])
    elif op == "rb":
        client().delete_bucket(Bucket=args[0])
    elif op == "put":
        path, bucket, key = args
        client().upload_file(path, bucket, key, Config=TRANSFER)
    elif op == "get":
        bucket, key, path = args
        client().download_file(bucket, key, path, Config=TRANSFER)
    elif op == "ls":
        paginator = client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=args[0]):
            for obj in page.get("Contents", []):
                print(f"{obj['Size']} {obj['Key']}")
    elif op == "rm":
        client().delete_object(Bucket=args[0], Key=args[1])
    elif op == "presign":
        # presign {get|put} {s3v4|s3} BUCKET KEY
        method, version, bucket, key = args
        operation = {"get": "get_object", "put": "put_object"}[method]
        print(
            client(version).generate_presigned_url(
                operation, Params={"Bucket": bucket, "Key": key}, ExpiresIn=600
            )
        )
    else:
        sys.exit(f"unknown operation {op}")


if __name__ == "__main__":
    main(*sys.argv[1:])
