#!/usr/bin/env bash
# Sets attnprox up (tools/setup.sh) and runs every test: the C++ tests through CTest, then the Python tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${ATTNPROX_BUILD_DIR:-$root/build}"
"$root/tools/setup.sh"
echo "==> C++ tests (ctest)"
ctest --test-dir "$build" --output-on-failure -j2
echo "==> Python tests (pytest)"
cd "$root"
ATTNPROX_BUILD_DIR="$build" ATTNPROX_CHECK_INSTALL=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
