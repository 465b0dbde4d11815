#!/usr/bin/env bash
# Checks the code's form, run by scripts/test.sh after the sanitizer build:
#   clang-format (.clang-format) over every C++ file: the tree is formatted, so any difference
#     fails (fix it with: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i);
#   clang-tidy (.clang-tidy) over the C++ files that differ from MXCD_LINT_BASE (default HEAD~1,
#     so the newest commit and the work tree; set origin/main to check a whole branch), or over
#     every file with --all. The whole tree takes about ten minutes on two cores, too long for
#     every test run. A changed header is checked through the .cpp of the same name.
# Needs build/asan/compile_commands.json (scripts/build.sh asan).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== clang-format"
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp')
clang-format --dry-run --Werror "${sources[@]}"

commands=build/asan/compile_commands.json
# The files clang-tidy can check: those the build compiles, but not the layer probes, which are
# meant not to compile.
mapfile -t compiled < <(grep -oE '"file": "[^"]+"' "$commands" | sed -E 's/"file": "(.*)"/\1/' |
  sed "s#^$PWD/##" | grep -v '^tests/layers/' | sort -u)
if [[ ${1:-} == --all ]] || ! base=$(git rev-parse --verify -q "${MXCD_LINT_BASE:-HEAD~1}"); then
  targets=("${compiled[@]}")
  echo "== clang-tidy, every file (${#targets[@]})"
else
  mapfile -t changed < <(git diff --name-only --diff-filter=d "$base" -- '*.cpp' '*.hpp' |
    sed -E 's/\.hpp$/.cpp/' | sort -u)
  mapfile -t targets < <(comm -12 <(printf '%s\n' "${compiled[@]}") <(printf '%s\n' "${changed[@]}"))
  echo "== clang-tidy, the ${#targets[@]} file(s) changed since $(git rev-parse --short "$base")"
fi
((${#targets[@]})) || exit 0
# clang-tidy counts on stderr the warnings it suppressed (those of system headers): not shown.
printf '%s\n' "${targets[@]}" |
  xargs -P "$(nproc)" -n 4 clang-tidy -p build/asan --quiet 2>&1 |
  { grep -vE '^[0-9]+ warnings?( and [0-9]+ errors?)? generated\.$' || true; }
echo "lint: ok"
