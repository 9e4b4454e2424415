#!/usr/bin/env bash
# The installed tree serves other builds: `cmake --install` into a fresh prefix, then the C example built with
# pkg-config and with find_package(attnprox) (target attnprox::attnprox_c), the C++ example built with
# find_package(attnprox) (attnprox::attnprox), and the ctypes example (C ABI only, another language) run on the same
# model file and text: all print the same numbers, which the Python package agrees with.
#   tests/capi/install_test.sh BUILD_DIR MODEL_FILE [Torch_DIR Eigen3_DIR PYTHON]
# (the build's own libtorch, Eigen and Python: a CUDA build finds libtorch in a PyTorch wheel, not the system)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1"
model="$2"
torch_dir="${3:-}"
eigen_dir="${4:-}"
python="${5:-/usr/bin/python3}"
text="The bank by the river was steep."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
prefix="$work/prefix"
libdir="$(ls -d "$prefix"/lib* | head -1)"

echo "==> the CMake package's targets"
# The names the README promises, and no other: attnprox::attnprox (C++) and attnprox::attnprox_c (the C ABI).
targets="$(grep -ho 'add_library(attnprox::[A-Za-z0-9_]*' "$libdir"/cmake/attnprox/*Targets.cmake | cut -d'(' -f2 |
           sort | tr '\n' ' ')"
if [ "$targets" != "attnprox::attnprox attnprox::attnprox_c " ]; then
  echo "find_package(attnprox) defines $targets; expected attnprox::attnprox attnprox::attnprox_c" >&2
  exit 1
fi
echo "$targets"

echo "==> C example (pkg-config)"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -Wall -Wextra -Werror "$root/examples/c/attention_proximity.c" $(pkg-config --cflags --libs attnprox) \
  -Wl,-rpath,"$libdir" -o "$work/c_example"
"$work/c_example" "$model" "$text" | tee "$work/c.txt"

echo "==> C example (find_package, attnprox::attnprox_c)"
cmake -S "$root/examples/c" -B "$work/c" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  ${torch_dir:+-DTorch_DIR="$torch_dir"} ${eigen_dir:+-DEigen3_DIR="$eigen_dir"} >/dev/null
# the package just installed, not another attnprox on the machine (one in /usr/local, say)
found_in() { grep -q "^attnprox_DIR:PATH=$prefix/" "$1/CMakeCache.txt" || {
  echo "find_package(attnprox) took $(grep '^attnprox_DIR' "$1/CMakeCache.txt"), not the one installed in $prefix" >&2
  exit 1; }; }
found_in "$work/c"
cmake --build "$work/c" >/dev/null
"$work/c/attention_proximity" "$model" "$text" | tee "$work/c-cmake.txt"

echo "==> C++ example (find_package, attnprox::attnprox)"
cmake -S "$root/examples/cpp" -B "$work/cpp" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  ${torch_dir:+-DTorch_DIR="$torch_dir"} ${eigen_dir:+-DEigen3_DIR="$eigen_dir"} >/dev/null
found_in "$work/cpp"
cmake --build "$work/cpp" >/dev/null
"$work/cpp/attention_proximity" "$model" "$text" | tee "$work/cpp.txt"

echo "==> ctypes example (the C ABI from Python, without the attnprox package)"
"$python" "$root/examples/ctypes/attention_proximity.py" "$model" "$text" "$libdir/libattnprox_c.so.1" \
  | tee "$work/ctypes.txt"

diff "$work/c.txt" "$work/c-cmake.txt"
diff "$work/c.txt" "$work/cpp.txt"
diff "$work/c.txt" "$work/ctypes.txt"
PYTHONPATH="$build/python" "$python" - "$model" "$text" "$work/c.txt" <<'PY'
import sys
import attnprox
model, text, printed = sys.argv[1:]
r = attnprox.load(model).run(text=text)
ape = r.ape()
want = f"N={len(r)} AP={r.ap():.9f} APE={float(ape):.9f} normalized={ape.normalized:.9f} undefined={ape.undefined_rows}"
got = open(printed).readline().strip()
assert got == want, (got, want)
print("==> the C, C++ and ctypes examples agree with the Python package:", want)
PY
