#!/usr/bin/env bash
# Builds attnprox's libFuzzer targets with clang (address and undefined-behaviour sanitizers) and runs each for
# SECONDS (default 60), seeded with the project's test texts, tokenizer files, manifests and model files. Prints each
# target's executions and findings, and exits non-zero on a finding; the input is left in the work folder.
#   tests/fuzz/run.sh [SECONDS] [WORK_DIR] [TARGET...]
# Targets: tokenizer_encode, tokenizer_json (the tokenizer's sources), manifest (Manifest::parse), model_file (the
# zip archive and manifest reading that runs before libtorch sees a model file), capi_sequence (random C ABI call
# sequences on random handles; it links the build's libattnprox_c and loads the build's test models: the build
# folder is ATTNPROX_BUILD_DIR, default WORK_DIR/..). All by default.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-60}"
work="${2:-$root/build/fuzz}"
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tokenizer_encode tokenizer_json manifest model_file capi_sequence)
mkdir -p "$work"
work="$(cd "$work" && pwd)"
build="${ATTNPROX_BUILD_DIR:-$(cd "$work/.." && pwd)}"
# the project's headers, and those the build generates (attnprox/version.h)
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root/include"
       -I"$build/include")

tokenizer_sources=("$root"/lib/tokenizer/*.cpp)

# build NAME SOURCES... -- LINK FLAGS...: rebuilt when a source it depends on is newer than the binary
build_target() {
  local name="$1"; shift
  local sources=() link=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do sources+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  link=("$@")
  local out="$work/${name}_fuzzer"
  if [ ! -x "$out" ] || [ -n "$(find "$root/lib" "$root/include" "$here" -newer "$out" -name '*.[ch]pp' | head -1)" ]; then
    echo "==> building ${name}_fuzzer"
    clang++ "${flags[@]}" "${sources[@]}" "${link[@]}" -o "$out"
  fi
}

for target in "${targets[@]}"; do
  case "$target" in
    tokenizer_encode|tokenizer_json)
      build_target "$target" -DATTNPROX_FUZZ_DEFAULT_TOKENIZER="\"$here/default_tokenizer.json\"" \
        -I"$root/lib/tokenizer" "$here/${target}_fuzzer.cpp" "${tokenizer_sources[@]}" -- -lonig -lutf8proc ;;
    manifest)
      build_target manifest "$here/manifest_fuzzer.cpp" "$root/lib/engine/manifest.cpp" ;;
    model_file)
      build_target model_file "$here/model_file_fuzzer.cpp" "$root/lib/engine/archive.cpp" \
        "$root/lib/engine/manifest.cpp" -- -lz ;;
    capi_sequence)
      if [ ! -e "$build/lib/libattnprox_c.so" ] || [ ! -e "$build/test-models/bert-text.apx" ]; then
        echo "capi_sequence needs a build with its test models ($build/lib/libattnprox_c.so, $build/test-models:" \
             "ctest -R make_test_models)" >&2
        exit 2
      fi
      # -fno-sanitize=enum: the harness passes out-of-range enum values on purpose, as a C caller may.
      build_target capi_sequence -fno-sanitize=enum "$here/capi_sequence_fuzzer.cpp" -- -L"$build/lib" -lattnprox_c \
        -Wl,-rpath,"$build/lib" ;;
    *) echo "unknown fuzz target $target" >&2; exit 2 ;;
  esac
done

# Seeds: adversarial texts, tokenizer.json files, manifests and model files of the tests, inputs that once broke
# something (tests/fuzz/regressions, named by target: json-*, encode-*, manifest-*, model-*, capi-*).
/usr/bin/python3 - "$root" "$work" "$build" <<'PY'
import glob, gzip, json, os, sys, zipfile
root, work, build = sys.argv[1:]
corpora = {name: os.path.join(work, "corpus-" + name) for name in ("encode", "json", "manifest", "model", "capi")}
for folder in corpora.values():
    os.makedirs(folder, exist_ok=True)
def put(kind, name, data):
    open(os.path.join(corpora[kind], name), "wb").write(data)
texts = json.load(open(os.path.join(root, "tests/fixtures/tokenizers/adversarial.json")))["texts"]
for i, t in enumerate(texts):
    put("encode", f"seed-{i:03d}", t.encode("utf-8")[:4096])
synthetic = os.path.join(root, "tests/fixtures/tokenizers/synthetic")
for name in ("metaspace-pretokenizer.json.gz", "roberta-like.json.gz"):
    put("json", name[:-3], gzip.open(os.path.join(synthetic, name)).read())
put("json", "default.json", open(os.path.join(root, "tests/fuzz/default_tokenizer.json"), "rb").read())
models = sorted(glob.glob(os.path.join(build, "test-models", "*.apx")))
for path in models:
    name = os.path.basename(path)
    if os.path.getsize(path) <= 256 << 10:
        put("model", name, open(path, "rb").read())
    try:
        with zipfile.ZipFile(path) as z:
            for entry in z.namelist():
                if entry.endswith("extra/attnprox/manifest.json"):
                    put("manifest", name + ".json", z.read(entry)[:65536])
    except (zipfile.BadZipFile, OSError):
        pass
put("capi", "empty", b"")
prefixes = {"json": "json", "encode": "encode", "manifest": "manifest", "model": "model", "capi": "capi"}
for name in os.listdir(os.path.join(root, "tests/fuzz/regressions")):  # inputs that once broke something
    data = open(os.path.join(root, "tests/fuzz/regressions", name), "rb").read()
    kind = next((k for p, k in prefixes.items() if name.startswith(p)), "encode")
    put(kind, name, data)
PY
cd "$work"
status=0
fuzz() {  # target, max_len, corpus, extra options...: executions and findings
  local name="$1_fuzzer" max_len="$2" corpus="$3"; shift 3
  echo "==> fuzzing $name for ${seconds}s"
  if ! ATTNPROX_FUZZ_MODELS="$build/test-models" "./$name" -max_total_time="$seconds" -max_len="$max_len" \
       -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 "$@" "$corpus" > "$name.log" 2>&1; then
    grep -v '^#[0-9]' "$name.log" | tail -40
    echo "==> $name found a problem; the input is in $work (crash-*/timeout-*/oom-*/leak-*)"
    status=1
    return
  fi
  local runs
  runs="$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$name.log" | grep -oE '[0-9]+$' || echo "?")"
  echo "$name: $runs executions, 0 findings"
}
for target in "${targets[@]}"; do
  case "$target" in
    tokenizer_encode) fuzz tokenizer_encode 4096 corpus-encode ;;
    tokenizer_json) fuzz tokenizer_json 65536 corpus-json ;;
    manifest) fuzz manifest 65536 corpus-manifest ;;
    model_file) fuzz model_file 262144 corpus-model ;;
    # libtorch keeps memory to its exit: leaks are not checked for this one (tools/sanitize.sh runs the library
    # itself under LeakSanitizer).
    capi_sequence) fuzz capi_sequence 4096 corpus-capi -detect_leaks=0 ;;
  esac
done
exit $status
