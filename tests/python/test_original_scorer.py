"""attnprox's defaults reproduce the original Attention Proximity code (github wilestk/attention-proximity-app,
`proximity-score-app/backend/scorer.py`), re-implemented here in NumPy after its logic: forward hooks on the last
layer's `q_norm` / `k_norm` (Qwen3-style) or `q_proj` / `k_proj` (Llama-style, which has no q/k norm), i.e. the
queries and keys before RoPE; K repeated for grouped-query attention; Q Kᵀ / sqrt(head size) per head in float32
without a causal mask; the mean over the heads, symmetrised; AP_i the mean of row i without the diagonal; iAPE_i
the entropy of row i without the diagonal after `row − min(row) + 1e-8`, `p = shifted / sum`,
`−Σ p·log(p + 1e-10)`.

The hooks are on the project's own reference architectures (plain torch, `attnprox.reference`), random weights
drawn with fixed seeds; the model file is exported from the same directory with `export_reference` and run by the
engine, which gets the queries and keys before RoPE by undoing the rotation its manifest records.
"""
import json
import os

import numpy as np
import pytest
import torch

import attnprox
from attnprox.reference import load_reference_model
from attnprox.reference.random_model import write_random_model

from conftest import FIXTURES, rewrite_model_file

QWEN3 = {"model_type": "qwen3", "vocab_size": 211, "hidden_size": 48, "intermediate_size": 96,
         "num_hidden_layers": 3, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 16,
         "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu",
         "tie_word_embeddings": False, "attention_bias": False}
LLAMA = {"model_type": "llama", "vocab_size": 211, "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 16,
         "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "silu",
         "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False}


# ---- the original scorer's logic, in NumPy ----

def original_row_entropy(row: np.ndarray) -> float:
    shifted = row - row.min() + 1e-8
    probs = shifted / shifted.sum()
    return float(-np.sum(probs * np.log(probs + 1e-10)))


def original_scores(q: np.ndarray, k: np.ndarray, head_dim: int) -> dict:
    """q `[1, H, N, d]`, k `[1, Hkv, N, d]` as the hooks give them (after transpose(1, 2)); `head_dim` the size the
    scores are divided by the square root of (the original: hidden_size // num_heads)."""
    q = q.astype(np.float32)
    k = np.repeat(k.astype(np.float32), q.shape[1] // k.shape[1], axis=1)  # repeat_interleave on the heads
    scores = np.matmul(q[0], np.transpose(k[0], (0, 2, 1))) / np.float32(head_dim ** 0.5)
    a = scores.mean(axis=0)
    proximity = (a + a.T) / 2
    n = proximity.shape[0]
    off_diag = ~np.eye(n, dtype=bool)
    ap = [float(proximity[i][off_diag[i]].mean()) for i in range(n)]
    ape = [original_row_entropy(proximity[i][off_diag[i]]) for i in range(n)]
    return {"ap": np.array(ap), "ape": np.array(ape), "scalar_ap": float(np.mean(ap)),
            "scalar_ape": float(np.mean(ape)), "matrix": proximity}


def hooked_queries_keys(model_dir: str, ids):
    """The last layer's queries and keys where the original hooks them: q_norm / k_norm outputs where the
    attention has a q/k norm, else q_proj / k_proj outputs (viewed per head), as `[1, heads, N, d]` NumPy arrays."""
    model, cfg, _ = load_reference_model(model_dir, layers="all")
    attention = model.layers[cfg.num_layers - 1].self_attn
    cache = {}
    has_norm = not isinstance(attention.q_norm, torch.nn.Identity)

    def hook(name):
        def record(module, inputs, output):
            b, n = output.shape[0], output.shape[1]
            cache[name] = output.reshape(b, n, -1, cfg.head_dim).transpose(1, 2).detach()
        return record

    handles = [(attention.q_norm if has_norm else attention.q_proj).register_forward_hook(hook("q")),
               (attention.k_norm if has_norm else attention.k_proj).register_forward_hook(hook("k"))]
    with torch.no_grad():
        ids_t = torch.tensor([ids])
        queries, keys = model(ids_t, torch.ones_like(ids_t))
    for h in handles:
        h.remove()
    return cache["q"].numpy(), cache["k"].numpy(), queries[-1].numpy(), keys[-1].numpy(), cfg, has_norm


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name → (HF directory, model file): random Qwen3- and Llama-style models (fixed seeds, weights large enough
    for varied attention) and the Qwen3 and Llama test fixtures."""
    root = tmp_path_factory.mktemp("original")
    out = {}
    for name, config, seed in (("qwen3-random", QWEN3, 11), ("llama-random", LLAMA, 12)):
        directory = write_random_model(config, str(root / name), seed=seed, std=0.25)
        out[name] = directory
    out["qwen3-fixture"] = os.path.join(FIXTURES, "qwen3")
    out["llama-fixture"] = os.path.join(FIXTURES, "llama")
    files = {}
    for name, directory in out.items():
        path = str(root / f"{name}.apx")
        attnprox.export_reference(directory, path)
        files[name] = (directory, path)
    return files


IDS = [5, 17, 3, 99, 42, 42, 8, 150, 61, 7, 23, 5, 17, 3, 88, 120, 9, 31, 64, 2, 200, 11, 45, 46, 47, 5, 17, 3]


def _ids(name):
    return IDS if "random" in name else [i % 96 for i in IDS][:20]


@pytest.mark.parametrize("name", ["qwen3-random", "llama-random", "qwen3-fixture", "llama-fixture"])
def test_defaults_match_the_original_scorer(models, name):
    directory, path = models[name]
    ids = _ids(name)
    q, k, q_after, k_after, cfg, has_norm = hooked_queries_keys(directory, ids)
    assert has_norm == name.startswith("qwen3")  # the original's hook place: q_norm on Qwen3, q_proj on Llama
    # The hooks see something else than what the attention used: RoPE turns every position after the first.
    assert np.abs(q[:, :, 1:] - q_after[:, :, 1:]).max() > 1e-3
    want = original_scores(q, k, cfg.head_dim)  # the true head size (see test_the_original_divides_by_...)
    result = attnprox.load(path).run(ids=ids)
    scale = np.abs(want["matrix"]).max()
    # float32 rounding: the original's float32 products and means against attnprox's float64 sums.
    np.testing.assert_allclose(result.ap_tokens(), want["ap"], rtol=0, atol=2e-6 * scale)
    assert result.ap() == pytest.approx(want["scalar_ap"], abs=2e-6 * scale)
    np.testing.assert_allclose(result.proximity(), want["matrix"], rtol=0, atol=2e-6 * scale)
    ape = result.ape()
    assert ape.policy == "shift" and ape.undefined_rows == 0
    np.testing.assert_allclose(ape.tokens, want["ape"], rtol=0, atol=2e-5)
    assert float(ape) == pytest.approx(want["scalar_ape"], abs=2e-5)
    # The queries and keys before RoPE themselves: the hooks' values, to float32 rounding.
    np.testing.assert_allclose(result.queries(rope=False), q[0], rtol=0, atol=1e-5 * np.abs(q).max())
    np.testing.assert_allclose(result.keys(rope=False), k[0], rtol=0, atol=1e-5 * np.abs(k).max())
    np.testing.assert_allclose(result.queries(), q_after[0], rtol=0, atol=1e-5 * np.abs(q).max())
    # rope=True is the same computation on what the attention used, and differs from the original.
    after = original_scores(q_after, k_after, cfg.head_dim)
    np.testing.assert_allclose(result.ap_tokens(rope=True), after["ap"], rtol=0, atol=2e-6 * scale)
    np.testing.assert_allclose(result.ape(rope=True).tokens, after["ape"], rtol=0, atol=2e-5)
    assert np.abs(after["ap"] - want["ap"]).max() > 100 * 2e-6 * scale


def test_the_original_divides_by_the_square_root_of_hidden_over_heads(models):
    """The original scales by sqrt(hidden_size / num_heads), which is the head size on Qwen3-8B but not on every
    model (here 64 / 4 = 16 on the random Llama, 32 / 4 = 8 against a head size of 16 on the fixture). attnprox
    keeps the true head size: on the fixture its AP is the original's times sqrt(8 / 16)."""
    directory, path = models["llama-fixture"]
    ids = _ids("llama-fixture")
    q, k, _, _, cfg, _ = hooked_queries_keys(directory, ids)
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    hidden_over_heads = config["hidden_size"] // config["num_attention_heads"]
    assert hidden_over_heads != cfg.head_dim
    original = original_scores(q, k, hidden_over_heads)
    result = attnprox.load(path).run(ids=ids)
    factor = (hidden_over_heads / cfg.head_dim) ** 0.5
    np.testing.assert_allclose(result.ap_tokens(), original["ap"] * factor, rtol=1e-4,
                               atol=2e-6 * np.abs(original["ap"]).max())


def test_a_file_without_the_rope_record(models, tmp_path):
    """Files written before the manifest recorded RoPE: the proximity family's default (before RoPE) is refused with
    a message that says to export again or to ask for rope=True; rope=True works; files of families without RoPE
    need nothing."""
    _, path = models["llama-random"]
    old = rewrite_model_file(path, str(tmp_path / "old.apx"), manifest=lambda m: m.pop("rope"))
    result = attnprox.load(old).run(ids=IDS)
    for call in (result.ap, result.ap_tokens, result.ape, result.proximity, result.average_proximity,
                 lambda: result.subset_proximity([1, 2]), lambda: result.queries(rope=False)):
        with pytest.raises(attnprox.UnsupportedError, match=r"before attnprox recorded the rotary.*Export the model "
                                                            r"again.*rope=True"):
            call()
    assert result.ap(rope=True) == pytest.approx(attnprox.load(path).run(ids=IDS).ap(rope=True), rel=1e-12)
    unavailable = rewrite_model_file(path, str(tmp_path / "unavailable.apx"),
                                     manifest=lambda m: m.update(rope={"unavailable": "rope type 'dynamic'"}))
    with pytest.raises(attnprox.UnsupportedError, match=r"could not describe the rotation \(rope type 'dynamic'\)"):
        attnprox.load(unavailable).run(ids=IDS).ap()
    gpt2 = rewrite_model_file(attnprox.export_reference(os.path.join(FIXTURES, "gpt2"), str(tmp_path / "g.apx"))
                              and str(tmp_path / "g.apx"), str(tmp_path / "gpt2-old.apx"),
                              manifest=lambda m: m.pop("rope"))
    r = attnprox.load(gpt2).run(ids=[1, 2, 3, 4])
    assert r.ap() == r.ap(rope=True)


def test_the_manifest_records_the_rotation(models):
    _, path = models["qwen3-random"]
    manifest = attnprox.load(path).manifest
    rope = manifest["rope"]
    assert rope["layout"] == "rotate_half" and rope["rotary_dim"] == 16 and rope["attention_scaling"] == 1.0
    want = 1.0 / (10000.0 ** (np.arange(0, 16, 2) / 16))
    np.testing.assert_allclose(rope["inv_freq"], want, rtol=1e-6)
