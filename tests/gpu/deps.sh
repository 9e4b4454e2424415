#!/usr/bin/env bash
# The C++ libraries attnprox builds against, for a machine that has a PyTorch wheel but not Debian's packages and
# no network (the GPU machine):
#
#   tests/gpu/deps.sh download DIR          on Debian with network: Debian's source tarballs of oniguruma, utf8proc,
#                                           fmt, spdlog, nlohmann-json, Eigen and GoogleTest into DIR
#   tests/gpu/deps.sh build DIR PREFIX [PACKAGE...]
#                                           anywhere with CMake, Ninja and a C++ compiler: builds them (static,
#                                           position-independent) and installs them into PREFIX
#
# Then configure attnprox with -DCMAKE_PREFIX_PATH=PREFIX (tests/gpu/run.sh does).
set -euo pipefail

packages=(libonig utf8proc fmtlib spdlog nlohmann-json3 eigen3 googletest)

download() {
  local dir="$1" list
  mkdir -p "$dir"
  list="$(mktemp -d)"
  # Debian's deb-src entries for bookworm, in a private apt configuration (the system's is left alone).
  mkdir -p "$list/lists/partial" "$list/sources"
  printf 'deb-src http://deb.debian.org/debian bookworm main\n' >"$list/sources/src.list"
  local opts=(-o "Dir::Etc::SourceList=$list/sources/src.list" -o "Dir::Etc::SourceParts=-"
              -o "Dir::State::Lists=$list/lists")
  apt-get "${opts[@]}" update -qq
  (cd "$dir" && apt-get "${opts[@]}" source --download-only -qq "${packages[@]}")
  find "$dir" -maxdepth 1 -type f ! -name '*.orig.tar.*' -delete
  rm -rf "$list"
  ls -la "$dir"
}

build_one() {  # build_one TARBALL_GLOB PREFIX [cmake options...]
  local glob="$1" prefix="$2" src work
  shift 2
  src="$(ls $glob)"
  work="$(mktemp -d)"
  tar -xf "$src" -C "$work"
  local top
  top="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)"
  echo "==> $(basename "$src")"
  cmake -S "$top" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBUILD_SHARED_LIBS=OFF \
    -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_TESTING=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "$@" >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log"; return 1; }
  cmake --build "$work/build" >"$work/build.log" 2>&1 || { tail -50 "$work/build.log"; return 1; }
  cmake --install "$work/build" >/dev/null
  rm -rf "$work"
}

build() {  # build DIR PREFIX [PACKAGE...]: all of them, or the packages named
  local dir prefix
  dir="$(cd "$1" && pwd)"
  mkdir -p "$2"
  prefix="$(cd "$2" && pwd)"
  shift 2
  local chosen=("$@")
  [ ${#chosen[@]} -gt 0 ] || chosen=("${packages[@]}")
  for package in "${chosen[@]}"; do
    case "$package" in
      libonig) build_one "$dir/libonig_*.orig.tar.*" "$prefix" -DENABLE_POSIX_API=OFF ;;
      utf8proc) build_one "$dir/utf8proc_*.orig.tar.*" "$prefix" ;;
      fmtlib) build_one "$dir/fmtlib_*.orig.tar.*" "$prefix" -DFMT_TEST=OFF -DFMT_DOC=OFF ;;
      spdlog) build_one "$dir/spdlog_*.orig.tar.*" "$prefix" -DSPDLOG_FMT_EXTERNAL=ON -DSPDLOG_BUILD_EXAMPLE=OFF \
        -DSPDLOG_BUILD_TESTS=OFF -DSPDLOG_INSTALL=ON ;;
      nlohmann-json3) build_one "$dir/nlohmann-json3_*.orig.tar.*" "$prefix" -DJSON_BuildTests=OFF -DJSON_Install=ON ;;
      eigen3) build_one "$dir/eigen3_*.orig.tar.*" "$prefix" -DEIGEN_BUILD_DOC=OFF -DEIGEN_BUILD_PKGCONFIG=OFF ;;
      googletest) build_one "$dir/googletest_*.orig.tar.*" "$prefix" -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON ;;
      *) echo "unknown package $package (${packages[*]})" >&2; return 2 ;;
    esac
  done
  echo "==> installed into $prefix"
}

case "${1:-}" in
  download) download "${2:?usage: deps.sh download DIR}" ;;
  build) build "${2:?usage: deps.sh build DIR PREFIX}" "${3:?usage: deps.sh build DIR PREFIX}" "${@:4}" ;;
  *) echo "usage: tests/gpu/deps.sh download DIR | build DIR PREFIX" >&2; exit 2 ;;
esac
