#!/usr/bin/env bash
# Builds attnprox twice more, with AddressSanitizer + UndefinedBehaviorSanitizer and with ThreadSanitizer, each in a
# build folder of its own, and runs the C++/C tests (ctest) and the C example under each. Exits non-zero on the
# first report. libtorch, Python and the system libraries are not instrumented: the sanitizers see attnprox's code
# and what it does with the memory it is given.
#   tools/sanitize.sh [asan|tsan|all] [BUILD_ROOT]      (default: all, in ./build-asan and ./build-tsan)
# ctest runs everything except the tests that build attnprox again (cmake_consumer, install_and_examples) and the
# fuzzing smoke test (sanitized builds of their own, tests/fuzz/run.sh). The test models are written by
# Python through the sanitized Python module (and the build exports the default model file through it); for that
# CMake is given, as its Python, a wrapper that preloads the sanitizer's runtime into the uninstrumented Python,
# with leak detection off (Python and libtorch keep memory to their exit). CMake, Ninja and CTest themselves run
# without it (under ThreadSanitizer's runtime `cmake --build` hangs waiting for its children). The C tests and the
# C example then run again on their own, with leak detection on.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
which="${1:-all}"
build_root="${2:-$root}"
jobs="${ATTNPROX_JOBS:-2}"
cxx="${CXX:-c++}"
cc="${CC:-cc}"

run_one() {
  local name="$1" flags="$2" runtime="$3"
  local build="$build_root/build-$name"
  local lib
  lib="$("$cxx" -print-file-name="$runtime")"
  # The Python that CMake, the build and the tests run: /usr/bin/python3 with the sanitizer's runtime preloaded
  # (and no leak detection: Python and libtorch keep memory to their exit).
  local python="$build/python3-$name"
  mkdir -p "$build"
  printf '#!/bin/sh\nASAN_OPTIONS="detect_leaks=0:halt_on_error=1" LD_PRELOAD="%s" exec /usr/bin/python3 "$@"\n' \
    "$lib" >"$python"
  chmod +x "$python"
  echo "==> [$name] configuring $build ($flags)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython3_EXECUTABLE="$python" \
    -DATTNPROX_BUILD_BENCHMARKS=OFF -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" -DCMAKE_MODULE_LINKER_FLAGS="$flags" \
    >/dev/null
  echo "==> [$name] building"
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1" cmake --build "$build" -j"$jobs"
  echo "==> [$name] ctest"
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1" \
    ctest --test-dir "$build" -j"$jobs" --output-on-failure -E 'cmake_consumer|install_and_examples|fuzz_smoke'
  echo "==> [$name] the C tests and the C example, on their own"
  local models="$build/test-models"
  (cd "$build/tests" && ATTNPROX_TEST_MODELS="$models" ./capi_test >/dev/null && \
    ATTNPROX_TEST_MODELS="$models" ./concurrency_test >/dev/null && \
    ATTNPROX_TEST_MODELS="$models" ./capi_hardening_test >/dev/null)
  "$cc" -std=c99 -Wall -Wextra -Werror $flags -I"$root/include" "$root/examples/c/attention_proximity.c" \
    -L"$build/lib" -lattnprox_c -Wl,-rpath,"$build/lib" -o "$build/c_example"
  "$build/c_example" "$models/bert-text.apx" "The bank by the river was steep."
  echo "==> [$name] clean"
}

export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
common="-O1 -g -fno-omit-frame-pointer"
case "$which" in
  asan|all) run_one asan "$common -fsanitize=address,undefined -fno-sanitize-recover=undefined" libasan.so ;;&
  tsan|all) run_one tsan "$common -fsanitize=thread" libtsan.so ;;
  asan) ;;
  *) echo "usage: tools/sanitize.sh [asan|tsan|all] [BUILD_ROOT]" >&2; exit 2 ;;
esac
