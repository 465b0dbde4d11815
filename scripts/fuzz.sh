#!/usr/bin/env bash
# Runs every libFuzzer target for a fixed time each, with ASan, UBSan and LeakSanitizer:
# tests/fuzz/http_request_fuzzer.cpp (request heads and chunked bodies), then
# tests/fuzz/thumbnail_fuzzer.cpp, which feeds arbitrary bytes to make_thumbnail().
# Usage: scripts/fuzz.sh [seconds]   (default 60; everything it makes is in build/fuzz/)
#   thumbnail_fuzzer   the target, built with clang++ when a source is newer than it
#   seeds/             small valid images, one or more per format, made once
#   tests/fuzz/regressions/  (in the repository) inputs the fuzzer once found, replayed first;
#                      tests/fuzz/regressions.md says what each found
#   corpus/            the inputs libFuzzer keeps between runs (the seeds are never modified)
#   fuzz.log           the last run's output; crash-*, leak-*, timeout-*, oom-*: findings
# Exits non-zero when the fuzzer finds a crash, a hang, a leak or a sanitizer report.
# Replay a finding: build/fuzz/thumbnail_fuzzer build/fuzz/crash-<hash>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build/fuzz
binary=$out/thumbnail_fuzzer
sources=(tests/fuzz/thumbnail_fuzzer.cpp src/thumbnail/thumbnailer.cpp src/thumbnail/apng.cpp
         src/core/matrix_error.cpp)
headers=(src/thumbnail/*.hpp src/core/result.hpp src/core/matrix_error.hpp)
mkdir -p "$out"

# Build when the target is missing or older than a source, a header or this script (flags).
stale=0
[[ -x $binary ]] || stale=1
for f in "${sources[@]}" "${headers[@]}" scripts/fuzz.sh; do
  [[ $f -nt $binary ]] && stale=1
done
if ((stale)); then
  echo "== building $binary"
  # libvips and the decoders are Debian's GCC builds, linked as they are (uninstrumented).
  # -fno-sanitize-recover: a UBSan report stops the run like a crash.
  # shellcheck disable=SC2046  # pkg-config prints a list of flags
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Isrc $(pkg-config --cflags vips) "${sources[@]}" $(pkg-config --libs vips) -lboost_json -lz \
    -o "$binary.tmp"
  mv "$binary.tmp" "$binary"
fi

# Runs one command that makes a seed image; a format this machine cannot write is skipped.
try() {
  "$@" >/dev/null 2>&1 || echo "fuzz: no seed from: $*" >&2
}

# The seeds: a few hundred bytes to a few KB each, from a 48x32 gradient, opaque and with
# alpha. Each is written twice, behind the 3 spec bytes thumbnail_fuzzer.cpp reads first:
# a 64x64 still scale, a 32x48 animated crop, and the five default sizes from one decode.
make_seeds() {
  local dir=$1 w=$1/images
  mkdir -p "$w"
  vips xyz "$w/xyz.v" 48 32
  vips cast "$w/xyz.v" "$w/xy.v" uchar
  vips bandjoin_const "$w/xy.v" "$w/rgb.v" 128
  vips bandjoin_const "$w/rgb.v" "$w/rgba.v" 200
  vips pngsave "$w/rgb.v" "$w/rgb.png"
  try vips jpegsave "$w/rgb.v" "$w/jpeg.jpg" --Q 50 --strip
  try vips jpegsave "$w/rgb.v" "$w/jpeg-progressive.jpg" --Q 40 --interlace --strip
  try convert "$w/rgb.png" -colorspace CMYK "$w/jpeg-cmyk.jpg"
  try vips pngsave "$w/rgba.v" "$w/png-alpha.png" --strip
  try vips pngsave "$w/rgba.v" "$w/png-palette.png" --palette --bitdepth 4 --strip
  try convert "$w/rgb.png" -colorspace Gray -depth 16 "$w/png-grey16.png"
  try convert -size 24x16 -delay 10 xc:red xc:green xc:blue -loop 0 "$w/gif-animated.gif"
  try convert "$w/rgb.png" -colors 16 "$w/gif-still.gif"
  try vips webpsave "$w/rgba.v" "$w/webp-alpha.webp" --Q 50
  try vips webpsave "$w/rgb.v" "$w/webp-lossless.webp" --lossless
  try vips copy "$w/gif-animated.gif[n=-1]" "$w/webp-animated.webp"
  # APNG, which mxcd takes apart itself (src/thumbnail/apng.cpp): frames smaller than the
  # canvas, blended over it and disposed in each of the three ways.
  try /usr/bin/python3 -c 'import sys
from PIL import Image
frames = [Image.new("RGBA", (24, 16), (255, 0, 0, 255))]
frames += [Image.new("RGBA", (24, 16), (0, 0, 255, i * 60)) for i in range(1, 4)]
frames[0].save(sys.argv[1], save_all=True, append_images=frames[1:], duration=[40, 80, 120, 160],
               disposal=[0, 1, 2, 0], blend=[0, 1, 1, 0], loop=2)' "$w/apng.png"
  try vips tiffsave "$w/rgb.v" "$w/tiff.tif" --compression deflate
  try convert -size 20x12 xc:red xc:blue -compress lzw "$w/tiff-pages.tif"
  try convert "$w/rgb.png" "$w/bmp.bmp"
  try vips heifsave "$w/rgb.v" "$w/heic.heic" --compression hevc --Q 30
  try vips heifsave "$w/rgba.v" "$w/avif.avif" --compression av1 --Q 30 --effort 0
  try vips jxlsave "$w/rgb.v" "$w/jxl.jxl"
  cat >"$w/svg.svg" <<'EOF'
<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30" viewBox="0 0 40 30">
  <defs><linearGradient id="g"><stop offset="0" stop-color="#c33"/>
    <stop offset="1" stop-color="#33c" stop-opacity="0.5"/></linearGradient></defs>
  <rect width="40" height="30" fill="url(#g)"/>
  <circle cx="20" cy="15" r="9" fill="#fff" fill-opacity="0.7"/>
</svg>
EOF
  cat >"$w/svg-prolog.svg" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root element -->
<svg xmlns="http://www.w3.org/2000/svg" width="16" height="48">
  <path d="M0 0L16 24L0 48z" fill="green"/>
</svg>
EOF
  rm "$w/rgb.png" "$w"/*.v
  local image name
  for image in "$w"/*; do
    name=${image##*/}
    { printf '\x3f\x3f\x00'; cat "$image"; } >"$dir/scale-$name"
    { printf '\x1f\x2f\x0c'; cat "$image"; } >"$dir/crop-animated-$name"
    { printf '\x00\x00\x10'; cat "$image"; } >"$dir/defaults-$name"
  done
  rm -r "$w"
}
if [[ ! -d $out/seeds ]]; then
  echo "== making the seed corpus in $out/seeds"
  rm -rf "$out/seeds.tmp"
  mkdir "$out/seeds.tmp"
  make_seeds "$out/seeds.tmp"
  mv "$out/seeds.tmp" "$out/seeds"
fi

mkdir -p "$out/corpus"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"
# The request parser target: Beast's parser and check_request_head, no seeds needed beyond a
# few valid requests.
http_binary=$out/http_request_fuzzer
http_sources=(tests/fuzz/http_request_fuzzer.cpp src/http/request_head.cpp src/core/matrix_error.cpp)
http_stale=0
[[ -x $http_binary ]] || http_stale=1
for f in "${http_sources[@]}" src/http/request_head.hpp scripts/fuzz.sh; do
  [[ $f -nt $http_binary ]] && http_stale=1
done
if ((http_stale)); then
  echo "== building $http_binary"
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Isrc "${http_sources[@]}" -lboost_json -o "$http_binary.tmp"
  mv "$http_binary.tmp" "$http_binary"
fi
mkdir -p "$out/http-seeds" "$out/http-corpus"
printf 'GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n\r\n' >"$out/http-seeds/get"
printf 'POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' \
  >"$out/http-seeds/chunked"
printf 'POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc' >"$out/http-seeds/length"
echo "== fuzzing the request parser for ${seconds}s (output in $out/http-fuzz.log)"
http_status=0
"$http_binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/http-" "$out/http-corpus" "$out/http-seeds" >"$out/http-fuzz.log" 2>&1 ||
  http_status=$?
if ((http_status)); then
  echo "fuzz: the request parser FAILED (exit $http_status); see $out/http-fuzz.log" >&2
  grep -aE '^==[0-9]+== ?ERROR|^SUMMARY|runtime error|Test unit written' "$out/http-fuzz.log" >&2 ||
    tail -n 30 "$out/http-fuzz.log" >&2
  exit "$http_status"
fi
echo "fuzz: the request parser ok in ${seconds}s"

echo "== fuzzing the thumbnailer for ${seconds}s (output in $out/fuzz.log)"
status=0
"$binary" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/" "$out/corpus" "$out/seeds" tests/fuzz/regressions >"$out/fuzz.log" 2>&1 ||
  status=$?

# libFuzzer's last status line reads "#<runs> DONE cov: <n> ft: <n> corp: <n>/<size> ...
# exec/s: <n> rss: <n>Mb".
summary=$(grep -aE '^#[0-9]+' "$out/fuzz.log" | tail -n 1 | awk '{
  for (i = 2; i < NF; i++) v[$i] = $(i + 1)
  printf "%s runs, %s exec/s, coverage %s edges %s features, corpus %s, rss %s",
    substr($1, 2), v["exec/s:"], v["cov:"], v["ft:"], v["corp:"], v["rss:"]
}')
if ((status)); then
  echo "fuzz: FAILED (exit $status) after ${summary:-no run}; see $out/fuzz.log" >&2
  grep -aE '^==[0-9]+== ?ERROR|^SUMMARY|runtime error|Test unit written' "$out/fuzz.log" >&2 ||
    tail -n 30 "$out/fuzz.log" >&2
  exit "$status"
fi
echo "fuzz: ok in ${seconds}s: $summary"
