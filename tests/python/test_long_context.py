"""Long texts in the reference model files: no N × N tensor in the forward of one sequence (masks are built per layer
and per tile of query rows, from positions), attention in tiles equal to brute-force NumPy, and `forward_layers`,
which returns a chosen part of the captured layers and stops after the last of them."""
import math
import os

import numpy as np
import pytest
import torch

import attnprox
from attnprox.reference.common import Attention, has_sdpa
from attnprox.reference.model import load_reference_model
from attnprox.reference.random_model import write_random_model
from conftest import FIXTURES

LONG = 3072  # with 4 heads, 4·N² logits are more than one tile (2^24 elements): the tiles have fewer rows than N

CONFIGS = {
    "gpt2": {"model_type": "gpt2", "vocab_size": 64, "n_positions": LONG, "n_embd": 32, "n_layer": 2, "n_head": 4,
             "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5},
    "bert": {"model_type": "bert", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": LONG,
             "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12},
    "llama-window": {"model_type": "mistral", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": LONG, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                     "sliding_window": 200, "hidden_act": "silu"},
    "qwen3": {"model_type": "qwen3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 8,
              "max_position_embeddings": LONG, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
              "hidden_act": "silu"},
}


@pytest.fixture(scope="module")
def long_models(tmp_path_factory):
    """name → (Hugging Face directory, exported model file) of small random models with LONG positions."""
    root = tmp_path_factory.mktemp("long")
    out = {}
    for name, config in CONFIGS.items():
        hf_dir = write_random_model(config, str(root / name), std=0.2)
        path = str(root / f"{name}.apx")
        attnprox.export_reference(hf_dir, path)
        out[name] = (hf_dir, path)
    return out


def _inside_sdpa(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if "scaled_dot_product" in parent.name:
            return True
        parent = parent.cpu_parent
    return False


def square_tensors(run, n: int):
    """(operator, shape) of every operator input with two dimensions of size n while `run()` runs, outside the
    kernels of torch's fused attention (which choose their own work space)."""
    with torch.autograd.profiler.profile(record_shapes=True) as prof:
        run()
    found = set()
    for event in prof.function_events:
        for shape in event.input_shapes:
            if isinstance(shape, (list, tuple)) and sum(1 for s in shape if s == n) >= 2 and not _inside_sdpa(event):
                found.add((event.name, tuple(shape)))
    return found


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_no_n_by_n_tensor_in_the_forward_of_one_sequence(name, long_models):
    _, path = long_models[name]
    module = torch.jit.load(path)
    ids = torch.randint(0, 64, (1, LONG), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        found = square_tensors(lambda: module(ids, torch.ones_like(ids)), LONG)
    assert not found, f"{name}: N × N tensors in the forward: {sorted(found)[:5]}"


def test_no_n_by_n_tensor_in_a_padded_bidirectional_batch(long_models):
    _, path = long_models["bert"]
    module = torch.jit.load(path)
    ids = torch.randint(0, 64, (2, LONG), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, LONG - 300:] = 0
    with torch.no_grad():
        found = square_tensors(lambda: module(ids, mask), LONG)
    assert not found, sorted(found)[:5]


def test_no_n_by_n_tensor_in_a_bert_text_pair_through_forward_layers(long_models):
    """BERT with token type ids (a text pair's segments) through forward_layers, the types after the layers: still
    no N × N tensor, and the same queries and keys as forward with those types."""
    _, path = long_models["bert"]
    module = torch.jit.load(path)
    ids = torch.randint(0, 64, (1, LONG), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)
    types[:, LONG // 2:] = 1
    with torch.no_grad():
        found = square_tensors(lambda: module.forward_layers(ids, mask, [1], types), LONG)
        q, k = module.forward_layers(ids, mask, [1], types)
        queries, keys = module(ids, mask, types)
    assert not found, sorted(found)[:5]
    assert torch.equal(q[0], queries[1]) and torch.equal(k[0], keys[1])


def test_the_check_sees_n_by_n_tensors_where_there_are(long_models):
    """The same model with attention in one tile (eager, as before per-tile masks) is caught by the check."""
    hf_dir, _ = long_models["llama-window"]
    model, _, _ = load_reference_model(hf_dir, fused=False)
    for module in model.modules():
        if isinstance(module, Attention):
            module.tile = 1 << 40
    scripted = torch.jit.script(model)
    ids = torch.randint(0, 64, (1, LONG), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        found = square_tensors(lambda: scripted(ids, torch.ones_like(ids)), LONG)
    assert any(shape[-2:] == (LONG, LONG) for _, shape in found), sorted(found)[:5]


def _numpy_attention(q, k, v, scaling, causal, window, real):
    """softmax(scaling · Q Kᵀ + M) V in float64 for the real tokens of one sequence; q [H, n, d], k and v
    [Hkv, n, d]; M: causal (j ≤ i, a window i − j < W), bidirectional (a window |i − j| ≤ W), padded keys."""
    heads, n = q.shape[0], q.shape[1]
    k = np.repeat(k, heads // k.shape[0], axis=0).astype(np.float64)
    v = np.repeat(v, heads // v.shape[0], axis=0).astype(np.float64)
    logits = scaling * np.einsum("hid,hjd->hij", q.astype(np.float64), k)
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    if causal:
        visible = j <= i
        if window:
            visible = visible & (i - j < window)
    else:
        visible = np.abs(i - j) <= window if window else np.ones((n, n), bool)
        visible = visible & (j < real)
    logits = np.where(visible, logits, -np.inf)[:, :real]  # real queries: each sees at least itself
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("hij,hjd->ihd", weights, v).reshape(real, -1)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("causal,window", [(True, 0), (True, 5), (True, 40), (False, 0), (False, 4)])
def test_attention_in_tiles_matches_numpy(fused, causal, window):
    if fused and not has_sdpa():
        pytest.skip("this torch has no scaled_dot_product_attention with `scale` (2.1+)")
    g = torch.Generator().manual_seed(3)
    b, heads, kv_heads, n, d = 2, 4, 2, 37, 8
    q = torch.randn(b, heads, n, d, generator=g)
    k = torch.randn(b, kv_heads, n, d, generator=g)
    v = torch.randn(b, kv_heads, n, d, generator=g)
    lengths = [n, 29]
    padding = torch.arange(n).view(1, n) < torch.tensor(lengths).view(b, 1)
    scaling = 0.4
    for tile in (1 << 24, 700, 64, 1):  # one tile, several, one row at a time
        attend = torch.jit.script(Attention(scaling, heads // kv_heads, causal, window, fused, tile))
        with torch.no_grad():
            out = attend(q, k, v, padding).numpy()
        for s in range(b):
            want = _numpy_attention(q[s].numpy(), k[s].numpy(), v[s].numpy(), scaling, causal, window, lengths[s])
            np.testing.assert_allclose(out[s, :lengths[s]], want, rtol=1e-5, atol=1e-5,
                                       err_msg=f"tile {tile}, sequence {s}")


def test_forward_layers_returns_the_chosen_layers_and_stops_after_them(exported):
    module = torch.jit.load(exported("llama"))  # three layers, all captured
    ids = torch.tensor([[7, 3, 91, 3, 14, 15, 92, 65, 35]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        queries, keys = module(ids, mask)
        for chosen in ([0], [1, 2], [0, 2], [2]):
            q, k = module.forward_layers(ids, mask, chosen)
            assert len(q) == len(k) == len(chosen)
            for got_q, got_k, layer in zip(q, k, chosen):
                assert torch.equal(got_q, queries[layer]) and torch.equal(got_k, keys[layer])

        def softmaxes(run):
            with torch.autograd.profiler.profile() as prof:
                run()
            return sum(1 for e in prof.function_events if e.name in ("aten::_softmax", "aten::softmax")
                       or "scaled_dot_product" in e.name)

        # Stopping after layer 0's queries and keys: no attention is computed at all; after layer 1's: one layer's.
        assert softmaxes(lambda: module.forward_layers(ids, mask, [0])) == 0
        one = softmaxes(lambda: module.forward_layers(ids, mask, [1]))
        assert one > 0 and softmaxes(lambda: module(ids, mask)) == 2 * one
        for bad in ([], [2, 1], [5], [1, 1]):
            with pytest.raises(Exception, match="forward_layers"):
                module.forward_layers(ids, mask, bad)


def test_padding_on_the_left_is_refused(exported):
    module = torch.jit.load(exported("bert"))
    ids = torch.tensor([[1, 2, 3, 4]])
    with pytest.raises(Exception, match="padding must be on the right"):
        module(ids, torch.tensor([[0, 1, 1, 1]]))


def test_engine_runs_stop_after_the_last_kept_layer(exported):
    """Through the engine: a model loaded with layers=[0] computes no attention in its runs."""
    path = exported("llama")
    ids = [7, 3, 91, 3, 14, 15, 92]

    def attention_ops(model, **kw):
        with torch.autograd.profiler.profile() as prof:
            model.run(ids=ids, **kw)
        return sum(1 for e in prof.function_events if e.name in ("aten::_softmax", "aten::softmax")
                   or "scaled_dot_product" in e.name)

    full = attnprox.load(path)
    first = attnprox.load(path, layers=0)
    if attention_ops(full) == 0:
        pytest.skip("the profiler does not see the engine's own thread here")
    assert attention_ops(first) == 0
    assert attention_ops(full, layers=[1]) * 2 == attention_ops(full)
    r = first.run(ids=ids)
    assert r.layers == [0] and first.layers == [0] and first.captured_layers == [0, 1, 2]
    np.testing.assert_array_equal(r.queries(0), full.run(ids=ids).queries(0))


def test_python_layer_choices(exported):
    path = exported("llama")
    ids = [5, 6, 7, 8]
    full = attnprox.load(path).run(ids=ids)
    assert attnprox.load(path, layers="last").layers == [2]
    assert attnprox.load(path, layers="all").layers == [0, 1, 2]
    assert attnprox.load(path, layers="0,2").layers == [0, 2]
    assert attnprox.load(path, layers=[-1, 0]).layers == [0, 2]
    model = attnprox.load(path, layers="last")
    assert model.run(ids=ids).layers == [2]
    assert model.run(ids=ids, layers="all").layers == [0, 1, 2]
    batch = model.run(ids=[ids, ids[:2]], layers=1)
    assert [r.layers for r in batch] == [[1], [1]]
    np.testing.assert_array_equal(batch[0].keys(1), full.keys(1))
    with pytest.raises(attnprox.OutOfRangeError, match="layer 1 was not kept by this run"):
        model.run(ids=ids).attention(1)
    with pytest.raises(attnprox.OutOfRangeError, match="layer 3 requested, the model has 3 layers"):
        attnprox.load(path, layers=3)
    with pytest.raises(attnprox.InvalidArgumentError, match="expected 'all', 'last'"):
        attnprox.load(path, layers="first")
    with pytest.raises(attnprox.InvalidArgumentError, match="non-empty list"):
        model.run(ids=ids, layers=[])
    # what reads every layer of a result reads those it holds
    from attnprox import plots

    fig = plots.grid(model.run(ids=ids, layers=[0, 2]))
    assert len(fig.axes) >= 2 * model.num_heads


def test_cli_score_keeps_only_the_measured_layer(exported, capsys):
    import json

    from attnprox.cli import main

    path = exported("llama")
    assert main(["score", path, "--ids", "5,6,7,8,9", "--json"]) == 0
    [last_only] = json.loads(capsys.readouterr().out)  # --json writes a list, one object per input
    assert main(["score", path, "--ids", "5,6,7,8,9", "--json", "--layers", "all"]) == 0
    [every] = json.loads(capsys.readouterr().out)
    assert last_only["ap"] == pytest.approx(every["ap"], rel=1e-12)
    assert main(["score", path, "--ids", "5,6,7,8,9", "--json", "--layer", "0"]) == 0
    [first] = json.loads(capsys.readouterr().out)
    assert first["ap"] == pytest.approx(attnprox.load(path).run(ids=[5, 6, 7, 8, 9]).ap(0), rel=1e-12)
    assert main(["score", path, "--ids", "5,6", "--layers", "7"]) == 1
    assert "layer 7 requested" in capsys.readouterr().err


# --- measurements on long texts: APE over several tiles of rows, AP over several chunks of tokens ----------------

@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    """A Llama with 16 heads of 64 (4 key heads) and 20,000 positions, exported with layer 0 only: its forward stops
    after layer 0's queries and keys, so a long text costs embeddings and projections only."""
    root = tmp_path_factory.mktemp("wide")
    config = {"model_type": "llama", "vocab_size": 64, "hidden_size": 1024, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 16, "num_key_value_heads": 4,
              "max_position_embeddings": 20000, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu"}
    hf_dir = write_random_model(config, str(root / "wide"), std=0.05)
    path = str(root / "wide.apx")
    attnprox.export_reference(hf_dir, path, layers=[0])
    return path


def test_ap_over_several_chunks_of_tokens_matches_the_eigen_reference(wide_model):
    """20,000 tokens × 16 heads × 64: more than one chunk of the float64 working set (2^27 bytes per chunk)."""
    from attnprox import metrics

    ids = torch.randint(0, 64, (20000,), generator=torch.Generator().manual_seed(4)).tolist()
    for dtype in ("float32", "bfloat16"):
        r = attnprox.load(wide_model, dtype=dtype).run(ids=ids)
        # The queries and keys the proximity family measures by default: before RoPE.
        q, k = r.queries(0, rope=False).astype(np.float64), r.keys(0, rope=False).astype(np.float64)
        np.testing.assert_allclose(r.ap_tokens(0), metrics.ap_tokens(q, k), rtol=1e-9, atol=1e-12)
        subset = [0, 5, 19999, 12345]
        np.testing.assert_allclose(r.subset_proximity(subset, 0), metrics.subset_proximity(subset, q, k),
                                   rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def narrow_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("narrow")
    config = {"model_type": "llama", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
              "max_position_embeddings": 9000, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu"}
    hf_dir = write_random_model(config, str(root / "narrow"), std=0.3)
    path = str(root / "narrow.apx")
    attnprox.export_reference(hf_dir, path)
    return path


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_ape_over_several_tiles_matches_the_eigen_reference(narrow_model, dtype):
    """9,000 tokens: rows of A in two tiles (2^26 float32 entries each); grouped-query heads (2 per key head), so
    that in bfloat16 the grouped queries go as two bfloat16 parts."""
    from attnprox import metrics

    ids = torch.randint(0, 64, (9000,), generator=torch.Generator().manual_seed(5)).tolist()
    r = attnprox.load(narrow_model, dtype=dtype).run(ids=ids)
    q, k = r.queries(rope=False).astype(np.float64), r.keys(rope=False).astype(np.float64)  # the default: before RoPE
    for policy in ("shift", "literal", "clamp", "softmax"):
        ours, reference = r.ape(policy=policy), metrics.ape(q, k, policy=policy)
        assert ours.undefined_rows == reference.undefined_rows, policy
        np.testing.assert_array_equal(ours.defined, reference.defined)
        np.testing.assert_allclose(ours.tokens, reference.tokens, rtol=2e-5, atol=2e-6, equal_nan=True,
                                   err_msg=policy)
