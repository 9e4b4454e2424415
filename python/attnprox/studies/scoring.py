"""Scoring a batch of texts into rows: the work one task does, in a Dask worker or in the planning process.

Each process loads the model once (`model_for`, a process-wide cache; `worker_plugin.ModelPlugin` loads it when a
Dask worker starts) and keeps it for every batch it is given. A batch is texts of similar length run as one padded
batch; a text longer than the model's positions is a batch of its own, run in windows (`Model.run_windows`, the
documented long-text strategy). Per text and layer a row holds:

    n                       tokens of the text
    windows                 how many windows it ran in (1: the whole text at once)
    ap                      Attention Proximity, mean_i AP_i
    ape, ape_normalized     Attention Proximity Entropy under the policy, and its length correction
                            mean_i iAPE_i / log(N−1); ape_undefined_rows rows the policy could not define
    mean_entropy            mean over queries of the entropy of the layer's head-averaged attention (nats),
    mean_normalized_entropy and of the same divided by log(keys the query sees)
    error                   why the text could not be scored (then every measurement is None)
"""
import math
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

MEASURES = ("n", "windows", "ap", "ape", "ape_normalized", "ape_undefined_rows", "mean_entropy",
            "mean_normalized_entropy")


@dataclass(frozen=True)
class Scoring:
    """How every text of a run is scored (the same in every process)."""

    model_path: str
    device: str
    dtype: Optional[str]
    threads: int                 # libtorch intra-op threads of a process that loads the model (0: its default)
    layers: Tuple[int, ...]      # the model's own layer numbers
    policy: str
    per_token: bool
    window: Optional[int]        # run_windows' window and stride (None: its defaults)
    stride: Optional[int]


@dataclass(frozen=True)
class Batch:
    """Texts run together: (text id, text) pairs; `windowed` for one text longer than the model's positions."""

    texts: Tuple[Tuple[str, str], ...]
    windowed: bool = False

    @property
    def ids(self) -> List[str]:
        return [ident for ident, _ in self.texts]


_models: Dict[tuple, object] = {}
_models_lock = threading.Lock()


def model_for(scoring: Scoring):
    """The process's model for this scoring, loaded on first use."""
    import attnprox

    key = (scoring.model_path, scoring.device, scoring.dtype, scoring.threads)
    with _models_lock:
        if key not in _models:
            _models[key] = attnprox.load(scoring.model_path, device=scoring.device, dtype=scoring.dtype,
                                         threads=scoring.threads)
        return _models[key]


def score_batch(scoring: Scoring, batch: Batch) -> List[dict]:
    """The rows of a batch: one per text and layer, in the batch's order."""
    import attnprox

    model = model_for(scoring)
    if batch.windowed:
        return [row for ident, text in batch.texts for row in _score_windowed(model, scoring, ident, text)]
    texts = [text for _, text in batch.texts]
    try:
        results = model.run(text=texts)
    except attnprox.Error as e:
        if len(texts) == 1:
            return _error_rows(scoring, batch.texts[0][0], e)
        # One text spoils the batch: each alone, so that only that one gets an error.
        return [row for pair in batch.texts for row in score_batch(scoring, Batch((pair,)))]
    rows = []
    for (ident, _), result in zip(batch.texts, results):
        rows += _rows(scoring, ident, result, windows=1)
    return rows


def _score_windowed(model, scoring: Scoring, ident: str, text: str) -> List[dict]:
    import attnprox

    try:
        windowed = model.run_windows(text=text, window=scoring.window, stride=scoring.stride)
    except attnprox.Error as e:
        return _error_rows(scoring, ident, e)
    return _rows(scoring, ident, windowed, windows=len(windowed.windows))


def _rows(scoring: Scoring, ident: str, result, windows: int) -> List[dict]:
    import attnprox

    rows = []
    for layer in scoring.layers:
        try:
            rows.append(_measure(scoring, ident, result, layer, windows))
        except attnprox.Error as e:
            rows += [r for r in _error_rows(scoring, ident, e) if r["layer"] == layer]
    return rows


def _measure(scoring: Scoring, ident: str, result, layer: int, windows: int) -> dict:
    ape = result.ape(layer, scoring.policy)
    entropy, normalized_entropy = _mean_entropies(result, layer)
    row = {"text_id": ident, "layer": layer, "n": _length(result), "windows": windows, "ap": float(result.ap(layer)),
           "ape": None if math.isnan(ape) else float(ape), "ape_normalized": ape.normalized,
           "ape_undefined_rows": ape.undefined_rows, "mean_entropy": entropy,
           "mean_normalized_entropy": normalized_entropy, "error": None}
    if scoring.per_token:
        row["tokens"] = _token_labels(result)
        row["ap_tokens"] = [float(x) for x in result.ap_tokens(layer)]
        row["ape_tokens"] = [None if x != x else float(x) for x in ape.tokens]
    return row


def _length(result) -> int:
    n = getattr(result, "n", None)
    return int(n) if n is not None else len(result)


def _mean_entropies(result, layer: int) -> Tuple[float, float]:
    """Mean attention entropy (raw and normalised) of a Result; of a windowed run, the mean over its windows'
    queries (every query of every window counts once)."""
    parts = getattr(result, "windows", None)
    if parts is None:
        stats = result.attention_stats(layer)
        return float(stats.mean_entropy), float(stats.mean_normalized_entropy)
    total, total_normalized, count = 0.0, 0.0, 0
    for part in parts:
        stats = part.attention_stats(layer)
        total += float(stats.mean_entropy) * len(part)
        total_normalized += float(stats.mean_normalized_entropy) * len(part)
        count += len(part)
    return total / count, total_normalized / count


def _token_labels(result) -> Optional[List[str]]:
    labels = getattr(result, "token_texts", None)
    if labels is None and hasattr(result, "windows"):
        labels = getattr(result, "tokens", None)
    return None if labels is None else list(labels)


def _error_rows(scoring: Scoring, ident: str, error: Exception) -> List[dict]:
    message = f"{type(error).__name__}: {error}"
    return [dict({k: None for k in MEASURES}, text_id=ident, layer=layer, error=message) for layer in scoring.layers]


def batches_of(texts: Sequence[Tuple[str, str, int]], token_budget: int, max_positions: int) -> List[Batch]:
    """Deterministic batches of (id, text, tokens): sorted by length (then id), packed while the padded size
    (longest × count) stays within the token budget; a text longer than the model's positions alone, windowed.
    The same texts always give the same batches, so that a resumed run computes every text as a run from the
    start does."""
    if token_budget < 1:
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"token budget {token_budget}: expected a positive number of tokens")
    batches: List[Batch] = []
    current: List[Tuple[str, str]] = []
    longest = 0
    for ident, text, count in sorted(texts, key=lambda t: (t[2], t[0])):
        if count > max_positions:
            batches.append(Batch(((ident, text),), windowed=True))
            continue
        if current and max(longest, count) * (len(current) + 1) > token_budget:
            batches.append(Batch(tuple(current)))
            current, longest = [], 0
        current.append((ident, text))
        longest = max(longest, count)
    if current:
        batches.append(Batch(tuple(current)))
    return batches
