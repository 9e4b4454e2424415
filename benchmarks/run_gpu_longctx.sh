#!/usr/bin/env bash
# Long context at the speed of a plain forward, on the GPU machine in one command within a time budget: builds
# attnprox against the machine's PyTorch (tests/gpu/run.sh --only build), then
#   1. tests/gpu/check_cuda.py     the reference families on CUDA in float32/float16/bfloat16 against the
#                                  transformers fixtures (per-layer masks, SDPA is_causal, tiles) and the
#                                  measurements on the GPU against NumPy and Eigen (APE's tiles, AP's chunks)
#   2. tests/gpu/check_exporter.py the transformers exporter on every family (per-layer masks, forward_layers, the
#                                  float32-reference check in float16/bfloat16, no N x N mask where none is needed)
#   3. benchmarks/gpu_qwen3_8b.py  the Qwen3-8B-shaped long-context and corpus benchmarks, with what is left of the
#                                  budget less a minute (it skips what does not fit)
#   4. pytest                      tests/python/test_long_context.py, test_hf_export_offline.py, test_fidelity.py
#                                  with the machine's torch (its SDPA paths on the CPU), if time is left
# each stopped at the deadline. Results and logs go to OUT_DIR: build/check logs, check_cuda.json,
# exporter/exporter.json, longctx.json and longctx.md (the rows of benchmarks/RESULTS.md's tables), summary.txt.
#
#   benchmarks/run_gpu_longctx.sh OUT_DIR [SECONDS]      (default 540; ATTNPROX_DEPS_SRC, ATTNPROX_DATA_DIR as for
#                                                         tests/gpu/run.sh; ATTNPROX_SKIP_BUILD=1 uses the build
#                                                         there is; ATTNPROX_BENCH_ARGS adds arguments to the
#                                                         benchmark, e.g. "--device cpu --backend reference --tiny"
#                                                         for a dry run)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:?usage: benchmarks/run_gpu_longctx.sh OUT_DIR [SECONDS]}" && cd "$1" && pwd)"
deadline=$((SECONDS + ${2:-540}))
python="${PYTHON:-python3}"
build="${ATTNPROX_GPU_BUILD_DIR:-$root/build-gpu}"
left() { echo $((deadline - SECONDS)); }
status=0
stage() {  # stage NAME SECONDS COMMAND...: runs it with a time limit, logs to OUT_DIR/NAME.log
  local name="$1" limit="$2"
  shift 2
  if [ "$limit" -lt 15 ]; then
    echo "==> $name: skipped ($(left) s left)" | tee -a "$out/summary.txt"
    return
  fi
  echo "==> $name (at most $limit s)"
  local start=$SECONDS
  timeout --signal=INT --kill-after=20 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  if [ "$rc" = 0 ]; then
    echo "    ok ($((SECONDS - start)) s)" | tee -a "$out/summary.txt"
  else
    echo "    FAILED or cut short, exit $rc ($((SECONDS - start)) s): the end of $out/$name.log:" |
      tee -a "$out/summary.txt"
    tail -25 "$out/$name.log" | sed 's/^/    /' | tee -a "$out/summary.txt"
    status=1
  fi
}

: >"$out/summary.txt"
if [ "${ATTNPROX_SKIP_BUILD:-0}" != 1 ]; then
  "$root/tests/gpu/run.sh" --only build "$out/build" || status=1
fi
export PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}"
export ATTNPROX_BUILD_DIR="$build"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1 || true

stage check_cuda "$(( $(left) < 90 ? $(left) : 90 ))" "$python" "$root/tests/gpu/check_cuda.py" "$out/check_cuda.json"
stage check_exporter "$(( $(left) < 120 ? $(left) : 120 ))" "$python" "$root/tests/gpu/check_exporter.py" \
  "$out/exporter"
bench=$(( $(left) - 60 ))
# shellcheck disable=SC2086  # ATTNPROX_BENCH_ARGS is a list of arguments
stage gpu_longctx "$(( bench + 40 ))" "$python" "$root/benchmarks/gpu_qwen3_8b.py" "$out/longctx.json" \
  --budget-s "$bench" ${ATTNPROX_BENCH_ARGS:-}
stage pytest "$(( $(left) - 5 ))" "$python" -m pytest -q -p no:cacheprovider -x \
  "$root/tests/python/test_long_context.py" "$root/tests/python/test_hf_export_offline.py" \
  "$root/tests/python/test_fidelity.py"
[ -f "$out/longctx.md" ] && cat "$out/longctx.md"
echo "==> $(( ${2:-540} - $(left) )) s in all; $(left) s of the budget left"
[ "$status" = 0 ] && echo "==> run_gpu_longctx.sh: all passed" || echo "==> run_gpu_longctx.sh: FAILURES (see above)"
exit "$status"
