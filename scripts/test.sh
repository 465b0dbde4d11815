#!/usr/bin/env bash
# The README's second command: installs everything, builds the sanitizer build (ASan + UBSan)
# and the release build, then runs the whole test suite:
#   unit tests (GoogleTest, sanitizer build) and integration tests (pytest driving the real
#   binary over HTTP; the sanitizer build, except the memory-growth checks, which measure the
#   release build because the sanitizers inflate RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh asan
scripts/build.sh release

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== unit tests"
ctest --test-dir build/asan --output-on-failure

echo "== integration tests"
export MXCD_BINARY=$PWD/build/asan/mxcd
export MXCD_RELEASE_BINARY=$PWD/build/release/mxcd
# Debian's interpreter and pytest, whatever python3 comes first on PATH.
/usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider "$@"
