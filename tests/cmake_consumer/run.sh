#!/usr/bin/env bash
# attnprox as a dependency of someone else's CMake project: tests/cmake_consumer (add_subdirectory of this source
# tree with the defaults a dependency gets) is configured, built, and its C++ and C programs run on a model file;
# both print the same version, token count and AP, which the Python package agrees with.
#   tests/cmake_consumer/run.sh WORK_DIR MODEL_FILE PYTHON PYTHON_PATH [CMAKE_ARGS...]
# WORK_DIR keeps the consumer's build, so that a second run only rebuilds what changed. CMAKE_ARGS pass on where
# the dependencies are (compilers, generator, CMAKE_PREFIX_PATH, Torch_DIR, Eigen3_DIR) as the main build found them.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$1"
model="$2"
python="$3"
python_path="$4"
shift 4
text="The bank by the river was steep."

echo "==> configuring tests/cmake_consumer (add_subdirectory of attnprox)"
cmake -S "$root/tests/cmake_consumer" -B "$work" -DCMAKE_BUILD_TYPE=Release -DATTNPROX_SOURCE_DIR="$root" "$@"
echo "==> building it (attnprox's libraries and the two programs)"
start=$(date +%s)
cmake --build "$work" -j2
echo "built in $(( $(date +%s) - start )) s"
"$work/consumer_cpp" "$model" "$text" | tee "$work/cpp.txt"
"$work/consumer_c" "$model" "$text" | tee "$work/c.txt"
diff "$work/cpp.txt" "$work/c.txt"
# The same numbers from the attnprox of the main build (its Python package).
PYTHONPATH="$python_path" "$python" - "$model" "$text" "$work/c.txt" <<'PY'
import sys
import attnprox
model, text, printed = sys.argv[1:]
r = attnprox.load(model).run(text=text)
want = f"attnprox {attnprox.__version__}: N={len(r)} AP={r.ap():.9f}"
got = open(printed).readline().strip()
assert got == want, (got, want)
print("==> the consumer's programs agree with the Python package:", want)
PY
