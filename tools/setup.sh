#!/usr/bin/env bash
# Sets attnprox up on Debian 12: the system packages it needs, a Release build in build/ (-j2), and an install
# into /usr/local, after which `/usr/bin/python3 -c "import attnprox"` works from any folder and the `attnprox`
# command is on the PATH. Safe to run again: it installs only what is missing and rebuilds what changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${ATTNPROX_BUILD_DIR:-$root/build}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev python3-torch libopenblas0-pthread  # libtorch 1.13 (CPU); without OpenBLAS it uses a slow BLAS
  python3 python3-dev python3-numpy python3-pytest pybind11-dev
  nlohmann-json3-dev libspdlog-dev libeigen3-dev
  libgtest-dev libgmock-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "==> building attnprox in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build "$build" -j2

echo "==> installing into /usr/local"
$sudo cmake --install "$build" --prefix /usr/local >/dev/null
$sudo ldconfig
echo "==> attnprox $(cd / && /usr/bin/python3 -c 'import attnprox; print(attnprox.__version__)') is set up"
