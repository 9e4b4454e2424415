#!/usr/bin/env bash
# Builds the tokenizer's libFuzzer targets with clang (address and undefined-behaviour sanitizers) and runs each
# for SECONDS (default 60), seeded with the project's test texts and tokenizer files. Exits non-zero on a finding;
# the crashing input is left in the work folder.
#   tests/fuzz/run.sh [SECONDS] [WORK_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-60}"
work="${2:-$root/build/fuzz}"
mkdir -p "$work/corpus-encode" "$work/corpus-json"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root/include" -I"$root/lib/tokenizer")
sources=("$root"/lib/tokenizer/*.cpp)
for target in encode json; do
  if [ ! -x "$work/tokenizer_${target}_fuzzer" ] || [ -n "$(find "$root/lib/tokenizer" "$here" -newer "$work/tokenizer_${target}_fuzzer" -name '*.[ch]pp' | head -1)" ]; then
    echo "==> building tokenizer_${target}_fuzzer"
    clang++ "${flags[@]}" -DATTNPROX_FUZZ_DEFAULT_TOKENIZER="\"$here/default_tokenizer.json\"" \
      "$here/tokenizer_${target}_fuzzer.cpp" "${sources[@]}" -lonig -lutf8proc -o "$work/tokenizer_${target}_fuzzer"
  fi
done
# Seeds: the adversarial texts (one file each) and tokenizer.json files.
/usr/bin/python3 - "$root" "$work" <<'PY'
import gzip, json, os, sys
root, work = sys.argv[1], sys.argv[2]
texts = json.load(open(os.path.join(root, "tests/fixtures/tokenizers/adversarial.json")))["texts"]
for i, t in enumerate(texts):
    open(os.path.join(work, "corpus-encode", f"seed-{i:03d}"), "wb").write(t.encode("utf-8")[:4096])
synthetic = os.path.join(root, "tests/fixtures/tokenizers/synthetic")
for name in ("metaspace-pretokenizer.json.gz", "roberta-like.json.gz"):
    open(os.path.join(work, "corpus-json", name[:-3]), "wb").write(gzip.open(os.path.join(synthetic, name)).read())
open(os.path.join(work, "corpus-json", "default.json"), "wb").write(open(os.path.join(root, "tests/fuzz/default_tokenizer.json"), "rb").read())
for name in os.listdir(os.path.join(root, "tests/fuzz/regressions")):  # inputs that once broke something
    data = open(os.path.join(root, "tests/fuzz/regressions", name), "rb").read()
    open(os.path.join(work, "corpus-json" if name.startswith("json") else "corpus-encode", name), "wb").write(data)
PY
cd "$work"
fuzz() {  # name, max_len, corpus: the summary on success, the report on a finding
  echo "==> fuzzing $1 for ${seconds}s"
  if ! "./$1" -max_total_time="$seconds" -max_len="$2" -timeout=10 -rss_limit_mb=4096 "$3" > "$1.log" 2>&1; then
    grep -v '^#[0-9]' "$1.log" | tail -40
    echo "==> $1 found a problem; the input is in $work (crash-*/timeout-*/oom-*)"
    return 1
  fi
  grep -E '^Done [0-9]+ runs' "$1.log" || tail -2 "$1.log"
}
fuzz tokenizer_encode_fuzzer 4096 corpus-encode
fuzz tokenizer_json_fuzzer 65536 corpus-json
