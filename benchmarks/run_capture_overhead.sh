#!/usr/bin/env bash
# Capture overhead on CPU, GPT-2-small shape at N=512: makes the two model files, then times them paired.
#   benchmarks/run_capture_overhead.sh [BUILD_DIR=build] [N=512] [PAIRS=15]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
PYTHONPATH="$build/python" /usr/bin/python3 "$here/benchmarks/make_capture_models.py" "$work"
"$build/benchmarks/capture_overhead" "$work/capture.apx" "$work/plain.pt" "${2:-512}" "${3:-15}"
