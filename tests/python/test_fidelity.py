"""Attention rebuilt by attnprox from the reference architectures' Q/K equals Hugging Face transformers'
`output_attentions=True` (eager) on the same weights, to 1e-5, for every layer, head and input.

The fixtures (tests/fixtures/hf) were made by tests/gpu/make_hf_fixtures.py with transformers; see versions.json.
"""
import json
import os

import numpy as np
import pytest

import attnprox
from conftest import FAMILIES, FIXTURES, rewrite_model_file

TOLERANCE = 1e-5


def recorded(name):
    return np.load(os.path.join(FIXTURES, name, "attentions.npz"))


def test_fixtures_cover_every_reference_family():
    families = {json.load(open(os.path.join(FIXTURES, n, "config.json")))["model_type"] for n in FAMILIES}
    assert {"gpt2", "bert", "distilbert", "llama", "qwen3"} <= families
    # grouped-query (Hkv < H), multi-query, causal and bidirectional are all among them
    kv = {n: json.load(open(os.path.join(FIXTURES, n, "config.json"))).get("num_key_value_heads") for n in FAMILIES}
    assert kv["llama"] == 2 and kv["qwen3"] == 1


@pytest.mark.parametrize("name", FAMILIES)
def test_single_sequences_match_hf(name, exported):
    model = attnprox.load(exported(name))
    hf = recorded(name)
    for k in range(3):
        ids = hf[f"ids_{k}"]
        result = model.run(ids=ids)
        want = hf[f"attention_{k}"]  # [L, H, N, N]
        assert want.shape[0] == len(model.captured_layers)
        for layer in model.captured_layers:
            got = result.attention(layer)
            assert got.shape == want[layer].shape
            np.testing.assert_allclose(got, want[layer], rtol=0, atol=TOLERANCE,
                                       err_msg=f"{name} input {k} layer {layer}")


@pytest.mark.parametrize("name", FAMILIES)
def test_padded_batch_matches_hf(name, exported):
    """HF ran a right-padded batch with an attention mask; attnprox runs the same sequences as its own batch."""
    model = attnprox.load(exported(name))
    hf = recorded(name)
    mask = hf["batch_mask"]
    sequences = [list(row[: int(m.sum())]) for row, m in zip(hf["batch_ids"], mask)]
    results = model.run(ids=sequences)
    for b, result in enumerate(results):
        n = len(sequences[b])
        for layer in model.captured_layers:
            np.testing.assert_allclose(result.attention(layer), hf["batch_attention"][layer, b, :, :n, :n],
                                       rtol=0, atol=TOLERANCE, err_msg=f"{name} sequence {b} layer {layer}")


@pytest.mark.parametrize("name,layers,want", [("llama", "last", [2]), ("bert", [0, 2], [0, 2]),
                                              ("qwen3", "1", [1]), ("gpt2", -2, [1])])
def test_captured_subsets_match_hf(name, layers, want, exported):
    model = attnprox.load(exported(name, layers))
    assert model.captured_layers == want
    hf = recorded(name)
    result = model.run(ids=hf["ids_2"])
    for layer in want:
        np.testing.assert_allclose(result.attention(layer), hf["attention_2"][layer], rtol=0, atol=TOLERANCE)


def test_capture_cuts_off_the_layers_after_the_last_captured_one(exported):
    import torch

    first_only = torch.jit.load(exported("llama", [0]))
    every = torch.jit.load(exported("llama"))
    names = lambda m: {k for k in m.state_dict() if k.startswith("layers.")}  # noqa: E731
    assert {k.split(".")[1] for k in names(first_only)} == {"0"}
    assert {k.split(".")[1] for k in names(every)} == {"0", "1", "2"}


def test_layers_with_their_own_masking(tmp_path, exported):
    """Encoder–decoder files mark each layer: a causal layer in a bidirectional model masks the future, a
    cross-attention layer never does. Checked against softmax(scaling · Q Kᵀ) computed here."""
    def mark(m):
        m["layers"][0]["causal"] = True
        m["layers"][1]["cross_attention"] = True
        m["layers"][1]["causal"] = True  # ignored for cross-attention

    marked = rewrite_model_file(exported("bert"), tmp_path / "marked.apx", manifest=mark)  # bidirectional model
    model = attnprox.load(marked)
    layers = model.manifest["layers"]
    result = model.run(ids=[5, 9, 2, 7, 11, 3])
    n = len(result)
    for k, causal in ((0, True), (1, False)):
        q = result.queries(k).astype(np.float64)
        keys = result.keys(k).astype(np.float64)
        logits = layers[k]["scaling"] * q @ keys.transpose(0, 2, 1)
        if causal:
            logits = np.where(np.tril(np.ones((n, n), bool)), logits, -np.inf)
        want = np.exp(logits - logits.max(-1, keepdims=True))
        want /= want.sum(-1, keepdims=True)
        np.testing.assert_allclose(result.attention(k), want, atol=1e-6, err_msg=f"layer {k}")
