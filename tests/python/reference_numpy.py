"""Brute-force NumPy float64 references of SPEC §2 and §3, written from the formulas, for the tests."""
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
