#!/usr/bin/env bash
# The README's second command: installs everything, builds the sanitizer build (ASan + UBSan)
# and the release build, then runs the whole test suite:
#   unit tests (GoogleTest, sanitizer build) and integration tests (pytest driving the real
#   binary over HTTP; the sanitizer build, except the memory-growth checks, which measure the
#   release build because the sanitizers inflate RSS), three times: on the local store with
#   SQLite, on the local store with PostgreSQL, and on an S3 store with PostgreSQL; the tests
#   start their own PostgreSQL 15 (tests/services/postgres-server.sh) and Ceph RGW
#   (tests/services/s3-server.sh);
#   then a 30-second fuzz run of the thumbnailer (scripts/fuzz.sh).
# Before the tests, scripts/lint.sh checks the format and runs clang-tidy on the changed files.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh asan
scripts/build.sh release
scripts/lint.sh

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== unit tests (the metadata store's on SQLite and on a PostgreSQL of their own)"
unit_pg=$(mktemp -d)
chmod 755 "$unit_pg"  # PostgreSQL runs as its own user when we are root
trap 'tests/services/postgres-server.sh stop "$unit_pg"' EXIT
read -r pg_host pg_port pg_user < <(tests/services/postgres-server.sh start "$unit_pg")
MXCD_TEST_POSTGRES="host=$pg_host port=$pg_port user=$pg_user dbname=postgres" \
  ctest --test-dir build/asan --output-on-failure
tests/services/postgres-server.sh stop "$unit_pg"
trap - EXIT

echo "== integration tests"
export MXCD_BINARY=$PWD/build/asan/mxcd
export MXCD_RELEASE_BINARY=$PWD/build/release/mxcd
# Debian's interpreter and pytest, whatever python3 comes first on PATH.
/usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider "$@"

# Configuration parsing and the 1 GiB memory checks depend neither on the store nor on the
# database, so the passes below leave them out (the S3 store has its own memory check in
# test_s3_store.py).
again() {
  /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider \
    --ignore=tests/integration/test_config.py --ignore=tests/integration/test_memory.py "$@"
}

echo "== integration tests again, every instance on PostgreSQL"
MXCD_TEST_DATABASE=postgres again "$@"

echo "== integration tests again, every instance on PostgreSQL and an S3 store (Ceph RGW)"
MXCD_TEST_DATABASE=postgres MXCD_TEST_STORE=s3 again "$@"

echo "== fuzzing the thumbnailer"
scripts/fuzz.sh 30
