"""Every measurement of docs/measurements.md against brute-force NumPy float64 and hand-computed cases: the Eigen
reference (attnprox.metrics) on random queries and keys, the libtorch engine (Result methods) on model runs, and the two
against each other."""
import math

import numpy as np
import pytest

import attnprox
import reference_numpy as ref
from attnprox import metrics

POLICIES = ["literal", "shift", "clamp", "softmax"]
SHAPES = [(2, 1, 1, 4), (3, 2, 2, 3), (7, 4, 2, 8), (16, 6, 3, 5), (33, 8, 1, 16)]  # (N, H, Hkv, d)


def visible_mask(n, causal, window=None):
    """[N, N] bool: query i sees key j (HF's conventions), written from the rules."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    if causal:
        return (j <= i) & ((i - j < window) if window else True)
    return np.abs(i - j) <= window if window else np.ones((n, n), bool)


def random_qk(n, heads, kv_heads, d, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(heads, n, d)).astype(dtype), rng.normal(size=(kv_heads, n, d)).astype(dtype))


@pytest.mark.parametrize("n,heads,kv_heads,d", SHAPES)
def test_eigen_measurements_match_numpy(n, heads, kv_heads, d):
    q, k = random_qk(n, heads, kv_heads, d, seed=n * 100 + heads)
    a = ref.proximity(q, k)
    np.testing.assert_allclose(metrics.proximity(q, k), a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(metrics.ap_tokens(q, k), ref.ap_tokens(q, k), rtol=1e-10, atol=1e-12)
    assert metrics.ap(q, k) == pytest.approx(ref.ap_tokens(q, k).mean(), rel=1e-10, abs=1e-12)
    for subset in ([0], list(range(n)), [n - 1, 0, n - 1, 0]):
        np.testing.assert_allclose(metrics.subset_proximity(subset, q, k), ref.subset_proximity(q, k, subset),
                                   rtol=1e-10, atol=1e-12)
    for policy in POLICIES:
        value, normalized, undefined, rows = ref.ape(a, policy)
        got = metrics.ape(q, k, policy=policy)
        assert got.undefined_rows == undefined and got.policy == policy
        np.testing.assert_array_equal(got.defined, ~np.isnan(rows))
        np.testing.assert_allclose(got.tokens, rows, rtol=1e-9, atol=1e-12, equal_nan=True)
        if value is None:
            assert math.isnan(got) and got.normalized is None
        else:
            assert float(got) == pytest.approx(value, rel=1e-9)
            assert got.normalized == pytest.approx(normalized, rel=1e-9)
        # the same from the ready-made matrix
        from_matrix = metrics.ape(proximity=a, policy=policy)
        np.testing.assert_allclose(from_matrix.tokens, rows, rtol=1e-9, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(metrics.ap_tokens(proximity=a), ref.ap_tokens(q, k), rtol=1e-10, atol=1e-12)


def test_hand_computed_three_tokens():
    # A with positive off-diagonal entries: AP_i = (1+2)/2, (1+3)/2, (2+3)/2
    a = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    np.testing.assert_allclose(metrics.ap_tokens(proximity=a), [1.5, 2.0, 2.5])
    assert metrics.ap(proximity=a) == pytest.approx(2.0)
    np.testing.assert_allclose(metrics.subset_proximity([0, 2], proximity=a), [1.0, 2.0, 1.0])
    h = lambda *p: -sum(x * math.log(x) for x in p if x > 0)  # noqa: E731
    literal = metrics.ape(proximity=a, policy="literal")
    np.testing.assert_allclose(literal.tokens, [h(1 / 3, 2 / 3), h(1 / 4, 3 / 4), h(2 / 5, 3 / 5)])
    assert literal.normalized == pytest.approx(float(literal) / math.log(2))
    # shift moves each row's smallest entry to 1e-8 (the original code's formula): every row becomes (1e-8, x + 1e-8),
    # an entropy of nearly 0 (0 under the plain formula)

    def shifted(*x):
        w = np.array(x) - min(x) + 1e-8
        p = w / w.sum()
        return float(-(p * np.log(p + 1e-10)).sum())

    shift = metrics.ape(proximity=a, policy="shift").tokens
    np.testing.assert_allclose(shift, [shifted(1, 2), shifted(1, 3), shifted(2, 3)], rtol=1e-9)
    assert 0 < shift.max() < 1e-6
    e = math.e
    np.testing.assert_allclose(metrics.ape(proximity=a, policy="softmax").tokens,
                               [h(1 / (1 + e), e / (1 + e)), h(1 / (1 + e ** 2), e ** 2 / (1 + e ** 2)),
                                h(1 / (1 + e), e / (1 + e))])
    # a negative entry: literal leaves rows 0 and 1 undefined, clamp and shift do not
    b = np.array([[0.0, -1.0, 2.0], [-1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    literal = metrics.ape(proximity=b, policy="literal")
    assert literal.undefined_rows == 2 and list(literal.defined) == [False, False, True]
    assert float(literal) == pytest.approx(h(2 / 3, 1 / 3))
    clamp = metrics.ape(proximity=b, policy="clamp")
    np.testing.assert_allclose(clamp.tokens, [0, 0, h(2 / 3, 1 / 3)])
    # all-equal rows: shift's offset leaves a uniform row (the plain formula would have nothing left), as softmax
    c = np.ones((3, 3))
    assert metrics.ape(proximity=c, policy="shift").undefined_rows == 0
    np.testing.assert_allclose(metrics.ape(proximity=c, policy="shift").tokens, [-math.log(0.5 + 1e-10)] * 3,
                               rtol=1e-12)
    np.testing.assert_allclose(metrics.ape(proximity=c, policy="softmax").tokens, [math.log(2)] * 3)


def test_one_and_two_tokens():
    q, k = random_qk(1, 2, 1, 4, seed=1)
    with pytest.raises(attnprox.InvalidArgumentError, match="needs at least 2 tokens"):
        metrics.ap_tokens(q, k)
    with pytest.raises(attnprox.InvalidArgumentError, match="needs at least 2 tokens"):
        metrics.ape(q, k)
    assert metrics.proximity(q, k).shape == (1, 1)
    np.testing.assert_allclose(metrics.subset_proximity([0], q, k), ref.proximity(q, k)[0])
    q, k = random_qk(2, 2, 1, 4, seed=2)
    a = ref.proximity(q, k)
    np.testing.assert_allclose(metrics.ap_tokens(q, k), [a[0, 1], a[0, 1]])
    # one entry per row: a certain distribution (entropy 0, normalised 0) where defined
    soft = metrics.ape(q, k, policy="softmax")
    assert float(soft) == 0 and soft.normalized == 0 and soft.undefined_rows == 0
    shift = metrics.ape(q, k, policy="shift")  # one entry shifted to 1e-8: p = 1, −log(1 + 1e-10)
    assert shift.undefined_rows == 0 and float(shift) == pytest.approx(-math.log1p(1e-10), abs=1e-15)


def test_subset_errors():
    q, k = random_qk(5, 2, 2, 3, seed=3)
    with pytest.raises(attnprox.OutOfRangeError, match=r"token 5 in the subset, the text has 5 tokens \(0..4\)"):
        metrics.subset_proximity([1, 5], q, k)
    with pytest.raises(IndexError, match="token -1"):
        metrics.subset_proximity([-1], q, k)
    with pytest.raises(attnprox.InvalidArgumentError, match="the subset is empty"):
        metrics.subset_proximity([], q, k)
    with pytest.raises(attnprox.InvalidArgumentError, match="not one of literal, shift, clamp, softmax"):
        metrics.ape(q, k, policy="magic")
    with pytest.raises(attnprox.InvalidArgumentError, match="must be a multiple of key heads"):
        metrics.ap(q[:, :, :], k[:2, :, :][:1].repeat(3, 0))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_inputs_accumulate_in_double(dtype):
    q, k = random_qk(40, 4, 2, 16, seed=4, dtype=dtype)
    q64, k64 = q.astype(np.float64), k.astype(np.float64)  # exactly the values the library reads
    np.testing.assert_allclose(metrics.ap_tokens(q, k), ref.ap_tokens(q64, k64), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(metrics.ape(q, k).tokens, ref.ape_rows(ref.proximity(q64, k64), "shift"), rtol=1e-9)


# --- the engine (libtorch) against the references, on model runs ---

IDS = [7, 3, 91, 3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50]


@pytest.fixture(scope="module", params=["llama", "qwen3", "bert", "gpt2"])
def run(request, exported):
    model = attnprox.load(exported(request.param))
    return model, model.run(ids=IDS)


def test_engine_matches_eigen_and_numpy(run):
    model, r = run
    for layer in model.captured_layers:
        # Before RoPE, as the proximity family measures by default; rope=True below on the attention's own.
        q, k = r.queries(layer, rope=False).astype(np.float64), r.keys(layer, rope=False).astype(np.float64)
        np.testing.assert_allclose(r.ap_tokens(layer), metrics.ap_tokens(q, k), rtol=1e-9, atol=1e-12)
        q_after, k_after = r.queries(layer).astype(np.float64), r.keys(layer).astype(np.float64)
        np.testing.assert_allclose(r.ap_tokens(layer, rope=True), metrics.ap_tokens(q_after, k_after), rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(r.ape(layer, rope=True).tokens, metrics.ape(q_after, k_after).tokens, rtol=2e-5,
                                   atol=2e-6)
        for subset in ([0], [3, 3, 9], list(range(len(IDS)))):
            np.testing.assert_allclose(r.subset_proximity(subset, layer), metrics.subset_proximity(subset, q, k),
                                       rtol=1e-9, atol=1e-12)
        for policy in POLICIES:
            ours, reference = r.ape(layer, policy), metrics.ape(q, k, policy=policy)
            assert ours.undefined_rows == reference.undefined_rows
            np.testing.assert_array_equal(ours.defined, reference.defined)
            np.testing.assert_allclose(ours.tokens, reference.tokens, rtol=2e-5, atol=2e-6, equal_nan=True)
            np.testing.assert_allclose(r.ape_tokens(layer, policy), reference.tokens, rtol=2e-5, atol=2e-6,
                                       equal_nan=True)


def test_engine_averaging_and_statistics_match_numpy(run):
    model, r = run
    n = len(IDS)
    layers = model.captured_layers
    scaled = {}  # A_h per (layer, head)
    for layer in layers:
        q, k = r.queries(layer, rope=False).astype(np.float64), r.keys(layer, rope=False).astype(np.float64)
        kk = np.repeat(k, model.num_heads // model.num_kv_heads, axis=0)
        scaled[layer] = q @ kk.transpose(0, 2, 1) / math.sqrt(model.head_dim)
    every = np.stack([scaled[l] for l in layers])  # [L, H, N, N]
    np.testing.assert_allclose(r.average_proximity(symmetric=False), every.mean((0, 1)), rtol=1e-4, atol=1e-5)
    sym = (every.mean((0, 1)) + every.mean((0, 1)).T) / 2
    np.testing.assert_allclose(r.average_proximity(), sym, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r.average_proximity(layers=[layers[-1]]), r.proximity(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r.average_proximity(layers=layers[:1], heads=[1], symmetric=False),
                               scaled[layers[0]][1], rtol=1e-4, atol=1e-5)
    windows = {e["index"]: e["sliding_window"] for e in model.manifest["layers"]}
    for layer in layers:
        p = r.attention(layer).astype(np.float64)  # [H, N, N]
        visible = ref.visible_keys(n, model.causal, windows[layer])
        h = ref.entropy_rows(p)
        np.testing.assert_allclose(r.attention_entropy(layer), h, rtol=1e-5, atol=1e-6)
        normalized = np.where(visible > 1, h / np.log(np.maximum(visible, 2)), 0.0)
        np.testing.assert_allclose(r.attention_entropy(layer, normalized=True), normalized, rtol=1e-5, atol=1e-6)
        for head in (None, 1):
            w = p.mean(0) if head is None else p[head]
            stats = r.attention_stats(layer, head)
            np.testing.assert_allclose(stats.entropy, ref.entropy_rows(w), rtol=1e-5, atol=1e-6)
            assert stats.mean_entropy == pytest.approx(ref.entropy_rows(w).mean(), rel=1e-5)
            # Each query's largest weight over the keys it sees; the largest of them over the queries that see
            # two keys or more (causal: not token 0, whose only key has weight 1).
            sees = visible_mask(n, model.causal, windows[layer])
            row_max = np.where(sees, w, -1.0).max(1)
            np.testing.assert_allclose(stats.max_weights, row_max, rtol=1e-5)
            np.testing.assert_allclose(w[np.arange(n), stats.argmax_keys], row_max, rtol=1e-5)
            assert sees[np.arange(n), stats.argmax_keys].all()
            candidates = visible > 1
            assert stats.max_weight == pytest.approx(row_max[candidates].max(), rel=1e-5)
            assert candidates[stats.max_query] and sees[stats.max_query, stats.max_key]
            assert w[stats.max_query, stats.max_key] == pytest.approx(row_max[candidates].max(), rel=1e-5)
            if model.causal:
                assert stats.max_query != 0
            np.testing.assert_allclose(stats.received, w.sum(0), rtol=1e-5, atol=1e-6)
            assert stats.most_attended == int(np.argmax(w.sum(0)))
            eigen = metrics.attention_stats(w, causal=model.causal, sliding_window=windows[layer])
            np.testing.assert_allclose(stats.normalized_entropy, eigen.normalized_entropy, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(eigen.max_weights, stats.max_weights, rtol=1e-5)
            assert eigen.max_weight == pytest.approx(stats.max_weight, rel=1e-5)
            arcs = r.top_arcs(5, k=4, layer=layer, head=head)
            assert [key for key, _ in arcs] == [key for key, _ in metrics.top_arcs(w, 5, 4)]
            np.testing.assert_allclose([x for _, x in arcs], np.sort(w[5])[::-1][:4], rtol=1e-5)
            # Only the keys a query sees: token 2 of a causal model has three, whatever k asks for.
            for query in (0, 2, n - 1):
                arcs = r.top_arcs(query, k=n, layer=layer, head=head)
                keys = np.flatnonzero(sees[query])
                assert sorted(key for key, _ in arcs) == list(keys)
                np.testing.assert_allclose([x for _, x in arcs], np.sort(w[query, keys])[::-1], rtol=1e-5,
                                           atol=1e-7)
                assert [k for k, _ in metrics.top_arcs(w, query, n, causal=model.causal,
                                                       sliding_window=windows[layer])] == [k for k, _ in arcs]
            if model.causal and not windows[layer]:
                assert len(r.top_arcs(2, k=5, layer=layer, head=head)) == 3
    a, b = 2, 11
    links = r.linking_heads(a, b)
    brute = sorted(((l, h, max(r.attention(l)[h, a, b], r.attention(l)[h, b, a])) for l in layers
                    for h in range(model.num_heads)), key=lambda t: -t[2])
    assert len(links) == len(layers) * model.num_heads
    np.testing.assert_allclose([s for _, _, s in links], [s for _, _, s in brute], rtol=1e-5)
    assert links[0][:2] == brute[0][:2]
    assert r.linking_heads(a, b, k=3) == links[:3] and r.linking_heads(a, b, 3) == links[:3]


def test_linking_heads_count_is_k_and_top_is_its_deprecated_name(run):
    """top_arcs and linking_heads name "how many" k; linking_heads' former top= still works, with a warning."""
    model, r = run
    links = r.linking_heads(2, 11)
    assert len(links) == len(model.captured_layers) * model.num_heads > 3
    with pytest.warns(DeprecationWarning, match=r"linking_heads\(top=...\) is deprecated: use k="):
        assert r.linking_heads(2, 11, top=3) == links[:3]
    with pytest.raises(attnprox.InvalidArgumentError, match="give k, not both k and top"):
        r.linking_heads(2, 11, k=2, top=3)
    with pytest.raises(attnprox.InvalidArgumentError, match="k must be at least 1, found 0"):
        r.linking_heads(2, 11, k=0)
    with pytest.raises(attnprox.InvalidArgumentError, match="k must be a whole number"):
        r.linking_heads(2, 11, k=2.5)
    assert len(r.top_arcs(11, k=3)) == 3 and len(r.top_arcs(11, 3)) == 3


def test_temperature_flattens_or_sharpens(run):
    model, r = run
    cold, warm = r.attention_stats(temperature=0.5), r.attention_stats(temperature=4.0)
    assert cold.mean_entropy < r.attention_stats().mean_entropy < warm.mean_entropy
    p = r.attention(-1, temperature=4.0).mean(0)
    np.testing.assert_allclose(warm.entropy, ref.entropy_rows(p), rtol=1e-5, atol=1e-6)


def test_engine_measurement_errors(run):
    model, r = run
    with pytest.raises(attnprox.OutOfRangeError, match="in the subset, the text has 20 tokens"):
        r.subset_proximity([20])
    with pytest.raises(attnprox.OutOfRangeError, match="query token 20 requested"):
        r.top_arcs(20)
    with pytest.raises(attnprox.OutOfRangeError, match="token 25 requested"):
        r.linking_heads(0, 25)
    with pytest.raises(attnprox.InvalidArgumentError, match="k must be at least 1"):
        r.top_arcs(0, k=0)
    with pytest.raises(attnprox.InvalidArgumentError, match="not one of literal"):
        r.ape(policy="nope")
    one = model.run(ids=[5])
    with pytest.raises(attnprox.InvalidArgumentError, match="needs at least 2 tokens"):
        one.ape()
    assert one.attention_stats().mean_normalized_entropy == 0.0  # a single visible key: certain


def test_low_precision_model_measurements_accumulate_in_double(exported):
    """A bfloat16 model: the engine reads the same bfloat16 values the reference gets (widened exactly)."""
    model = attnprox.load(exported("llama"), dtype="bfloat16")
    r = model.run(ids=IDS)
    q, k = r.queries(rope=False).astype(np.float64), r.keys(rope=False).astype(np.float64)
    np.testing.assert_allclose(r.ap_tokens(), metrics.ap_tokens(q, k), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(r.subset_proximity([1, 4]), metrics.subset_proximity([1, 4], q, k), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(r.ape().tokens, metrics.ape(q, k).tokens, rtol=2e-5, atol=2e-6)
