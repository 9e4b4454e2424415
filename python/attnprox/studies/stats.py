"""Comparing groups of texts on one measure: per-group mean, SD, median and n; every pair of groups tested, with a
Bonferroni correction over the pairs; an omnibus test across all groups.

Matched texts (a match key per text, each key present once in every group):
    pairs      Wilcoxon signed-rank test on the differences d_m = x_b,m − x_a,m of the matched items (two-sided,
               zero differences dropped, scipy.stats.wilcoxon); effect size the matched-pairs rank-biserial
               correlation r = (W+ − W−) / (W+ + W−), W± the sums of the ranks of |d| over positive / negative d
               (average ranks for ties): +1 when b is above a in every pair, −1 when below
    omnibus    Friedman's test over the complete blocks (three or more groups)
Unmatched texts:
    pairs      Mann–Whitney U test (two-sided); effect size the rank-biserial r = 2·U_b / (n_a·n_b) − 1, U_b the
               number of (a, b) pairs with b above a (ties count ½)
    omnibus    Kruskal–Wallis H test (three or more groups)
Bonferroni: p_corrected = min(1, p · number of pairs). Direction: "b > a" when r > 0, "b < a" when r < 0.
"""
import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class GroupSummary:
    measure: str
    group: str
    n: int
    mean: float
    sd: float          # sample standard deviation (n − 1)
    median: float


@dataclass(frozen=True)
class PairTest:
    measure: str
    test: str          # "Wilcoxon signed-rank" or "Mann-Whitney U"
    group_a: str
    group_b: str
    n: int             # matched pairs (or n_a + n_b)
    statistic: float   # scipy's: W = min(W+, W−) for Wilcoxon, U of group a for Mann-Whitney
    p: float
    p_corrected: float  # Bonferroni over the pairs
    rank_biserial: float  # > 0: b above a
    direction: str
    mean_difference: float  # mean(b) − mean(a) (over the pairs when matched)

    @property
    def stars(self) -> str:
        return stars(self.p_corrected)


@dataclass(frozen=True)
class OmnibusTest:
    measure: str
    test: str          # "Friedman" or "Kruskal-Wallis"
    n: int             # blocks (or texts)
    statistic: float
    p: float


@dataclass
class Comparison:
    """Everything the tests say about one measure."""

    measure: str
    groups: List[str]
    matched: bool
    summaries: List[GroupSummary]
    pairs: List[PairTest]
    omnibus: Optional[OmnibusTest]
    note: str = ""


def stars(p: float) -> str:
    """*** p < 0.001, ** p < 0.01, * p < 0.05, n.s. otherwise."""
    if p is None or math.isnan(p):
        return "n.a."
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."


def rank_biserial_paired(a: Sequence[float], b: Sequence[float]) -> Tuple[float, float, float]:
    """(r, W+, W−) of the differences b − a, zero differences dropped."""
    from scipy.stats import rankdata

    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return 0.0, 0.0, 0.0
    ranks = rankdata(np.abs(d))
    w_plus, w_minus = float(ranks[d > 0].sum()), float(ranks[d < 0].sum())
    return (w_plus - w_minus) / (w_plus + w_minus), w_plus, w_minus


def wilcoxon_pair(measure: str, a_name: str, b_name: str, a: Sequence[float], b: Sequence[float],
                  pairs: int) -> PairTest:
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return PairTest(measure, "Wilcoxon signed-rank", a_name, b_name, 0, math.nan, math.nan, math.nan, math.nan,
                        "n.a.", math.nan)
    r, _, _ = rank_biserial_paired(a, b)
    if np.all(a == b):  # no difference at all: nothing to rank
        statistic, p = 0.0, 1.0
    elif a.size < 2:
        statistic, p = math.nan, math.nan
    else:
        with warnings.catch_warnings():  # scipy's switch to the normal approximation (zeros, ties, small n)
            warnings.simplefilter("ignore", UserWarning)
            test = wilcoxon(b, a, zero_method="wilcox", alternative="two-sided")
        statistic, p = float(test.statistic), float(test.pvalue)
    return PairTest(measure, "Wilcoxon signed-rank", a_name, b_name, int(a.size), statistic, p,
                    _bonferroni(p, pairs), r, _direction(r, a_name, b_name), float(np.mean(b - a)))


def mann_whitney_pair(measure: str, a_name: str, b_name: str, a: Sequence[float], b: Sequence[float],
                      pairs: int) -> PairTest:
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return PairTest(measure, "Mann-Whitney U", a_name, b_name, int(a.size + b.size), math.nan, math.nan,
                        math.nan, math.nan, "n.a.", math.nan)
    test = mannwhitneyu(a, b, alternative="two-sided")
    u_a = float(test.statistic)         # pairs with a above b (ties ½)
    u_b = a.size * b.size - u_a
    r = 2.0 * u_b / (a.size * b.size) - 1.0
    p = float(test.pvalue)
    return PairTest(measure, "Mann-Whitney U", a_name, b_name, int(a.size + b.size), u_a, p, _bonferroni(p, pairs),
                    r, _direction(r, a_name, b_name), float(np.mean(b) - np.mean(a)))


def _bonferroni(p: float, pairs: int) -> float:
    return p if math.isnan(p) else min(1.0, p * pairs)


def _direction(r: float, a: str, b: str) -> str:
    if math.isnan(r):
        return "n.a."
    return f"{b} > {a}" if r > 0 else f"{b} < {a}" if r < 0 else f"{b} = {a}"


def summarize(measure: str, group: str, values: Sequence[float]) -> GroupSummary:
    x = np.asarray(values, dtype=np.float64)
    return GroupSummary(measure, group, int(x.size), float(x.mean()) if x.size else math.nan,
                        float(x.std(ddof=1)) if x.size > 1 else math.nan, float(np.median(x)) if x.size else math.nan)


def compare(measure: str, values: Dict[str, Dict[str, float]], groups: Sequence[str], matched: bool) -> Comparison:
    """values: {group: {key: value}}, the key being the match key (matched) or the text id. Matched comparisons use
    the keys present in every group (complete blocks)."""
    groups = list(groups)
    pairs = list(itertools.combinations(groups, 2))
    if matched:
        keys = sorted(set.intersection(*(set(values.get(g, {})) for g in groups))) if groups else []
        columns = {g: [values[g][k] for k in keys] for g in groups}
        summaries = [summarize(measure, g, columns[g]) for g in groups]
        tests = [wilcoxon_pair(measure, a, b, columns[a], columns[b], len(pairs)) for a, b in pairs]
        omnibus, note = None, ""
        if len(groups) >= 3 and len(keys) >= 2:
            from scipy.stats import friedmanchisquare

            block = np.array([columns[g] for g in groups])
            if np.all(block == block[0]):
                omnibus = OmnibusTest(measure, "Friedman", len(keys), 0.0, 1.0)
            else:
                test = friedmanchisquare(*block)
                omnibus = OmnibusTest(measure, "Friedman", len(keys), float(test.statistic), float(test.pvalue))
        elif len(groups) < 3:
            note = "Friedman's test needs three or more groups; the pair's Wilcoxon test is the test."
        return Comparison(measure, groups, True, summaries, tests, omnibus, note)
    columns = {g: [values[g][k] for k in sorted(values.get(g, {}))] for g in groups}
    summaries = [summarize(measure, g, columns[g]) for g in groups]
    tests = [mann_whitney_pair(measure, a, b, columns[a], columns[b], len(pairs)) for a, b in pairs]
    omnibus, note = None, ""
    if len(groups) >= 3 and all(len(columns[g]) > 0 for g in groups):
        from scipy.stats import kruskal

        pooled = np.concatenate([columns[g] for g in groups])
        if np.all(pooled == pooled[0]):
            omnibus = OmnibusTest(measure, "Kruskal-Wallis", int(pooled.size), 0.0, 1.0)
        else:
            test = kruskal(*[columns[g] for g in groups])
            omnibus = OmnibusTest(measure, "Kruskal-Wallis", int(pooled.size), float(test.statistic),
                                  float(test.pvalue))
    elif len(groups) < 3:
        note = "the Kruskal-Wallis test needs three or more groups; the pair's Mann-Whitney test is the test."
    return Comparison(measure, groups, False, summaries, tests, omnibus, note)
