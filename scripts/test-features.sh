# Sourced, not run: the cargo feature flags of the test command's debug build, shared by
# scripts/test.sh (the tests and the property tests) and scripts/soak.sh
# (SOAK_PROFILE=debug), so that neither builds again what the other built.
# Without jemalloc, the binary's allocator (Cargo.toml, feature `jemalloc`): its C build
# is ~90 s of CPU, and the tests check what the proxy does, not its allocator.
# shellcheck disable=SC2034  # used by the scripts that source this file
TEST_FEATURES=(--no-default-features)
