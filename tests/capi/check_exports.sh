#!/usr/bin/env bash
# The dynamic symbols libattnprox_c exports are exactly tests/capi/exported_symbols.txt: an accidental change of
# the C ABI fails here (update the list, and APX_ABI_VERSION if callers would break).
set -euo pipefail
library="$1"
expected="$(dirname "$0")/exported_symbols.txt"
actual="$(nm -D --defined-only "$library" | awk '$2 ~ /^[TDBRW]$/ {sub(/@.*/, "", $3); print $3}' | sort)"
if ! diff <(sort "$expected") <(echo "$actual"); then
  echo "exported symbols of $library differ from $expected (< expected, > actual)" >&2
  exit 1
fi
echo "$(echo "$actual" | wc -l) exported symbols, as expected"
