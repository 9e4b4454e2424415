#!/usr/bin/env bash
# Sets attnprox up (tools/setup.sh) and runs every test: the C++ tests through CTest, then the Python tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${ATTNPROX_BUILD_DIR:-$root/build}"
"$root/tools/setup.sh"
# For the tests only: clang with libFuzzer (tokenizer fuzzing), and Node with the JavaScript reference tokenizers.
"$root/tools/apt-need.sh" clang libclang-rt-14-dev
command -v node >/dev/null && command -v npm >/dev/null || "$root/tools/apt-need.sh" nodejs npm
if [ ! -d "$build/js/node_modules/@lenml/tokenizers" ] || [ ! -d "$build/js/node_modules/gpt-3-encoder" ]; then
  echo "==> installing the JavaScript reference tokenizers (npm)"
  npm install --silent --no-audit --no-fund --prefix "$build/js" @lenml/tokenizers@3.7.2 gpt-3-encoder@1.1.4
fi
export ATTNPROX_JS_MODULES="$build/js"
echo "==> C++ tests (ctest)"
ctest --test-dir "$build" --output-on-failure -j2
echo "==> Python tests (pytest)"
cd "$root"
ATTNPROX_BUILD_DIR="$build" ATTNPROX_CHECK_INSTALL=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
