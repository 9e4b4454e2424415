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
TOKENIZER_FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizers")
# The project's shared data (tokenizer files, OneStopEnglish, prompts): beside the repository, or where
# ATTNPROX_DATA_DIR says.
DATA = os.environ.get("ATTNPROX_DATA_DIR") or os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))


def data_path(*parts: str) -> str:
    path = os.path.join(DATA, *parts)
    if not os.path.exists(path):
        raise FileNotFoundError(f"shared data {path} is missing: the tests expect the project's shared data folder "
                                f"beside the repository (../shared/data) or ATTNPROX_DATA_DIR")
    return path
FAMILIES = sorted(d for d in os.listdir(FIXTURES) if os.path.isdir(os.path.join(FIXTURES, d)))


def tokenizer_description():
    """The one description of the reference tokenizers and fixtures: tests/gpu/make_tokenizer_fixtures.py (it
    imports without Hugging Face `tokenizers`)."""
    gpu = os.path.join(ROOT, "tests", "gpu")
    if gpu not in sys.path:
        sys.path.insert(0, gpu)
    import make_tokenizer_fixtures

    return make_tokenizer_fixtures


def load_reference_tokenizers():
    """The six tokenizers the exactness fixtures cover, built by attnprox from the files that
    tests/gpu/make_tokenizer_fixtures.py (REAL) builds them from for Hugging Face tokenizers."""
    import attnprox

    description = tokenizer_description()
    build = {"tokenizer_json": lambda files, spec: attnprox.Tokenizer.from_file(files[0]),
             "byte_level_bpe": lambda files, spec: attnprox.Tokenizer.byte_level_bpe(files[0], files[1]),
             "wordpiece": lambda files, spec: attnprox.Tokenizer.wordpiece(files[0], lowercase=spec["lowercase"])}
    tokenizers = {}
    for name, spec in description.REAL.items():
        if not spec.get("in_repository"):
            for relative in spec["files"]:
                data_path(*relative.split("/"))  # a clear error when the shared data is missing
        tokenizers[name] = build[spec["kind"]](description.real_files(name, DATA), spec)
    return tokenizers


@pytest.fixture(scope="session")
def reference_tokenizers():
    return load_reference_tokenizers()


def corpus_texts():
    """(relative path, text) of every OneStopEnglish file, read as UTF-8 with its byte-order mark kept."""
    import glob

    root = data_path("onestopenglish")
    files = sorted(glob.glob(os.path.join(root, "*", "*.txt")))
    return [(os.path.relpath(f, root), open(f, encoding="utf-8").read()) for f in files]


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


def rewrite_model_file(src, dst, manifest=None, code=None):
    """Copies model file `src` to `dst`, passing its manifest (a dict) through `manifest(m)` and the text of each
    TorchScript source file through `code(name, text) -> text`. Returns dst."""
    import json
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if manifest and item.filename.endswith("extra/attnprox/manifest.json"):
                changed = json.loads(data)
                manifest(changed)
                data = json.dumps(changed).encode()
            elif code and "/code/" in item.filename and item.filename.endswith(".py"):
                data = code(item.filename, data.decode()).encode()
            zout.writestr(item, data)
    return dst


@pytest.fixture(scope="session")
def text_models(tmp_path_factory):
    """Small random-weight GPT-2 and BERT model files (64 positions) with the real GPT-2 and BERT tokenizers of the
    shared data: {"gpt2": path, "bert": path}."""
    import attnprox
    from attnprox.reference.random_model import write_random_model
    from attnprox.reference.tokenizer_files import write_tokenizer_json

    out = tmp_path_factory.mktemp("text-models")
    gpt2_dir = write_random_model({"model_type": "gpt2", "vocab_size": 50257, "n_positions": 64, "n_embd": 16,
                                   "n_layer": 2, "n_head": 2}, str(out / "gpt2"), seed=1, std=0.2)
    write_tokenizer_json("gpt2", data_path("tokenizers", "gpt2"), gpt2_dir)
    bert_dir = write_random_model({"model_type": "bert", "vocab_size": 30522, "hidden_size": 16,
                                   "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
                                   "max_position_embeddings": 64, "pad_token_id": 0}, str(out / "bert"), seed=2,
                                  std=0.2)
    write_tokenizer_json("bert", data_path("tokenizers", "bert-base-uncased"), bert_dir)
    paths = {}
    for name, hf_dir in (("gpt2", gpt2_dir), ("bert", bert_dir)):
        paths[name] = str(out / f"{name}.apx")
        attnprox.export_reference(hf_dir, paths[name])
    return paths
