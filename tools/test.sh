#!/usr/bin/env bash
# Sets attnprox up (tools/setup.sh), checks that the set-up installs every module and library the code needs
# (tools/check-deps.sh), and runs every test: the C++ tests through CTest, then the Python tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${ATTNPROX_BUILD_DIR:-$root/build}"
"$root/tools/setup.sh"
# For the tests only: clang with libFuzzer (tokenizer fuzzing), Node with the JavaScript reference tokenizers, and
# headless Chromium driven by playwright-core (the HTML view's end-to-end test).
"$root/tools/apt-need.sh" clang libclang-rt-14-dev chromium
command -v node >/dev/null && command -v npm >/dev/null || "$root/tools/apt-need.sh" nodejs npm
if [ ! -d "$build/js/node_modules/@lenml/tokenizers" ] || [ ! -d "$build/js/node_modules/gpt-3-encoder" ] ||
   [ ! -d "$build/js/node_modules/playwright-core" ]; then
  echo "==> installing the JavaScript reference tokenizers and playwright-core (npm)"
  npm install --silent --no-audit --no-fund --prefix "$build/js" @lenml/tokenizers@3.7.2 gpt-3-encoder@1.1.4 \
    playwright-core@1.64.1
fi
echo "==> checking that the set-up installs every module and library the code needs (tools/check-deps.sh)"
ATTNPROX_BUILD_DIR="$build" "$root/tools/check-deps.sh"
# With these set, a missing node, JavaScript package or browser fails the tests that need them instead of skipping.
export ATTNPROX_JS_MODULES="$build/js" ATTNPROX_REQUIRE_BROWSER=1 ATTNPROX_REQUIRE_NODE=1
# Screenshots of the HTML view's browser test are kept here.
export ATTNPROX_TEST_ARTIFACTS="${ATTNPROX_TEST_ARTIFACTS:-$build/test-artifacts}"
echo "==> C++ tests (ctest)"
ctest --test-dir "$build" --output-on-failure -j2
echo "==> Python tests (pytest)"
cd "$root"
ATTNPROX_BUILD_DIR="$build" ATTNPROX_CHECK_INSTALL=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python tests/html
echo "==> all tests passed; browser screenshots in $ATTNPROX_TEST_ARTIFACTS"
