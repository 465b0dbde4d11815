#!/usr/bin/env bash
# Installs everything mxcd needs to build, run and test, from Debian 12 packages only.
# Idempotent: packages already present are left alone, so running it again is cheap.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  # libraries (see DESIGN.md: decided dependencies)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libpq-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libpugixml-dev
  # unit tests and benchmarks
  libgtest-dev libbenchmark-dev
  # integration tests, benchmark references and the README's curl examples
  curl nginx-light wrk time python3 python3-pytest python3-requests openssl
  # the S3 test server (tests/services/s3-server.sh: Ceph RGW) and a reference S3 client
  radosgw ceph-mon ceph-osd uuid-runtime python3-boto3
  # the PostgreSQL test server (tests/services/postgres-server.sh) and a client for the tests
  postgresql-15 python3-psycopg2
  # thumbnails: libvips to build; its CLI, ImageMagick and Pillow make the test fixtures and the
  # benchmark's reference thumbnails; clang and its libFuzzer, ASan and UBSan runtimes (only
  # recommended by clang, so named here) build scripts/fuzz.sh's target
  libvips-dev libvips-tools imagemagick python3-pil clang libclang-rt-14-dev
  # scripts/lint.sh: the code's format and clang-tidy's checks
  clang-format clang-tidy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
