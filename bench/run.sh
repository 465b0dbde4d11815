#!/usr/bin/env bash
# Download and upload benchmarks, mxcd side by side with a reference in the same run:
#   - 32 KiB and 100 MiB downloads: mxcd vs nginx serving the very same blob files
#     (wrk, 64 connections, loopback; both servers get the machine's cores, 2 workers each);
#   - 100 MiB upload through mxcd (curl) vs `cat file | sha256sum` (reading + hashing alone).
# Prints a Markdown table of medians over three alternating rounds; ratios matter, absolute
# figures depend on the machine's load.
# Usage: bench/run.sh [seconds per wrk run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
[[ -x build/release/mxcd ]] || scripts/build.sh release >/dev/null
command -v wrk >/dev/null && command -v nginx >/dev/null || scripts/install-deps.sh

work=$(mktemp -d /tmp/mxcd-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mxcd_port=$(free_port)
nginx_port=$(free_port)
token=bench-token-0123456789

cat > "$work/mxcd.yaml" <<YAML
server_name: bench.local
listen: {address: 127.0.0.1, port: $mxcd_port}
http: {threads: 2}
auth:
  static_tokens: [{token: $token, user_id: "@bench:bench.local"}]
storage: {path: $work/media}
database: {sqlite: {path: $work/mxcd.sqlite3}}
media: {max_upload_size: 1GiB, legacy_download_freeze: "off"}
YAML
build/release/mxcd serve --config "$work/mxcd.yaml" 2>"$work/mxcd.log" &
pids+=($!)
mxcd_pid=$!

cat > "$work/nginx.conf" <<NGINX
worker_processes 2;
user root;  # the blob files are readable by their owner only
pid $work/nginx.pid;
error_log $work/nginx-error.log;
daemon off;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx-tmp;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/media;
  }
}
NGINX
nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$mxcd_port/_mxcd/health" >/dev/null && break
  sleep 0.1
done

head -c $((32 * 1024)) /dev/urandom >"$work/small.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$work/large.bin"

upload() {  # prints the media ID
  curl -sf -H "Authorization: Bearer $token" -H "Content-Type: application/octet-stream" \
    --data-binary @"$1" "http://127.0.0.1:$mxcd_port/_matrix/media/v3/upload" |
    sed -E 's|.*mxc://[^/]+/([A-Za-z0-9_-]+).*|\1|'
}
blob_url() {  # the same file as nginx serves it
  local sha
  sha=$(sha256sum "$1" | cut -d' ' -f1)
  echo "http://127.0.0.1:$nginx_port/blobs/${sha:0:2}/${sha:2:2}/$sha"
}
small_id=$(upload "$work/small.bin")
large_id=$(upload "$work/large.bin")
mxcd_small="http://127.0.0.1:$mxcd_port/_matrix/media/v3/download/bench.local/$small_id"
mxcd_large="http://127.0.0.1:$mxcd_port/_matrix/media/v3/download/bench.local/$large_id"
nginx_small=$(blob_url "$work/small.bin")
nginx_large=$(blob_url "$work/large.bin")
cmp <(curl -sf "$mxcd_small") "$work/small.bin"
cmp <(curl -sf "$nginx_large") "$work/large.bin"

# wrk prints "Requests/sec: N" and "Transfer/sec: N.NNMB"; report requests/s and MiB/s.
wrk_run() {
  local out
  out=$(wrk -t2 -c64 -d"${duration}s" "$1")
  local rps mibs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  mibs=$(awk '/Transfer\/sec/ {v=$2; u=substr(v, length(v)-1); n=v+0;
          if (u=="GB") n*=1024; else if (u=="KB") n/=1024; printf "%.1f", n}' <<<"$out")
  echo "$rps $mibs"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Three alternating rounds, medians: the machine is shared and single runs vary by 10%.
ms=() ns=() ml=() nl=()
for _ in 1 2 3; do
  read -r rps _ < <(wrk_run "$mxcd_small"); ms+=("$rps")
  read -r rps _ < <(wrk_run "$nginx_small"); ns+=("$rps")
  read -r _ mibs < <(wrk_run "$mxcd_large"); ml+=("$mibs")
  read -r _ mibs < <(wrk_run "$nginx_large"); nl+=("$mibs")
done
ms_rps=$(median "${ms[@]}"); ns_rps=$(median "${ns[@]}")
ml_mibs=$(median "${ml[@]}"); nl_mibs=$(median "${nl[@]}")

rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$mxcd_pid/status")

# Upload: best of three through mxcd, against reading and hashing the same file locally.
best_upload=0
for _ in 1 2 3; do
  seconds=$(curl -sf -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" \
    --data-binary @"$work/large.bin" "http://127.0.0.1:$mxcd_port/_matrix/media/v3/upload")
  mibs=$(awk -v s="$seconds" 'BEGIN {printf "%.1f", 100 / s}')
  best_upload=$(awk -v a="$mibs" -v b="$best_upload" 'BEGIN {print (a > b) ? a : b}')
done
best_hash=0
for _ in 1 2 3; do
  start=$(date +%s.%N)
  cat "$work/large.bin" | sha256sum >/dev/null
  end=$(date +%s.%N)
  mibs=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.1f", 100 / (e - s)}')
  best_hash=$(awk -v a="$mibs" -v b="$best_hash" 'BEGIN {print (a > b) ? a : b}')
done

cat <<TABLE
| Measurement | mxcd | reference | mxcd / reference |
|---|---|---|---|
| 32 KiB download, requests/s (wrk, 64 connections) | $ms_rps | nginx $ns_rps | $(ratio "$ms_rps" "$ns_rps") |
| 100 MiB download, MiB/s (wrk, 64 connections) | $ml_mibs | nginx $nl_mibs | $(ratio "$ml_mibs" "$nl_mibs") |
| 100 MiB upload, MiB/s (curl, best of 3) | $best_upload | cat \| sha256sum $best_hash | $(ratio "$best_upload" "$best_hash") |

mxcd peak RSS after the download runs: $((rss_kib / 1024)) MiB
TABLE
