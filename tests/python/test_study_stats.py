"""Corpus-study statistics and figure: Wilcoxon signed-rank, rank-biserial, Friedman, Mann-Whitney, Kruskal-Wallis
and Bonferroni checked against small cases computed by hand here (brute-force sign enumeration, the textbook
formulas), and against scipy on synthetic data with a known effect (a shift must be found in the right direction,
a null must be rejected at about the nominal rate); the figure's brackets and star labels."""
import itertools
import math
import re

import numpy as np
import pytest

from attnprox.studies import compare
from attnprox.studies import figure as figures
from attnprox.studies.stats import (mann_whitney_pair, rank_biserial_paired, stars, wilcoxon_pair)


def exact_signed_rank_p(d):
    """Two-sided exact p of the signed-rank statistic by enumerating every sign pattern (no ties, no zeros)."""
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    observed = min(ranks[np.asarray(d) > 0].sum(), ranks[np.asarray(d) < 0].sum())
    count = 0
    for signs in itertools.product((1, -1), repeat=len(d)):
        plus = sum(r for r, s in zip(ranks, signs) if s > 0)
        minus = sum(r for r, s in zip(ranks, signs) if s < 0)
        count += min(plus, minus) <= observed
    return count / 2 ** len(d)


def test_wilcoxon_and_rank_biserial_of_a_hand_computed_case():
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    d = [1.0, 2.0, -3.0, 4.0, 5.0]          # ranks of |d|: 1 2 3 4 5; W+ = 1+2+4+5 = 12, W- = 3
    b = [x + y for x, y in zip(a, d)]
    r, w_plus, w_minus = rank_biserial_paired(a, b)
    assert (w_plus, w_minus) == (12.0, 3.0)
    assert r == pytest.approx((12 - 3) / 15)
    test = wilcoxon_pair("ap", "A", "B", a, b, pairs=3)
    assert test.statistic == 3.0                       # min(W+, W-)
    # sign patterns with min(W+, W-) <= 3: {}, {1}, {2}, {3}, {1,2} on either side: 10 of 32
    assert exact_signed_rank_p(d) == pytest.approx(10 / 32)
    assert test.p == pytest.approx(10 / 32)
    assert test.p_corrected == pytest.approx(3 * 10 / 32)
    assert test.direction == "B > A" and test.mean_difference == pytest.approx(9 / 5)
    swapped = wilcoxon_pair("ap", "B", "A", b, a, pairs=3)
    assert swapped.rank_biserial == pytest.approx(-0.6) and swapped.direction == "A < B"
    assert swapped.p == pytest.approx(test.p)


def test_rank_biserial_drops_zeros_and_averages_tied_ranks():
    a = np.zeros(6)
    b = np.array([0.0, 1.0, -1.0, 2.0, 2.0, 3.0])   # |d| without the zero: 1 1 2 2 3 → ranks 1.5 1.5 3.5 3.5 5
    r, w_plus, w_minus = rank_biserial_paired(a, b)
    assert (w_plus, w_minus) == (1.5 + 3.5 + 3.5 + 5, 1.5)
    assert r == pytest.approx(12 / 15)


def test_bonferroni_caps_at_one_and_friedman_matches_the_formula():
    # blocks (rows) × groups: every row a permutation of 1..3, so the ranks are the values
    block = np.array([[1, 2, 3], [1, 3, 2], [1, 2, 3], [2, 1, 3]], dtype=float)
    values = {g: {f"m{k}": block[k, j] for k in range(4)} for j, g in enumerate("ABC")}
    c = compare("ap", values, ["A", "B", "C"], matched=True)
    sums = block.sum(axis=0)                      # rank sums R_j = 5, 8, 11
    n, k = 4, 3
    chi2 = 12 / (n * k * (k + 1)) * (sums ** 2).sum() - 3 * n * (k + 1)
    assert chi2 == pytest.approx(4.5)
    assert c.omnibus.test == "Friedman" and c.omnibus.n == 4
    assert c.omnibus.statistic == pytest.approx(4.5)
    assert c.omnibus.p == pytest.approx(math.exp(-4.5 / 2))  # chi-square with 2 df: sf(x) = exp(-x/2)
    assert [(t.group_a, t.group_b) for t in c.pairs] == [("A", "B"), ("A", "C"), ("B", "C")]
    for t in c.pairs:
        assert t.p_corrected == pytest.approx(min(1.0, 3 * t.p))
    # A–C: every difference +2, +1, +2, +1 → exact p = 2/16, corrected 0.375
    ac = c.pairs[1]
    assert ac.rank_biserial == 1.0 and ac.p == pytest.approx(2 / 16) and ac.p_corrected == pytest.approx(0.375)
    summary = {s.group: s for s in c.summaries}
    assert summary["B"].mean == pytest.approx(2.0) and summary["B"].sd == pytest.approx(np.std([2, 3, 2, 1], ddof=1))
    assert summary["C"].median == 3.0 and summary["A"].n == 4


def test_matched_comparison_uses_complete_blocks_only():
    values = {"A": {"x": 1.0, "y": 2.0, "z": 3.0}, "B": {"x": 2.0, "y": 4.0}}
    c = compare("ap", values, ["A", "B"], matched=True)
    assert [s.n for s in c.summaries] == [2, 2]
    assert c.pairs[0].n == 2 and c.omnibus is None and "three or more groups" in c.note


def test_unmatched_tests_of_hand_computed_cases():
    t = mann_whitney_pair("ap", "A", "B", [1, 2, 3], [4, 5, 6], pairs=1)
    assert t.rank_biserial == 1.0 and t.direction == "B > A"
    assert t.p == pytest.approx(2 / 20)             # exact: 2 of C(6,3) = 20 arrangements as extreme
    tied = mann_whitney_pair("ap", "A", "B", [1, 2, 2], [2, 3, 4], pairs=1)
    # (a, b) pairs with b above a: b=2 → 1 + ½ + ½, b=3 → 3, b=4 → 3: U_b = 8
    assert tied.rank_biserial == pytest.approx(2 * 8 / 9 - 1)
    c = compare("ap", {"A": {"a1": 1, "a2": 2, "a3": 3}, "B": {"b1": 4, "b2": 5, "b3": 6},
                       "C": {"c1": 7, "c2": 8, "c3": 9}}, ["A", "B", "C"], matched=False)
    # Kruskal-Wallis: rank sums 6, 15, 24; H = 12/(N(N+1)) Σ R²/n − 3(N+1) = 7.2; chi-square 2 df
    assert c.omnibus.test == "Kruskal-Wallis" and c.omnibus.statistic == pytest.approx(7.2)
    assert c.omnibus.p == pytest.approx(math.exp(-3.6))


def test_a_shift_is_found_in_its_direction_and_agrees_with_scipy():
    from scipy.stats import friedmanchisquare, wilcoxon

    rng = np.random.default_rng(7)
    n = 60
    base = rng.normal(size=n)
    groups = {"low": base, "mid": base + 0.5 + rng.normal(scale=0.5, size=n),
              "high": base + 1.0 + rng.normal(scale=0.5, size=n)}
    values = {g: {f"m{k}": float(v[k]) for k in range(n)} for g, v in groups.items()}
    c = compare("ap", values, ["low", "mid", "high"], matched=True)
    for t in c.pairs:
        assert t.p_corrected < 1e-4 and t.rank_biserial > 0.5
        assert t.direction == f"{t.group_b} > {t.group_a}"
        reference = wilcoxon(groups[t.group_b], groups[t.group_a])
        assert t.p == pytest.approx(reference.pvalue, rel=1e-12)
        assert t.statistic == pytest.approx(reference.statistic)
    assert c.omnibus.p == pytest.approx(friedmanchisquare(*groups.values()).pvalue, rel=1e-12)
    assert c.omnibus.p < 1e-10
    down = compare("ap", {"a": values["high"], "b": values["low"]}, ["a", "b"], matched=True).pairs[0]
    assert down.direction == "b < a" and down.rank_biserial < -0.5


def test_a_null_is_rejected_at_about_the_nominal_rate():
    rng = np.random.default_rng(11)
    rejected, trials = 0, 300
    for _ in range(trials):
        x = rng.normal(size=25)
        y = x + rng.normal(size=25)               # symmetric differences around 0: no effect
        test = wilcoxon_pair("ap", "x", "y", x, y, pairs=1)
        rejected += test.p < 0.05
    assert 0.02 <= rejected / trials <= 0.09


def test_stars():
    assert [stars(p) for p in (0.0004, 0.004, 0.04, 0.4, math.nan)] == ["***", "**", "*", "n.s.", "n.a."]


def test_figure_has_a_bracket_and_a_star_label_per_pair(tmp_path):
    rng = np.random.default_rng(3)
    n = 40
    base = rng.normal(size=n)
    groups = {"Elementary": base, "Intermediate": base + rng.normal(scale=1.0, size=n),
              "Advanced": base + 2.0 + rng.normal(scale=0.3, size=n)}
    values = {g: {f"m{k}": float(v[k]) for k in range(n)} for g, v in groups.items()}
    ap = compare("ap", values, list(groups), matched=True)
    ape = compare("ape_normalized", values, list(groups), matched=True)
    by_pair = {(t.group_a, t.group_b): t.stars for t in ap.pairs}
    assert by_pair[("Elementary", "Advanced")] == "***" and by_pair[("Intermediate", "Advanced")] == "***"
    fig = figures.draw([ap, ape], title="test")
    gids = {a.get_gid(): a for axis in fig.axes for a in list(axis.lines) + list(axis.texts) if a.get_gid()}
    for (a, b), label in by_pair.items():
        assert f"bracket:ap:{a}|{b}" in gids and f"bracket:ape_normalized:{a}|{b}" in gids
        assert gids[f"label:ap:{a}|{b}"].get_text() == label
    # each bracket sits above the error bars of the groups it spans, and overlapping brackets do not share a height
    tops = [s.mean + s.sd for s in ap.summaries]
    order = list(groups)
    heights = {}
    for a, b in by_pair:
        span = range(order.index(a), order.index(b) + 1)
        line = gids[f"bracket:ap:{a}|{b}"]
        assert sorted(line.get_xdata()) == [span[0], span[0], span[-1], span[-1]]
        heights[a, b] = line.get_ydata().max()
        assert heights[a, b] > max(tops[k] for k in span)
    assert heights["Elementary", "Advanced"] > max(heights["Elementary", "Intermediate"],
                                                    heights["Intermediate", "Advanced"])
    assert heights["Intermediate", "Advanced"] != heights["Elementary", "Intermediate"]
    png, svg = figures.save(fig, str(tmp_path / "figure"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    text = open(svg, encoding="utf-8").read()
    for (a, b), label in by_pair.items():
        group = re.search(rf'<g id="label:ap:{re.escape(a)}\|{re.escape(b)}">(.*?)</g>', text, re.S)
        assert group and f">{label}<" in group.group(1)
    assert "mean ± 1 SD" in text and "Bonferroni" in text
