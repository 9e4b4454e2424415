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
    token_budget: int            # padded tokens of a windowed text's micro-batches of windows
    rope: bool = False           # the proximity family after RoPE (default: before, as the original code)


@dataclass(frozen=True)
class Batch:
    """Texts run together as one padded batch: (text id, text) pairs and their token counts; `windowed` for one text
    longer than the model's positions."""

    texts: Tuple[Tuple[str, str], ...]
    tokens: Tuple[int, ...]
    windowed: bool = False

    @property
    def ids(self) -> List[str]:
        return [ident for ident, _ in self.texts]

    @property
    def padded_tokens(self) -> int:
        return len(self.tokens) * max(self.tokens)


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
    """The rows of a batch: one per text and layer. A text that cannot be run gets rows holding the error."""
    import attnprox

    model = model_for(scoring)
    if batch.windowed:
        return [row for ident, text in batch.texts for row in _score_windowed(model, scoring, ident, text)]
    rows = []
    # The batch is one micro-batch (its padded size is its budget); a text that fails is run alone to name it. Only
    # the studied layers are kept, and the forward stops after the last of them where the file can.
    for index, outcome in model.stream(text=[text for _, text in batch.texts], token_budget=batch.padded_tokens,
                                       errors="yield", layers=list(scoring.layers)):
        ident = batch.texts[index][0]
        if isinstance(outcome, attnprox.Error):
            rows += _error_rows(scoring, ident, outcome)
        else:
            rows += _rows(scoring, ident, outcome, windows=1)
    return rows


def _score_windowed(model, scoring: Scoring, ident: str, text: str) -> List[dict]:
    import attnprox

    try:
        windowed = model.run_windows(text=text, window=scoring.window, stride=scoring.stride,
                                     token_budget=scoring.token_budget, layers=list(scoring.layers))
        length = len(model.encode(text).ids)
    except attnprox.Error as e:
        return _error_rows(scoring, ident, e)
    return _rows(scoring, ident, windowed, windows=len(windowed.windows), length=length)


def _rows(scoring: Scoring, ident: str, result, windows: int, length: Optional[int] = None) -> List[dict]:
    """length: the text's tokens as a plain run counts them (special tokens included); default len(result)."""
    import attnprox

    rows = []
    for layer in scoring.layers:
        try:
            rows.append(_measure(scoring, ident, result, layer, windows, len(result) if length is None else length))
        except attnprox.Error as e:
            rows += [r for r in _error_rows(scoring, ident, e) if r["layer"] == layer]
    return rows


def _measure(scoring: Scoring, ident: str, result, layer: int, windows: int, length: int) -> dict:
    ape = result.ape(layer, scoring.policy, rope=scoring.rope)
    entropy, normalized_entropy = _mean_entropies(result, layer)
    row = {"text_id": ident, "layer": layer, "n": length, "windows": windows,
           "ap": float(result.ap(layer, rope=scoring.rope)),
           "ape": None if math.isnan(ape) else float(ape), "ape_normalized": ape.normalized,
           "ape_undefined_rows": ape.undefined_rows, "mean_entropy": entropy,
           "mean_normalized_entropy": normalized_entropy, "error": None}
    if scoring.per_token:
        row["tokens"] = _token_labels(result)
        row["ap_tokens"] = [float(x) for x in result.ap_tokens(layer, rope=scoring.rope)]
        row["ape_tokens"] = [None if x != x else float(x) for x in ape.tokens]
    return row


def _mean_entropies(result, layer: int) -> Tuple[float, float]:
    """Mean attention entropy (raw and normalised) of a Result; of a windowed text, the mean over every query of
    every window (each window weighted by its length N_w, as `Windowed.ap()` weighs the windows' APs)."""
    windows = getattr(result, "windows", None)
    if windows is None:
        stats = result.attention_stats(layer)
        return float(stats.mean_entropy), float(stats.mean_normalized_entropy)
    total, total_normalized, count = 0.0, 0.0, 0
    for _, part in windows:
        stats = part.attention_stats(layer)
        total += float(stats.mean_entropy) * len(part)
        total_normalized += float(stats.mean_normalized_entropy) * len(part)
        count += len(part)
    return total / count, total_normalized / count


def _token_labels(result) -> Optional[List[str]]:
    """The piece of text each value of ap_tokens/ape_tokens belongs to: every token of a Result (special tokens
    included), the text tokens of a windowed text."""
    if hasattr(result, "windows"):
        return None if result.offsets is None else [result.text[a:b] for a, b in result.offsets]
    return result.token_texts


def _error_rows(scoring: Scoring, ident: str, error: Exception) -> List[dict]:
    message = f"{type(error).__name__}: {error}"
    return [dict({k: None for k in MEASURES}, text_id=ident, layer=layer, error=message) for layer in scoring.layers]


def batches_of(texts: Sequence[Tuple[str, str, int]], token_budget: int, max_positions: int) -> List[Batch]:
    """Deterministic batches of (id, text, tokens): sorted by length (then id), packed while the padded size
    (longest × count) stays within the token budget (a text longer than the budget alone); a text longer than the
    model's positions alone, windowed. The same texts always give the same batches, so that a resumed run computes
    every text as a run from the start does."""
    if isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget < 1:
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"token budget {token_budget!r}: expected a positive number of padded tokens")
    batches: List[Batch] = []
    current: List[Tuple[str, str, int]] = []

    def flush():
        if current:
            batches.append(Batch(tuple((i, t) for i, t, _ in current), tuple(c for _, _, c in current)))
            current.clear()

    for ident, text, count in sorted(texts, key=lambda t: (t[2], t[0])):
        if count > max_positions:
            batches.append(Batch(((ident, text),), (count,), windowed=True))
            continue
        # Ascending lengths: the text added is the batch's longest.
        if current and count * (len(current) + 1) > token_budget:
            flush()
        current.append((ident, text, count))
    flush()
    return batches
