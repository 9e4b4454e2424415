"""Attention weights, averaging, proximity and AP through the Python API, against brute-force NumPy float64."""
import numpy as np
import pytest

import attnprox
from attnprox import _core
import reference_numpy as ref

IDS = [7, 3, 91, 3, 14, 15, 92, 65, 35, 89, 79]


@pytest.mark.parametrize("name", ["llama", "qwen3", "bert", "gpt2-inverse-layer-scaling"])
def test_attention_average_proximity_and_ap(name, exported):
    model = attnprox.load(exported(name))
    result = model.run(ids=IDS)
    manifest_layers = {e["index"]: e for e in model.manifest["layers"]}
    every = []
    for layer in model.captured_layers:
        q, k = result.queries(layer), result.keys(layer)
        assert q.shape == (model.num_heads, len(IDS), model.head_dim)
        assert k.shape == (model.num_kv_heads, len(IDS), model.head_dim)
        spec = manifest_layers[layer]
        want = ref.attention(q, k, spec["scaling"], model.causal, spec["sliding_window"])
        np.testing.assert_allclose(result.attention(layer), want, atol=1e-6)
        np.testing.assert_allclose(result.attention(layer, head=1), want[1], atol=1e-6)
        hot = ref.attention(q, k, spec["scaling"], model.causal, spec["sliding_window"], temperature=2.0)
        np.testing.assert_allclose(result.attention(layer, temperature=2.0), hot, atol=1e-6)
        every.append(want)
        # The proximity family: before RoPE by default, after it with rope=True (the same on models without RoPE).
        q0, k0 = result.queries(layer, rope=False), result.keys(layer, rope=False)
        np.testing.assert_allclose(result.proximity(layer), ref.proximity(q0, k0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(result.ap_tokens(layer), ref.ap_tokens(q0, k0), rtol=1e-9, atol=1e-9)
        assert result.ap(layer) == pytest.approx(ref.ap_tokens(q0, k0).mean(), rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(result.proximity(layer, rope=True), ref.proximity(q, k), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(result.ap_tokens(layer, rope=True), ref.ap_tokens(q, k), rtol=1e-9, atol=1e-9)
        assert (model.manifest["rope"] is None) == np.array_equal(q0, q)
    every = np.stack(every)  # [L, H, N, N]
    np.testing.assert_allclose(result.average_attention(), every.mean((0, 1)), atol=1e-6)
    np.testing.assert_allclose(result.average_attention(layers=-1, heads=[0, 2]), every[-1][[0, 2]].mean(0),
                               atol=1e-6)
    assert result.ap() == result.ap(model.captured_layers[-1])


def test_attention_weights_on_caller_arrays():
    """The rebuild on arrays the caller brings: soft-cap, sinks, windows both ways, GQA, temperature."""
    rng = np.random.default_rng(5)
    q = rng.normal(size=(6, 10, 4)).astype(np.float32) * 2
    k = rng.normal(size=(3, 10, 4)).astype(np.float32) * 2
    sinks = list(rng.normal(size=6))
    for causal in (True, False):
        for window in (None, 3):
            for softcap in (None, 4.0):
                for s in (None, sinks):
                    got = _core.attention_weights(q, k, 0.4, causal, window, softcap, s or [], 1.3)
                    want = ref.attention(q, k, 0.4, causal, window, softcap, s, 1.3)
                    np.testing.assert_allclose(got, want, atol=2e-6,
                                               err_msg=f"causal={causal} window={window} softcap={softcap}")


def test_one_and_two_tokens(exported):
    model = attnprox.load(exported("gpt2"))
    one = model.run(ids=[4])
    np.testing.assert_array_equal(one.attention(0), np.ones((4, 1, 1), np.float32))
    with pytest.raises(attnprox.InvalidArgumentError, match="at least 2 tokens"):
        one.ap()
    two = model.run(ids=[4, 9])
    a = two.proximity()
    np.testing.assert_allclose(two.ap_tokens(), [a[0, 1], a[0, 1]], rtol=1e-6)


def test_low_precision_model_gives_float32_attention(exported):
    model = attnprox.load(exported("llama"), dtype="bfloat16")
    assert model.dtype == "bfloat16"
    result = model.run(ids=IDS)
    exact = attnprox.load(exported("llama")).run(ids=IDS)
    assert result.attention().dtype == np.float32
    assert result.queries().dtype == np.float32  # bfloat16 values, widened for NumPy
    assert np.abs(result.attention() - exact.attention()).max() < 0.1
