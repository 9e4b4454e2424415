"""pytest set-up: import the attnprox of this build (`<build>/python`, the build folder given by
ATTNPROX_BUILD_DIR, default `build/`), and model files exported once per session from the HF fixtures."""
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("ATTNPROX_BUILD_DIR", os.path.join(ROOT, "build"))
if os.path.isdir(os.path.join(BUILD, "python", "attnprox")):
    sys.path.insert(0, os.path.join(BUILD, "python"))

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "hf")
FAMILIES = sorted(d for d in os.listdir(FIXTURES) if os.path.isdir(os.path.join(FIXTURES, d)))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def exported(model_dir):
    """exported(name, layers="all") → path of the model file exported from fixture `name` (cached)."""
    import attnprox

    cache = {}

    def get(name: str, layers="all") -> str:
        key = (name, str(layers))
        if key not in cache:
            path = os.path.join(model_dir, f"{name}-{str(layers).replace(',', '_')}.apx")
            attnprox.export_reference(os.path.join(FIXTURES, name), path, layers=layers)
            cache[key] = path
        return cache[key]

    return get
