"""One version: CMakeLists.txt's project(VERSION) is the version of the C header's macros, the C library, the C++
library, the Python package and pyproject.toml (through scikit-build-core's regex on CMakeLists.txt); the C
library's SONAME is the header's APX_ABI_VERSION."""
import ctypes
import os
import re
import subprocess
import tomllib

import attnprox
from conftest import BUILD, ROOT


def cmake_version():
    text = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    found = re.findall(r"^project\(attnprox VERSION ([0-9.]+)", text, re.M)
    assert len(found) == 1
    return found[0]


def header_macros(path):
    macros = dict(re.findall(r"^#define (APX_\w+) (.+)$", open(path).read(), re.M))
    return macros


def test_pyproject_reads_the_cmake_version():
    project = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    rule = project["tool"]["scikit-build"]["metadata"]["version"]
    assert rule["provider"] == "scikit_build_core.metadata.regex"
    assert rule["input"] == "CMakeLists.txt"
    found = re.search(rule["regex"], open(os.path.join(ROOT, rule["input"])).read())
    assert found and found.group("value") == cmake_version()


def test_every_language_reports_the_cmake_version():
    version = cmake_version()
    major, minor, patch = (int(x) for x in version.split("."))
    assert attnprox.__version__ == version
    assert attnprox._core.version() == version  # the C++ library's attnprox::version()
    macros = header_macros(os.path.join(BUILD, "include", "attnprox", "version.h"))
    assert macros["APX_VERSION_STRING"] == f'"{version}"'
    assert (int(macros["APX_VERSION_MAJOR"]), int(macros["APX_VERSION_MINOR"]), int(macros["APX_VERSION_PATCH"])) \
        == (major, minor, patch)
    abi = int(header_macros(os.path.join(ROOT, "include", "attnprox", "attnprox.h"))["APX_ABI_VERSION"])
    lib = ctypes.CDLL(os.path.join(BUILD, "lib", f"libattnprox_c.so.{abi}"))
    lib.apx_version.restype = ctypes.c_char_p
    assert lib.apx_version().decode() == version
    assert lib.apx_version_number() == major * 10000 + minor * 100 + patch
    assert lib.apx_abi_version() == abi


def test_the_c_library_soname_is_the_abi_version():
    abi = int(header_macros(os.path.join(ROOT, "include", "attnprox", "attnprox.h"))["APX_ABI_VERSION"])
    minor, patch = cmake_version().split(".")[1:]
    real = os.path.realpath(os.path.join(BUILD, "lib", "libattnprox_c.so"))
    assert os.path.basename(real) == f"libattnprox_c.so.{abi}.{minor}.{patch}"
    dynamic = subprocess.run(["readelf", "-d", real], capture_output=True, text=True, check=True).stdout
    assert f"[libattnprox_c.so.{abi}]" in dynamic
    symbols = subprocess.run(["readelf", "--dyn-syms", "-W", real], capture_output=True, text=True, check=True).stdout
    assert f"apx_version_number@@ATTNPROX_{abi}" in symbols
