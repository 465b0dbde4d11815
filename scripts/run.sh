#!/usr/bin/env bash
# The README's first command: installs what mxcd needs, builds it, and runs it on the
# embedded default (local disk + SQLite under ./data), listening on 127.0.0.1:8090.
# Pass another config file as the first argument to use it instead of the example.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-config/mxcd.example.yaml}
scripts/install-deps.sh
scripts/build.sh release
if [[ -z "${MXCD_DEV_TOKEN:-}" && "$config" == config/mxcd.example.yaml ]]; then
  echo "MXCD_DEV_TOKEN is not set: the example config's development token comes from it." >&2
  echo "Run for example:  MXCD_DEV_TOKEN=let-me-in-please scripts/run.sh" >&2
  exit 2
fi
exec build/release/mxcd serve --config "$config"
