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


def compile_source(source):
    return subprocess.run(["c++", "-std=c++17", "-fsyntax-only", "-x", "c++", "-"] + compile_flags(), input=source,
                          capture_output=True, text=True, timeout=300)


def test_pimpl_state_is_private():
    """Model::Impl, Result::Data and Tokenizer::Impl are declared in the private sections: naming them from outside
    does not compile, while the same code naming public members does."""
    header = "#include <attnprox/engine.hpp>\n"
    control = compile_source(header + "using L = decltype(&attnprox::Model::load);\n"
                             "using T = decltype(&attnprox::Result::tokens);\n"
                             "using D = decltype(&attnprox::Tokenizer::decode);\n")
    assert control.returncode == 0, control.stderr
    out = compile_source(header + "using M = attnprox::Model::Impl*;\n"
                         "using R = attnprox::Result::Data*;\n"
                         "using T = attnprox::Tokenizer::Impl*;\n")
    assert out.returncode != 0
    private = [line for line in out.stderr.splitlines() if "is private within this context" in line]
    for name in ("attnprox::Model::Impl", "attnprox::Result::Data", "attnprox::Tokenizer::Impl"):
        assert any(name in line for line in private), (name, out.stderr)
