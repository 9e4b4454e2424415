#!/usr/bin/env bash
# attnprox on a CUDA machine, in one command: builds against the machine's PyTorch (libtorch from its wheel, CUDA),
# runs the C++ tests and pytest, checks CUDA in float32/float16/bfloat16 against the Hugging Face fixtures and the
# measurements on the GPU (check_cuda.py), verifies the transformers exporter on every family (check_exporter.py),
# compares the defaults with the original Attention Proximity scorer (check_original_scorer.py) and, with --bench,
# runs the GPU benchmark (benchmarks/gpu_qwen3_8b.py).
#
#   tests/gpu/run.sh [--bench] [--only build|tests|cuda|export|original|bench] OUT_DIR
#
# Needs: python3 with torch (CUDA) and transformers, CMake, Ninja, a C++17 compiler; the C++ libraries of
# tests/gpu/deps.sh, either installed or as Debian source tarballs in ATTNPROX_DEPS_SRC (built into
# ATTNPROX_DEPS_PREFIX, default build-gpu-deps/); the shared data in ATTNPROX_DATA_DIR (or ../shared/data).
# Results and logs go to OUT_DIR.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bench=0
only=""
while [ $# -gt 1 ]; do
  case "$1" in
    --bench) bench=1; shift ;;
    --only) only="$2"; shift 2 ;;
    *) break ;;
  esac
done
out="$(mkdir -p "${1:?usage: tests/gpu/run.sh [--bench] [--only STAGE] OUT_DIR}" && cd "$1" && pwd)"
build="${ATTNPROX_GPU_BUILD_DIR:-$root/build-gpu}"
deps="${ATTNPROX_DEPS_PREFIX:-$root/build-gpu-deps}"
python="${PYTHON:-python3}"
status=0
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
step() {  # step NAME COMMAND...: runs it, logs to OUT_DIR/NAME.log, remembers a failure
  local name="$1"
  shift
  echo "==> $name"
  local start=$SECONDS
  if "$@" >"$out/$name.log" 2>&1; then
    echo "    ok ($((SECONDS - start)) s)"
  else
    echo "    FAILED ($((SECONDS - start)) s): the end of $out/$name.log:"
    tail -40 "$out/$name.log" | sed 's/^/    /'
    status=1
  fi
}

if [ -n "${ATTNPROX_DEPS_SRC:-}" ] && [ ! -f "$deps/.built" ]; then
  step deps bash -c "'$root/tests/gpu/deps.sh' build '$ATTNPROX_DEPS_SRC' '$deps' && touch '$deps/.built'"
fi

if want build || [ ! -f "$build/python/attnprox/_version.py" ]; then
  torch_prefix="$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  pybind_dir="$("$python" -m pybind11 --cmakedir 2>/dev/null || true)"
  configure() {
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$deps;$torch_prefix" ${pybind_dir:+-Dpybind11_DIR="$pybind_dir"} \
      -DPython3_EXECUTABLE="$(command -v "$python")" -DATTNPROX_BUILD_BENCHMARKS=OFF -DATTNPROX_WERROR="${ATTNPROX_WERROR:-ON}" \
      -DATTNPROX_WITH_SPDLOG="${ATTNPROX_WITH_SPDLOG:-OFF}"
  }
  step configure configure
  step build cmake --build "$build" -j "$(nproc)"
fi

export PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}"
export ATTNPROX_BUILD_DIR="$build"
if want tests; then
  # The install test needs pkg-config, and the fuzzing smoke test clang with libFuzzer: run where they are.
  exclude="fuzz_smoke"
  command -v pkg-config >/dev/null || exclude="$exclude|install_and_examples"
  step ctest ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -E "$exclude"
  # test_check_deps.py checks the Debian set-up (every module and library from a package tools/setup.sh installs):
  # it does not apply to this machine's Python, whose torch is a wheel.
  step pytest "$python" -m pytest -q -p no:cacheprovider "$root/tests/python" "$root/tests/html" \
    --ignore "$root/tests/python/test_check_deps.py"
fi
if want cuda; then
  step check_cuda "$python" "$root/tests/gpu/check_cuda.py" "$out/check_cuda.json"
fi
if want export; then
  step check_exporter "$python" "$root/tests/gpu/check_exporter.py" "$out"
fi
if want original; then
  step check_original_scorer "$python" "$root/tests/gpu/check_original_scorer.py" "$out"
fi
if [ "$bench" = 1 ] || [ "$only" = bench ]; then
  step gpu_bench "$python" "$root/benchmarks/gpu_qwen3_8b.py" "$out/gpu_bench.json"
fi
[ "$status" = 0 ] && echo "==> tests/gpu/run.sh: all passed" || echo "==> tests/gpu/run.sh: FAILURES (see above)"
exit "$status"
