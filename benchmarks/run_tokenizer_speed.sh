#!/usr/bin/env bash
# Tokenizer speed on the whole OneStopEnglish corpus, one thread, Qwen3 and BERT tokenizers: attnprox's C++ tokenizer
# (benchmarks/tokenizer_speed) against @lenml/tokenizers (Node), in the same run. For Hugging Face tokenizers on a
# machine that has it, run benchmarks/hf_tokenizer_speed.py beside benchmarks/tokenizer_speed there.
#   benchmarks/run_tokenizer_speed.sh [BUILD_DIR=build] [DATA_DIR=../shared/data]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
data="${2:-${ATTNPROX_DATA_DIR:-$root/../shared/data}}"
modules="${ATTNPROX_JS_MODULES:-$build/js}"
if [ ! -d "$modules/node_modules/@lenml/tokenizers" ]; then
  npm install --silent --no-audit --no-fund --prefix "$modules" @lenml/tokenizers@3.7.2 gpt-3-encoder@1.1.4
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
PYTHONPATH="$build/python" /usr/bin/python3 "$root/tests/tokenizer/js/make_tokenizer_json.py" bert \
  "$data/tokenizers/bert-base-uncased" "$work/bert" >/dev/null
for round in 1 2 3; do
  echo "--- round $round"
  "$build/benchmarks/tokenizer_speed" qwen3="$data/tokenizers/qwen3/tokenizer.json" \
    bert="wordpiece:$data/tokenizers/bert-base-uncased/vocab.txt" -- "$data"/onestopenglish/*/*.txt
  for name in qwen3 bert; do
    if [ "$name" = bert ]; then json="$work/bert/tokenizer.json" config="$work/bert/tokenizer_config.json"
    else json="$data/tokenizers/qwen3/tokenizer.json" config="$data/tokenizers/qwen3/tokenizer_config.json"; fi
    /usr/bin/python3 - "$data" "$json" "$config" "$work/job.json" <<'PY'
import glob, json, os, sys
data, tok, cfg, job = sys.argv[1:]
files = sorted(glob.glob(os.path.join(data, "onestopenglish", "*", "*.txt")))
texts = [open(f, encoding="utf-8").read() for f in files]
json.dump({"tokenizer": {"kind": "lenml", "tokenizer_json": tok, "tokenizer_config": cfg}, "texts": texts,
           "add_special_tokens": [False], "decode": False}, open(job, "w"))
PY
    ATTNPROX_JS_MODULES="$modules" node "$root/tests/tokenizer/js/reference_encode.mjs" "$work/job.json" "$work/out.json"
    /usr/bin/python3 -c "
import json, sys
r = json.load(open('$work/out.json'))
s = r['timing']['encode_seconds']
print(f'@lenml $name  {r[\"tokens\"]:9d} tokens  {s:.3f} s  {r[\"tokens\"] / s:10.0f} tokens/s')"
  done
done
