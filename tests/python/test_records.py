"""The small result records, `APE` and `AttentionStats`, are frozen dataclasses: they copy, deep-copy, pickle and
print, attribute access never raises KeyError, and `APE` is still the float it was (float(), comparisons,
formatting, arithmetic, math.isnan, NumPy, JSON)."""
import copy
import dataclasses
import json
import math
import pickle

import numpy as np
import pytest

import attnprox
from attnprox import metrics


def random_qk(n=9, heads=4, kv_heads=2, d=8, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(heads, n, d)), rng.normal(size=(kv_heads, n, d))


def entropy_of(row):
    p = row / row.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@pytest.fixture(scope="module")
def ape():
    q, k = random_qk()
    return metrics.ape(q, k, policy="shift")


def test_ape_is_a_frozen_dataclass_with_its_details(ape):
    q, k = random_qk()
    # The value, recomputed here from the definition (shift policy, docs/measurements.md §6).
    a = metrics.proximity(q, k)
    rows = []
    for i in range(len(a)):
        off = np.delete(a[i], i)
        w = off - off.min() + 1e-8  # the original code's formula (docs/measurements.md §6)
        p = w / w.sum()
        rows.append(float(-(p * np.log(p + 1e-10)).sum()))
    assert float(ape) == pytest.approx(np.mean(rows), rel=1e-12)
    assert ape.value == float(ape) and type(ape.value) is float
    np.testing.assert_allclose(ape.tokens, rows, rtol=1e-12)
    assert ape.normalized == pytest.approx(np.mean(rows) / math.log(len(a) - 1), rel=1e-12)
    assert ape.undefined_rows == 0 and ape.defined.all() and ape.policy == "shift"
    assert dataclasses.is_dataclass(ape) and isinstance(ape, float)
    assert [f.name for f in dataclasses.fields(ape)] == ["value", "normalized", "undefined_rows", "tokens",
                                                         "defined", "policy"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ape.policy = "clamp"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ape.undefined_rows = 3
    assert not hasattr(ape, "entropy") and hasattr(ape, "normalized")
    assert repr(ape).startswith(f"APE({float(ape):.6g}, normalized=") and "policy='shift'" in repr(ape)


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x)),
                                   lambda x: pickle.loads(pickle.dumps(x, protocol=2))],
                         ids=["copy", "deepcopy", "pickle", "pickle-2"])
def test_ape_copies_and_pickles_with_every_detail(ape, clone):
    twin = clone(ape)
    assert type(twin) is metrics.APE and twin is not ape
    assert float(twin) == float(ape) and twin.value == ape.value and twin.normalized == ape.normalized
    assert twin.undefined_rows == ape.undefined_rows and twin.policy == ape.policy
    np.testing.assert_array_equal(twin.tokens, ape.tokens)
    np.testing.assert_array_equal(twin.defined, ape.defined)
    assert repr(twin) == repr(ape)


def test_an_undefined_ape_copies_and_pickles_as_nan():
    a = np.array([[0.0, -1.0, -2.0], [-1.0, 0.0, -3.0], [-2.0, -3.0, 0.0]])  # every off-diagonal entry negative
    ape = metrics.ape(proximity=a, policy="literal")
    assert math.isnan(ape) and math.isnan(ape.value) and ape.normalized is None and ape.undefined_rows == 3
    assert np.isnan(ape.tokens).all() and not ape.defined.any()
    for twin in (copy.deepcopy(ape), pickle.loads(pickle.dumps(ape))):
        assert math.isnan(twin) and twin.normalized is None and twin.undefined_rows == 3
    assert "APE(undefined" in repr(ape)


def test_ape_behaves_as_the_float_it_was(ape):
    x = float(ape)
    assert type(x) is float
    assert ape == x and ape != x + 1 and ape < x + 1 and ape > x - 1 and ape <= x and ape >= x
    assert ape + 1 == x + 1 and 2 * ape == 2 * x and ape / 2 == x / 2 and -ape == -x and abs(ape) == abs(x)
    assert f"{ape:.4f}" == f"{x:.4f}" and "%.3f" % ape == "%.3f" % x and f"{ape}" == str(ape) == repr(ape)
    assert round(ape, 3) == round(x, 3) and hash(ape) == hash(x)
    assert not math.isnan(ape) and math.isfinite(ape)
    assert not np.isnan(ape) and np.float64(ape) == x and np.mean([ape, ape]) == pytest.approx(x)
    assert json.loads(json.dumps({"ape": ape})) == {"ape": x}
    assert ape == pytest.approx(x) and sorted([ape, x + 1, x - 1])[1] == x
    assert dataclasses.replace(ape, policy="other").policy == "other"


def test_result_ape_and_summary_keep_their_numbers(exported):
    model = attnprox.load(exported("llama"))
    r = model.run(ids=[5, 9, 2, 33, 17, 8])
    ape = r.ape()
    assert isinstance(ape, metrics.APE) and dataclasses.is_dataclass(ape)
    # The engine's APE against the Eigen reference on the same queries and keys.
    eigen = metrics.ape(r.queries(rope=False).astype(np.float64), r.keys(rope=False).astype(np.float64))
    assert float(ape) == pytest.approx(float(eigen), rel=1e-5)
    s = r.summary()
    assert type(s["ape"]) is float and s["ape"] == float(ape) and s["ape_normalized"] == ape.normalized
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ape)).tokens, r.ape_tokens())
    stats = r.attention_stats()
    assert isinstance(stats, metrics.AttentionStats)
    twin = pickle.loads(pickle.dumps(stats))
    assert twin == stats and twin.most_attended == stats.most_attended


@pytest.fixture(scope="module")
def stats():
    # Query 0 sees key 0 only (causal): weight 1; the largest weight over queries seeing two keys is 0.6 at (2, 1).
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.1, 0.6, 0.3]])
    return metrics.attention_stats(p, causal=True)


def test_attention_stats_is_a_frozen_dataclass(stats):
    assert dataclasses.is_dataclass(stats) and not isinstance(stats, dict)
    assert stats.max_weight == 0.6 and (stats.max_query, stats.max_key) == (2, 1)
    assert stats.mean_entropy == pytest.approx((0 + math.log(2) + entropy_of(np.array([0.1, 0.6, 0.3]))) / 3)
    np.testing.assert_allclose(stats.received, [1.6, 1.1, 0.3])
    assert stats.most_attended == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.max_weight = 1.0
    assert not hasattr(stats, "no_such_statistic") and hasattr(stats, "received")
    with pytest.raises(AttributeError):
        stats.no_such_statistic  # noqa: B018 (attribute access raises AttributeError, not KeyError)
    assert "max_weight=0.6000 at (2, 1)" in repr(stats)


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x))],
                         ids=["copy", "deepcopy", "pickle"])
def test_attention_stats_copies_and_pickles(stats, clone):
    twin = clone(stats)
    assert type(twin) is metrics.AttentionStats and twin is not stats and twin == stats
    for f in dataclasses.fields(stats):
        np.testing.assert_array_equal(getattr(twin, f.name), getattr(stats, f.name))
    assert twin != dataclasses.replace(stats, most_attended=2)
    assert twin != dataclasses.replace(stats, received=stats.received + 1)


def test_attention_stats_item_access_is_deprecated(stats):
    with pytest.warns(DeprecationWarning, match="use attribute access"):
        assert stats["mean_entropy"] == stats.mean_entropy
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError):
        stats["no_such_statistic"]
