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
