#!/usr/bin/env bash
# Checks that the set-up scripts install everything the code needs on a fresh Debian 12 machine: every third-party
# Python module imported under python/, tests/, examples/, benchmarks/ and tools/, and every shared library the
# build's binaries link, must come from a Debian package that tools/setup.sh or tools/test.sh names in an
# apt-need.sh call, or that those packages depend on. One line per problem, exit status 1 (tools/check_deps.py).
#   tools/check-deps.sh [--list]          (the build folder: ATTNPROX_BUILD_DIR, default build/)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec /usr/bin/python3 "$root/tools/check_deps.py" --root "$root" --build "${ATTNPROX_BUILD_DIR:-$root/build}" "$@"
