"""Eigen is a private dependency of the engine: engine.hpp (and what it includes) names nothing of Eigen, so a C++
caller needs libtorch only; metrics.hpp, the reference on plain arrays, is the one public header written in Eigen."""
import os
import subprocess

from conftest import BUILD, ROOT
from test_readme import compile_flags


def included_headers(header):
    source = f"#include <attnprox/{header}>\n"
    out = subprocess.run(["c++", "-std=c++17", "-M", "-x", "c++", "-"] + compile_flags(), input=source,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_engine_header_includes_no_eigen():
    headers = included_headers("engine.hpp")
    assert "attnprox/engine.hpp" in headers and "attnprox/measures.hpp" in headers
    assert "eigen3" not in headers.lower() and "/Eigen/" not in headers


def test_metrics_header_is_eigen():  # the check above can see Eigen where it is included
    assert "/Eigen/" in included_headers("metrics.hpp")
