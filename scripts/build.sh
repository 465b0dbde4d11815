#!/usr/bin/env bash
# Builds mxcd. Usage: scripts/build.sh release|asan   (output in build/<kind>/)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) flags=(-DCMAKE_BUILD_TYPE=Release -DMXCD_SANITIZE=OFF) ;;
  asan)    flags=(-DCMAKE_BUILD_TYPE=Debug -DMXCD_SANITIZE=ON) ;;
  *) echo "usage: $0 release|asan" >&2; exit 64 ;;
esac
cmake -S . -B "build/$kind" "${flags[@]}" >/dev/null
cmake --build "build/$kind" --parallel "$(nproc)"
