"""The reference architectures read Hugging Face directories as users have them: 4.x and 5.x configs, base and
head weight names, old BERT parameter names, sharded safetensors. Each variant must give the same attention as
the original fixture, which HF transformers recorded."""
import json
import os
import shutil
import struct

import numpy as np
import pytest
import torch

import attnprox
from attnprox.reference import read_config
from attnprox.reference import safetensors as st
from conftest import FIXTURES


def copy_fixture(name, tmp_path):
    target = tmp_path / name
    shutil.copytree(os.path.join(FIXTURES, name), target)
    return target


def same_attention_as_fixture(model_dir, name, tmp_path):
    out = tmp_path / f"{name}-variant.apx"
    attnprox.export_reference(str(model_dir), str(out))
    hf = np.load(os.path.join(FIXTURES, name, "attentions.npz"))
    result = attnprox.load(out).run(ids=hf["ids_2"])
    for layer in range(hf["attention_2"].shape[0]):
        np.testing.assert_allclose(result.attention(layer), hf["attention_2"][layer], rtol=0, atol=1e-5)


def rewrite_config(model_dir, change):
    path = model_dir / "config.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))


def test_transformers4_rope_config(tmp_path):
    """4.x configs carry rope_theta and rope_scaling instead of 5.x's rope_parameters."""
    model_dir = copy_fixture("llama", tmp_path)

    def to_v4(cfg):
        params = cfg.pop("rope_parameters")
        cfg["rope_theta"] = params.pop("rope_theta")
        cfg["rope_scaling"] = params
        cfg["rope_scaling"]["rope_type"] = "llama3"
    rewrite_config(model_dir, to_v4)
    assert read_config(str(model_dir)).rope["rope_type"] == "llama3"
    same_attention_as_fixture(model_dir, "llama", tmp_path)


def test_transformers4_sliding_window_config(tmp_path):
    """Without layer_types, Qwen's use_sliding_window + max_window_layers decide which layers slide."""
    model_dir = copy_fixture("qwen3", tmp_path)

    def to_v4(cfg):
        del cfg["layer_types"]
        cfg["rope_theta"] = cfg.pop("rope_parameters")["rope_theta"]
    rewrite_config(model_dir, to_v4)
    assert read_config(str(model_dir)).windows == [0, 4, 4]
    same_attention_as_fixture(model_dir, "qwen3", tmp_path)


def test_old_bert_parameter_names(tmp_path):
    model_dir = copy_fixture("bert", tmp_path)
    weights = st.load_file(str(model_dir / "model.safetensors"))
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in weights.items()}
    assert any(k.endswith("gamma") for k in renamed)
    st.save_file(renamed, str(model_dir / "model.safetensors"))
    same_attention_as_fixture(model_dir, "bert", tmp_path)


def test_sharded_safetensors(tmp_path):
    model_dir = copy_fixture("distilbert", tmp_path)
    weights = st.load_file(str(model_dir / "model.safetensors"))
    names = sorted(weights)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in halves.items():
        st.save_file({k: weights[k] for k in keys}, str(model_dir / shard))
    (model_dir / "model.safetensors").unlink()
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {k: shard for shard, keys in halves.items() for k in keys}}))
    same_attention_as_fixture(model_dir, "distilbert", tmp_path)


def test_missing_and_misshapen_weights(tmp_path):
    model_dir = copy_fixture("gpt2", tmp_path)
    weights = st.load_file(str(model_dir / "model.safetensors"))
    del weights["transformer.h.1.attn.c_attn.weight"]
    st.save_file(weights, str(model_dir / "model.safetensors"))
    with pytest.raises(attnprox.reference.ReferenceModelError, match="missing weights.*h.1.attn.c_attn.weight"):
        attnprox.export_reference(str(model_dir), str(tmp_path / "m.apx"))
    weights["transformer.h.1.attn.c_attn.weight"] = torch.zeros(5, 5)
    st.save_file(weights, str(model_dir / "model.safetensors"))
    with pytest.raises(attnprox.reference.ReferenceModelError, match=r"has shape \[5, 5\], the config implies \[32, 96\]"):
        attnprox.export_reference(str(model_dir), str(tmp_path / "m.apx"))


def test_safetensors_round_trip_every_dtype(tmp_path):
    tensors = {"f32": torch.randn(3, 4), "f16": torch.randn(2, 2).half(), "bf16": torch.randn(5).bfloat16(),
               "i64": torch.arange(6).view(2, 3), "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5)}
    path = tmp_path / "t.safetensors"
    st.save_file(tensors, str(path), {"format": "pt"})
    back = st.load_file(str(path))
    assert set(back) == set(tensors)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and back[name].shape == t.shape
        assert torch.equal(back[name], t)
    # the header our writer makes is what the format specifies: length, JSON, 8-byte aligned data
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0 and json.loads(raw[8:8 + n])["__metadata__"] == {"format": "pt"}


@pytest.mark.parametrize("damage,message", [
    (lambda raw: raw[:4], "too short"),
    (lambda raw: struct.pack("<Q", 10 ** 9) + raw[8:], "does not fit"),
    (lambda raw: raw[:8] + b"x" + raw[9:], "not valid JSON"),
    (lambda raw: raw[:-4], "outside the"),
])
def test_safetensors_damaged_files(tmp_path, damage, message):
    path = tmp_path / "t.safetensors"
    st.save_file({"a": torch.randn(4, 4)}, str(path))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(st.SafetensorsError, match=message):
        st.load_file(str(path))


def test_exported_file_carries_manifest_and_tokenizer(tmp_path):
    model_dir = copy_fixture("gpt2", tmp_path)
    tokenizer = {"added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": True}],
                 "pre_tokenizer": {"type": "Whitespace"},
                 "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "hello": 1, "world": 2, "<|endoftext|>": 5},
                           "unk_token": "<unk>"}}
    (model_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
    out = tmp_path / "with-tokenizer.apx"
    manifest = attnprox.export_reference(str(model_dir), str(out))
    assert manifest["tokenizer"]["special_tokens"] == {"<|endoftext|>": 5}
    # GPT-2's config names bos/eos 50256, outside this tiny vocabulary: not recorded
    assert manifest["tokenizer"]["bos_id"] is None
    model = attnprox.load(out)
    assert model.manifest == manifest
    assert model.tokenizer.encode("hello world<|endoftext|>") == [1, 2, 5]
    assert model.run(text="hello world").ids == [1, 2]


def test_a_broken_tokenizer_is_refused_at_export_and_at_load(tmp_path, exported):
    model_dir = copy_fixture("gpt2", tmp_path)
    broken = json.dumps({"version": "1.0", "added_tokens": []})
    (model_dir / "tokenizer.json").write_text(broken)
    with pytest.raises(attnprox.reference.ReferenceModelError, match="cannot be used by attnprox's tokenizer"):
        attnprox.export_reference(str(model_dir), str(tmp_path / "never.apx"))
    # A file written elsewhere with a broken tokenizer: loading refuses it.
    import torch

    extra = {"attnprox/manifest.json": ""}
    module = torch.jit.load(exported("gpt2"), _extra_files=extra)
    extra["attnprox/tokenizer.json"] = broken
    torch.jit.save(module, str(tmp_path / "broken.apx"), _extra_files=extra)
    with pytest.raises(attnprox.InvalidModelError, match="its tokenizer.json cannot be used: .*\"model\" is missing"):
        attnprox.load(tmp_path / "broken.apx")
