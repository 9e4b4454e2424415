"""Model files and their tokenizers: a BERT directory with only vocab.txt exports with a tokenizer built from it,
and `set_tokenizer` gives a file made without a tokenizer one, keeping the rest of the file byte for byte."""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

import attnprox
from conftest import BUILD, data_path

TEXT = "Emily always wanted to visit Paris, so she took some French lessons; naïve café owners agreed."


@pytest.fixture
def bert_with_vocab_only(tmp_path):
    """A small random-weight BERT with the real bert-base-uncased vocab.txt and no tokenizer.json."""
    from attnprox.reference.random_model import write_random_model

    folder = tmp_path / "bert"
    write_random_model({"model_type": "bert", "vocab_size": 30522, "hidden_size": 16, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64,
                        "pad_token_id": 0}, str(folder), seed=3, std=0.2)
    shutil.copy(data_path("tokenizers", "bert-base-uncased", "vocab.txt"), folder)
    return folder


def entries(path):
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def test_bert_directory_with_only_vocab_txt_exports_with_its_tokenizer(bert_with_vocab_only, tmp_path):
    out = tmp_path / "bert.apx"
    attnprox.export_reference(str(bert_with_vocab_only), str(out))
    model = attnprox.load(out)
    vocab = data_path("tokenizers", "bert-base-uncased", "vocab.txt")
    reference = attnprox.Tokenizer.wordpiece(vocab, lowercase=True)
    assert model.run(text=TEXT).ids == reference.encode(TEXT, add_special_tokens=True)
    assert model.manifest["tokenizer"]["special_tokens"]["[CLS]"] == 101
    # tokenizer_config.json's do_lower_case=false: cased WordPiece, as Tokenizer.wordpiece(lowercase=False)
    with open(bert_with_vocab_only / "tokenizer_config.json", "w") as f:
        json.dump({"do_lower_case": False}, f)
    cased = tmp_path / "cased.apx"
    attnprox.export_reference(str(bert_with_vocab_only), str(cased))
    got = attnprox.load(cased).run(text=TEXT).ids
    assert got == attnprox.Tokenizer.wordpiece(vocab, lowercase=False).encode(TEXT, add_special_tokens=True)
    assert got != reference.encode(TEXT, add_special_tokens=True)


def test_set_tokenizer_adds_a_tokenizer_and_keeps_everything_else(tmp_path, text_models, exported):
    source = exported("gpt2")  # the GPT-2 fixture: no tokenizer, vocabulary of 96 ids
    path = tmp_path / "gpt2.apx"
    shutil.copy(source, path)
    before = entries(path)
    assert not any(name.endswith("extra/attnprox/tokenizer.json") for name in before)
    with pytest.raises(attnprox.UnsupportedError, match="set-tokenizer"):
        attnprox.load(path).run(text="hello")
    tokenizer = tmp_path / "tokenizer.json"
    words = {"<unk>": 0, "the": 5, "river": 7, "bank": 9}
    tokenizer.write_text(json.dumps({"version": "1.0", "added_tokens": [], "normalizer": None,
                                     "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
                                     "decoder": None, "model": {"type": "WordLevel", "vocab": words,
                                                                "unk_token": "<unk>"}}), encoding="utf-8")
    attnprox.set_tokenizer(str(path), str(tokenizer))
    after = entries(path)
    added = [name for name in after if name not in before]
    assert len(added) == 1 and added[0].endswith("/extra/attnprox/tokenizer.json")
    assert after[added[0]] == tokenizer.read_bytes()
    assert all(after[name] == data for name, data in before.items())  # byte for byte
    assert [n for n in after if n != added[0]] == list(before)  # and in their order
    with zipfile.ZipFile(path) as z:  # torch's alignment of every entry's data
        for info in z.infolist():
            z.fp.seek(info.header_offset + 26)
            name_length, extra_length = __import__("struct").unpack("<HH", z.fp.read(4))
            assert (info.header_offset + 30 + name_length + extra_length) % 64 == 0, info.filename
    model = attnprox.load(path)
    r = model.run(text="the river bank")
    assert r.ids == [5, 7, 9]
    assert r.attention(-1).shape[1] == 3
    # Replacing it: the new one is used, the rest still the same.
    words2 = dict(words, river=8)
    tokenizer.write_text(tokenizer.read_text().replace('"river": 7', '"river": 8'), encoding="utf-8")
    attnprox.set_tokenizer(str(path), str(tokenizer))
    assert attnprox.load(path).run(text="the river bank").ids == [words2[w] for w in ("the", "river", "bank")]
    assert all(entries(path)[name] == data for name, data in before.items())
    assert [f for f in os.listdir(tmp_path) if f.startswith(".attnprox-")] == []  # no temporary file left


def test_set_tokenizer_refuses_what_would_not_work(tmp_path, exported):
    path = tmp_path / "gpt2.apx"
    shutil.copy(exported("gpt2"), path)
    original = path.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"type": "Unigram", "vocab": []}}', encoding="utf-8")
    with pytest.raises(attnprox.Error):
        attnprox.set_tokenizer(str(path), str(bad))
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
                               "post_processor": None, "decoder": None,
                               "model": {"type": "WordLevel", "vocab": {"a": 0, "b": 500}, "unk_token": "a"}}))
    with pytest.raises(attnprox.InvalidArgumentError, match=r"has token ids up to 500, the model has 96 \(0..95\)"):
        attnprox.set_tokenizer(str(path), str(big))
    with pytest.raises(attnprox.ModelNotFoundError, match="does not exist"):
        attnprox.set_tokenizer(str(tmp_path / "none.apx"), str(big))
    not_a_model = tmp_path / "text.apx"
    not_a_model.write_text("hello")
    with pytest.raises(attnprox.InvalidModelError, match="not a TorchScript archive"):
        attnprox.set_tokenizer(str(not_a_model), str(big))
    assert path.read_bytes() == original
    assert [f for f in os.listdir(tmp_path) if f.startswith(".attnprox-")] == []


def test_set_tokenizer_on_the_command_line(tmp_path, text_models):
    path = tmp_path / "bert.apx"
    shutil.copy(text_models["bert"], path)
    with zipfile.ZipFile(text_models["bert"]) as z:
        stored = next(n for n in z.namelist() if n.endswith("extra/attnprox/tokenizer.json"))
        (tmp_path / "tokenizer.json").write_bytes(z.read(stored))
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    done = subprocess.run([sys.executable, "-m", "attnprox", "set-tokenizer", str(path), str(tmp_path / "tokenizer.json")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert attnprox.load(path).run(text=TEXT).ids == attnprox.load(text_models["bert"]).run(text=TEXT).ids
    missing = subprocess.run([sys.executable, "-m", "attnprox", "set-tokenizer", str(path), str(tmp_path / "x.json")],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_the_format_lives_in_model_file_and_both_exporters_use_it():
    """docs/model-file.md's names in one module: the reference exporter and attnprox export take them from there."""
    import torch

    from attnprox import hf_export, model_file
    from attnprox.reference import export as reference_export

    for name in ("FORMAT", "FORMAT_VERSION", "MANIFEST_NAME", "TOKENIZER_NAME", "parse_dtype", "tokenizer_facts",
                 "check_tokenizer"):
        assert getattr(reference_export, name) is getattr(model_file, name)
        assert getattr(hf_export, name) is getattr(model_file, name)
    assert model_file.MANIFEST_ENTRY == "extra/" + model_file.MANIFEST_NAME
    assert model_file.parse_dtype("bf16") is torch.bfloat16 and model_file.parse_dtype(None) is None
    assert model_file.dtype_names()[torch.float16] == "float16"
    with pytest.raises(ValueError, match="not supported"):
        model_file.parse_dtype("int8")
    with pytest.raises(ValueError, match="not supported"):
        model_file.parse_dtype(torch.int64)
    assert model_file.rotary_record([1.0, 0.25])["rotary_dim"] == 4
    assert model_file.unavailable_rope("why") == {"unavailable": "why"}
