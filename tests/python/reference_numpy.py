"""Brute-force NumPy float64 references of docs/measurements.md, written from the formulas, for the tests."""
import numpy as np


def attention(q, k, scaling, causal, window=None, softcap=None, sinks=None, temperature=1.0):
    """P_h = softmax(softcap(scaling · Q_h K_{g(h)}ᵀ) / T + M) with sinks as an extra, dropped column."""
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    heads, n, _ = q.shape
    k = np.repeat(k, heads // k.shape[0], axis=0)
    logits = scaling * q @ k.transpose(0, 2, 1)
    if softcap:
        logits = softcap * np.tanh(logits / softcap)
    logits = logits / temperature
    i, j = np.arange(n)[:, None], np.arange(k.shape[1])[None, :]
    visible = np.ones(logits.shape[1:], bool)
    if causal:
        visible = j <= i
        if window:
            visible &= (i - j) < window
    elif window:
        visible = np.abs(i - j) <= window
    logits = np.where(visible, logits, -np.inf)
    if sinks is not None:
        column = np.broadcast_to(np.asarray(sinks, np.float64)[:, None, None] / temperature, (heads, n, 1))
        logits = np.concatenate([logits, column], axis=-1)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return p[..., :k.shape[1]]


def proximity(q, k):
    """A = (A_raw + A_rawᵀ)/2, A_raw = (1/H) Σ_h Q_h K_{g(h)}ᵀ / sqrt(d)."""
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    heads, _, d = q.shape
    k = np.repeat(k, heads // k.shape[0], axis=0)
    raw = (q @ k.transpose(0, 2, 1)).mean(0) / np.sqrt(d)
    return (raw + raw.T) / 2


def ap_tokens(q, k):
    a = proximity(q, k)
    n = a.shape[0]
    return (a.sum(1) - np.diag(a)) / (n - 1)


def subset_proximity(q, k, subset):
    a = proximity(q, k)
    s = sorted(set(subset))
    return a[s].mean(0)


def ape_rows(a, policy):
    """iAPE_i per row of A (NaN where undefined) under a policy, row by row from the definitions."""
    n = a.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        x = np.delete(a[i], i).astype(np.float64)
        if policy == "literal":
            if (x < 0).any():
                continue
            w = x
        elif policy == "shift":  # the original code's: offsets 1e-8 and 1e-10 (docs/measurements.md §6)
            w = x - x.min() + 1e-8
            total = w.sum()
            if np.isfinite(total) and total > 0:
                p = w / total
                out[i] = -(p * np.log(p + 1e-10)).sum()
            continue
        elif policy == "clamp":
            w = np.maximum(x, 0.0)
        elif policy == "softmax":
            w = np.exp(x - x.max())
        else:
            raise ValueError(policy)
        total = w.sum()
        if not total > 0:
            continue
        p = w / total
        nz = p[p > 0]
        out[i] = -(nz * np.log(nz)).sum()
    return out


def ape(a, policy):
    """(APE over defined rows or None, normalized or None, undefined count, per-row values)."""
    rows = ape_rows(a, policy)
    defined = ~np.isnan(rows)
    n = a.shape[0]
    if not defined.any():
        return None, None, int(n), rows
    value = rows[defined].mean()
    normalized = value / np.log(n - 1) if n > 2 else 0.0
    return value, normalized, int((~defined).sum()), rows


def visible_keys(n, causal, window=None):
    i = np.arange(n)
    first, last = np.zeros(n, int), np.full(n, n - 1)
    if causal:
        last = np.minimum(last, i)
        if window:
            first = np.maximum(0, i - window + 1)
    elif window:
        first, last = np.maximum(0, i - window), np.minimum(n - 1, i + window)
    return last - first + 1


def entropy_rows(p):
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(-1)
