"""Attention Proximity measurements on plain arrays (queries, keys or attention weights from anywhere), by the
Eigen reference implementation of the C++ library. The same measurements of a model run are methods of
`attnprox.Result`. The definitions, with their conventions: docs/measurements.md.

In short, at one layer, with d_k = d and g(h) = h // (H // Hkv):
    A_h = Q_h K_{g(h)}ᵀ / sqrt(d),  A_raw = mean_h A_h,  A = (A_raw + A_rawᵀ) / 2
    AP_i = Σ_{j≠i} A_ij / (N−1),  AP = mean_i AP_i,  AP^(S)_j = mean_{i∈S} A_ij
    iAPE_i = −Σ_{j≠i} p_ij log p_ij with p_ij from row i of A by the policy; APE = mean over defined rows
APE policies for rows with negative entries: "literal" (as written; undefined when any A_ij < 0), "shift"
(p ∝ A_ij − min_k A_ik, the default), "clamp" (p ∝ max(A_ij, 0)), "softmax" (p = softmax of the row).
"""
import math
import warnings
from dataclasses import dataclass, field, fields
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import _core

DEFAULT_APE_POLICY = "shift"
APE_POLICIES = ("literal", "shift", "clamp", "softmax")


@dataclass(frozen=True, eq=False, repr=False)
class APE(float):
    """Attention Proximity Entropy of a text (docs/measurements.md §6): a float, the mean iAPE over the rows where
    the policy defines one (NaN only when no row is defined, and then `undefined_rows` says so), with the details:

    value            the same number as a plain float
    normalized       length-corrected APE, mean of iAPE_i / log(N−1) (None when no row is defined)
    undefined_rows   how many rows the policy could not turn into a distribution
    tokens           iAPE_i per token (NaN exactly where undefined)
    defined          bool per token
    policy           the policy used

    A frozen dataclass and a float at once: it compares, formats and computes as its value (`float(ape)`,
    `ape < 2`, `f"{ape:.3f}"`, `math.isnan(ape)`), and copies, pickles and prints with its details.
    """

    value: float
    normalized: Optional[float] = None
    undefined_rows: int = 0
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0))
    defined: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    policy: str = DEFAULT_APE_POLICY

    def __new__(cls, value: Optional[float], *args, **kwargs):
        return super().__new__(cls, math.nan if value is None else value)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float.__float__(self))  # None (no row defined) is NaN, as the float is

    @classmethod
    def from_report(cls, report: dict) -> "APE":
        """An APE from the library's report: value (None when no row is defined), normalized, undefined_rows,
        tokens, defined, policy."""
        return cls(report["value"], report["normalized"], int(report["undefined_rows"]),
                   np.asarray(report["tokens"], dtype=np.float64), np.asarray(report["defined"], dtype=bool),
                   report["policy"])

    def __repr__(self) -> str:
        shown = "undefined" if math.isnan(self) else f"{float(self):.6g}"
        normalized = "None" if self.normalized is None else f"{self.normalized:.6g}"
        return (f"APE({shown}, normalized={normalized}, undefined_rows={self.undefined_rows}/{len(self.tokens)}, "
                f"policy={self.policy!r})")


@dataclass(frozen=True, eq=False)
class AttentionStats:
    """Statistics of attention weights (docs/measurements.md §8): entropy [N], normalized_entropy [N],
    mean_entropy, mean_normalized_entropy; max_weights [N] (each query's largest weight over the keys it sees) and
    argmax_keys [N] (that key, the first on ties); max_weight, the largest of max_weights over the queries that see
    at least two keys (a query that sees one gives it weight 1, as a causal model's first token does; over every
    query when none sees two), at (max_query, max_key); received [N] (the attention each token receives) and
    most_attended (its argmax). Two AttentionStats are equal when every field is."""

    entropy: np.ndarray
    normalized_entropy: np.ndarray
    mean_entropy: float
    mean_normalized_entropy: float
    max_weights: np.ndarray
    argmax_keys: np.ndarray
    max_weight: float
    max_query: int
    max_key: int
    received: np.ndarray
    most_attended: int

    def __eq__(self, other) -> bool:
        if not isinstance(other, AttentionStats):
            return NotImplemented
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name), equal_nan=True) for f in fields(self))

    __hash__ = None  # it holds arrays

    def __getitem__(self, name: str):
        """Deprecated: `stats["mean_entropy"]` is `stats.mean_entropy` (AttentionStats was a dict)."""
        warnings.warn("AttentionStats is no longer a dict: use attribute access (stats.mean_entropy)",
                      DeprecationWarning, stacklevel=2)
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def __repr__(self) -> str:
        return (f"AttentionStats(mean_entropy={self.mean_entropy:.4f}, mean_normalized_entropy="
                f"{self.mean_normalized_entropy:.4f}, max_weight={self.max_weight:.4f} at "
                f"({self.max_query}, {self.max_key}), most_attended={self.most_attended})")


def policy_name(policy: Optional[str]) -> str:
    if policy is None:
        return DEFAULT_APE_POLICY
    if policy not in APE_POLICIES:
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(f"APE policy {policy!r} is not one of {', '.join(APE_POLICIES)}")
    return policy


def _pick(queries, keys, proximity):
    if proximity is not None:
        if queries is not None or keys is not None:
            from .errors import InvalidArgumentError

            raise InvalidArgumentError("give queries and keys, or proximity, not both")
        return None
    if queries is None or keys is None:
        from .errors import InvalidArgumentError

        raise InvalidArgumentError("give queries [H, N, d] and keys [Hkv, N, d], or proximity [N, N]")
    return np.asarray(queries), np.asarray(keys)


def proximity(queries, keys) -> np.ndarray:
    """The proximity matrix A [N, N] (float64)."""
    return _core.metrics_proximity(np.asarray(queries), np.asarray(keys))


def ap_tokens(queries=None, keys=None, *, proximity=None) -> np.ndarray:
    """AP_i [N] from queries [H, N, d] and keys [Hkv, N, d] (O(N·H·d)), or from a proximity matrix."""
    qk = _pick(queries, keys, proximity)
    if qk is None:
        return _core.metrics_ap_tokens_of(np.asarray(proximity, dtype=np.float64))
    return _core.metrics_ap_tokens(*qk)


def ap(queries=None, keys=None, *, proximity=None) -> float:
    """AP = mean_i AP_i."""
    return float(np.mean(ap_tokens(queries, keys, proximity=proximity)))


def subset_proximity(indices: Sequence[int], queries=None, keys=None, *, proximity=None) -> np.ndarray:
    """AP^(S)_j for every token j [N]; `indices` is the set S (duplicates count once)."""
    qk = _pick(queries, keys, proximity)
    indices = [int(i) for i in indices]
    if qk is None:
        return _core.metrics_subset_proximity_of(np.asarray(proximity, dtype=np.float64), indices)
    return _core.metrics_subset_proximity(*qk, indices)


def ape(queries=None, keys=None, *, proximity=None, policy: Optional[str] = None) -> APE:
    """Attention Proximity Entropy (streamed over row tiles from queries and keys)."""
    qk = _pick(queries, keys, proximity)
    name = policy_name(policy)
    if qk is None:
        return APE.from_report(_core.metrics_ape_of(np.asarray(proximity, dtype=np.float64), name))
    return APE.from_report(_core.metrics_ape(*qk, name))


def attention_stats(weights, causal: bool = False, sliding_window: Optional[int] = None) -> AttentionStats:
    """Statistics of attention weights [N, Nk] (rows = queries): per-query entropy, raw and normalised by the log of
    the keys it can see (causal / sliding window as the model's attention), the largest weight, the attention each
    token receives and the most attended token."""
    return AttentionStats(**_core.metrics_attention_stats(np.asarray(weights, dtype=np.float64), causal,
                                                          sliding_window))


def top_arcs(weights, query: int, k: int = 5, causal: bool = False,
             sliding_window: Optional[int] = None) -> List[Tuple[int, float]]:
    """The k strongest (key, weight) arcs of a query's row over the keys it sees (causal / sliding window as the
    model's attention), strongest first; fewer than k when it sees fewer keys."""
    return _core.metrics_top_arcs(np.asarray(weights, dtype=np.float64), int(query), int(k), causal, sliding_window)


def rank_links(weights_list: Sequence, a: int, b: int) -> List[Tuple[int, float]]:
    """(index in weights_list, max(P[a, b], P[b, a])) for every weights matrix, strongest link first."""
    return _core.metrics_rank_links([np.asarray(w, dtype=np.float64) for w in weights_list], int(a), int(b))
