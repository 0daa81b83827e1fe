# Step checks shared by the test scripts of tests/common: run_python writes this file
# beside every script it runs, so `from s3check import ...` finds it. A failed step
# exits non-zero with a message naming it.
import sys

from botocore.exceptions import ClientError


def fail(msg):
    sys.exit(f"FAIL: {msg}")


# Checks passed so far (expect_error counts as one): scripts report it, and their Rust
# side asserts enough of them ran.
passed = 0


def check(cond, msg):
    global passed
    if not cond:
        fail(msg)
    passed += 1


def expect_error(step, fn, code, status):
    """Runs `fn`, which must fail with S3 error `code` and HTTP `status`; returns the
    error response."""
    try:
        r = fn()
    except ClientError as e:
        got = (e.response["Error"].get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"])
        check(got == (code, status), f"{step}: got {got}, want {(code, status)}")
        return e.response
    fail(f"{step}: succeeded ({r.get('ResponseMetadata', {}).get('HTTPStatusCode')}), want {code}")


def read_version(s3, op, bucket, key):
    """What a HEAD or GET (`op`) of `key` saw of the object: its length, its ETag and its
    `len` metadata, which writers that race readers set to the body's length."""
    if op == "head":
        r = s3.head_object(Bucket=bucket, Key=key)
        length = r["ContentLength"]
    else:
        r = s3.get_object(Bucket=bucket, Key=key)
        length = len(r["Body"].read())
    return (length, r["ETag"], r["Metadata"].get("len"))


def read_version_or_error(s3, op, bucket, key):
    """`read_version`, or ("error", what was raised): a body under another write's
    checksum fails botocore's own check before the caller could compare it."""
    try:
        return read_version(s3, op, bucket, key)
    except Exception as e:
        return ("error", repr(e)[:200])
