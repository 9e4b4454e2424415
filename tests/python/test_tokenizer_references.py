"""The C++ tokenizer against independent JavaScript implementations, run with Node at test time: @lenml/tokenizers
(a port of transformers.js) for every tokenizer, gpt-3-encoder for GPT-2, over every adversarial and every
OneStopEnglish text. Wherever a JavaScript result differs from attnprox's, Hugging Face `tokenizers` (the recorded
fixtures) must agree with attnprox: the difference is then the JavaScript library's (its known ones are listed in
tests/tokenizer/js/README.md).

tools/test.sh installs node and the npm packages into <build>/js, sets ATTNPROX_JS_MODULES, and sets
ATTNPROX_REQUIRE_NODE=1: there a missing node or package fails these tests instead of skipping them."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, TOKENIZER_FIXTURES, corpus_texts, data_path

MODULES = os.environ.get("ATTNPROX_JS_MODULES")
HARNESS = os.path.join(ROOT, "tests", "tokenizer", "js", "reference_encode.mjs")
PACKAGES = ("@lenml/tokenizers", "gpt-3-encoder")


def node_missing():
    """Why the JavaScript references cannot run here, or None."""
    if not MODULES:
        return "ATTNPROX_JS_MODULES is not set (tools/test.sh installs the JavaScript reference tokenizers and sets it)"
    if not shutil.which("node"):
        return "node is not on the PATH (apt-get install nodejs)"
    missing = [p for p in PACKAGES if not os.path.isdir(os.path.join(MODULES, "node_modules", p))]
    if missing:
        return f"{', '.join(missing)} not installed in {MODULES}/node_modules (npm install --prefix {MODULES} ...)"
    return None


@pytest.fixture(scope="module", autouse=True)
def node():
    reason = node_missing()
    if reason:
        if os.environ.get("ATTNPROX_REQUIRE_NODE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def sha(values) -> str:
    return hashlib.sha256(",".join(map(str, values)).encode()).hexdigest()


@pytest.fixture(scope="module")
def js_tokenizers(tmp_path_factory):
    """How the harness loads each tokenizer: the shared tokenizer.json files, and tokenizer.json files built from
    GPT-2's and BERT's vocabularies (tests/tokenizer/js/make_tokenizer_json.py)."""
    sys.path.insert(0, os.path.dirname(HARNESS))
    import make_tokenizer_json

    out = tmp_path_factory.mktemp("js-tokenizers")
    specs = {}
    for name in ("qwen3", "llama3", "gpt-oss"):
        specs[name] = {"kind": "lenml", "tokenizer_json": data_path("tokenizers", name, "tokenizer.json"),
                       "tokenizer_config": data_path("tokenizers", name, "tokenizer_config.json")}
    for name, folder in (("gpt2", "gpt2"), ("bert", "bert-base-uncased")):
        make_tokenizer_json.main(name, data_path("tokenizers", folder), str(out / name))
        specs[name] = {"kind": "lenml", "tokenizer_json": str(out / name / "tokenizer.json"),
                       "tokenizer_config": str(out / name / "tokenizer_config.json")}
    specs["gpt-3-encoder"] = {"kind": "gpt-3-encoder"}
    return specs


def run_js(spec, texts, tmp_path, tag):
    job, out = tmp_path / f"{tag}-job.json", tmp_path / f"{tag}-out.json"
    job.write_text(json.dumps({"tokenizer": spec, "texts": texts, "add_special_tokens": [False, True]}))
    done = subprocess.run(["node", HARNESS, str(job), str(out)], capture_output=True, text=True,
                          env=dict(os.environ, ATTNPROX_JS_MODULES=MODULES), timeout=900)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["results"]
    errors = [(i, r["error"]) for i, r in enumerate(results) if "error" in r]
    assert not errors, errors[:5]
    return results


CASES = [("qwen3", "qwen3"), ("llama3", "llama3"), ("gpt-oss", "gpt-oss"), ("gpt2", "gpt2"), ("bert", "bert"),
         ("gpt-3-encoder", "gpt2")]


@pytest.mark.parametrize("js_name,name", CASES)
def test_adversarial_texts_against_javascript(js_name, name, js_tokenizers, reference_tokenizers, tmp_path):
    hf = json.load(open(os.path.join(TOKENIZER_FIXTURES, "hf_adversarial.json")))
    texts = hf["texts"]
    js = run_js(js_tokenizers[js_name], texts, tmp_path, js_name)
    tok = reference_tokenizers[name]
    agree = 0
    for i, text in enumerate(texts):
        ours = {"ids": tok.encode(text), "ids_special": tok.encode(text, add_special_tokens=True)}
        ours["decoded"] = tok.decode(ours["ids"])
        for key in ("ids", "ids_special", "decoded"):
            if js_name == "gpt-3-encoder" and key == "ids_special":
                continue  # it has no special tokens
            if js[i][key] == ours[key]:
                agree += 1
            else:  # HF arbitrates: attnprox must be the one that agrees with it
                assert ours[key] == hf["results"][name][i][key], (js_name, i, text[:40], key)
    assert agree >= 0.95 * len(texts) * (2 if js_name == "gpt-3-encoder" else 3)


@pytest.mark.parametrize("js_name,name", CASES)
def test_onestopenglish_against_javascript(js_name, name, js_tokenizers, reference_tokenizers, tmp_path):
    hf = json.load(open(os.path.join(TOKENIZER_FIXTURES, "hf_corpus.json")))["results"][name]
    texts = corpus_texts()
    js = run_js(js_tokenizers[js_name], [t for _, t in texts], tmp_path, js_name)
    tok = reference_tokenizers[name]
    differ = []
    for (rel, text), theirs in zip(texts, js):
        ids = tok.encode(text)
        if theirs["ids"] != ids:
            differ.append(rel)
            assert sha(ids) == hf[rel]["ids"], f"{rel}: attnprox and {js_name} differ, and HF agrees with neither"
    assert len(differ) <= 0.02 * len(texts), differ
