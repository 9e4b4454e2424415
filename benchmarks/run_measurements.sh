#!/usr/bin/env bash
# Cost of the measurements against the forward (CPU, GPT-2-small shape, N = 512, 2048, 8192), and their peak memory
# at N = 16,384 (each measurement in a fresh process).
#   benchmarks/run_measurements.sh [BUILD_DIR=build] [WORK_DIR=a temporary folder]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
work="${2:-$(mktemp -d)}"
[ -f "$work/gpt2-small-8k.apx" ] || PYTHONPATH="$build/python" /usr/bin/python3 "$root/benchmarks/make_measurement_models.py" "$work"
"$build/benchmarks/measurements_cost" time "$work/gpt2-small-8k.apx" 512 2048 8192
for what in ap ap_tokens subset ape stats links; do
  "$build/benchmarks/measurements_cost" memory "$work/qk-16k.apx" 16384 "$what"
done
