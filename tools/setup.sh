#!/usr/bin/env bash
# Sets attnprox up on Debian 12: the system packages it needs, a Release build in build/ (-j2), and an install
# into /usr/local, after which `/usr/bin/python3 -c "import attnprox"` works from any folder and the `attnprox`
# command is on the PATH. Safe to run again: it installs only what is missing and rebuilds what changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${ATTNPROX_BUILD_DIR:-$root/build}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

"$root/tools/apt-need.sh" \
  build-essential cmake ninja-build pkg-config git \
  libtorch-dev python3-torch libopenblas0-pthread \
  python3 python3-dev python3-numpy python3-pytest pybind11-dev \
  python3-matplotlib python3-scipy python3-tqdm python3-distributed \
  nlohmann-json3-dev libspdlog-dev libeigen3-dev libonig-dev libutf8proc-dev zlib1g-dev \
  libgtest-dev libgmock-dev
# Pictures need matplotlib; corpus studies scipy (statistics), tqdm (progress) and Dask distributed (workers).
# libtorch 1.13 (CPU) comes from Debian; without OpenBLAS (libopenblas0-pthread) it uses a ~40x slower BLAS.
# Oniguruma is the regular-expression engine Hugging Face tokenizers uses; utf8proc does Unicode normalization.

echo "==> building attnprox in $build"
# Warnings are errors here, and so in CI (.ci/run runs tools/test.sh, which runs this); a build of attnprox inside
# another project leaves them warnings (ATTNPROX_WERROR defaults to OFF).
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 \
  -DATTNPROX_WERROR=ON >/dev/null
cmake --build "$build" -j2

echo "==> installing into /usr/local"
$sudo cmake --install "$build" --prefix /usr/local >/dev/null
$sudo ldconfig
echo "==> attnprox $(cd / && /usr/bin/python3 -c 'import attnprox; print(attnprox.__version__)') is set up"
