"""Texts longer than a model's positions, read in overlapping windows: `Model.run_windows` and `Windowed`.

The text is tokenized once (n tokens, without special tokens). Window w covers the text's tokens [s_w, e_w): each
window holds at most C = window − (special tokens) text tokens, window w + 1 starts `stride` tokens after window
w, and the last one ends at the text's end. Each window runs as its own sequence, with the model's special tokens
around it as around a text, so each has its own Result (N_w = e_w − s_w + its special tokens) and its own AP_i.
The text's measurements gather them (docs/long-texts.md says why these):

    ap_tokens()_t  = mean over the windows w that contain token t of AP_i^(w) at t's position in w
    ap()           = Σ_w N_w · AP^(w) / Σ_w N_w        (every position of every window counts once; one window
                                                       covering the text gives exactly run(text).ap())
    ape_tokens()_t = mean over the windows containing t where iAPE_i^(w) is defined (NaN where none is)
    ape()          = mean of iAPE_i^(w) over every defined position of every window (as ap()), an `APE` whose
                     `.normalized` is the same mean of iAPE_i^(w) / log(N_w − 1), `.tokens` ape_tokens(),
                     `.undefined_rows` the text tokens undefined in every window that holds them
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from .errors import InvalidArgumentError
from .metrics import APE, policy_name


def added_around(sequence_ids: Sequence[int]) -> Tuple[int, int]:
    """How many tokens at the start and at the end of an encoding were added around the text (sequence id -1)."""
    added = [s < 0 for s in sequence_ids]
    before = 0
    while before < len(added) and added[before]:
        before += 1
    after = 0
    while after < len(added) - before and added[len(added) - 1 - after]:
        after += 1
    return before, after


def window_spans(n: int, span: int, stride: int) -> List[Tuple[int, int]]:
    """[start, end) of windows of at most `span` tokens over n tokens, starting every `stride` tokens, the last
    ending at n."""
    if n <= span:
        return [(0, n)]
    starts = list(range(0, n - span + 1, stride))
    if starts[-1] + span < n:
        starts.append(n - span)
    return [(s, s + span) for s in starts]


class Windowed:
    """A long text read in overlapping windows (see the module's docstring for the definitions).

    windows   list of ((start, end), Result): each window's token range in the whole text and its Result
    n         tokens of the whole text (special tokens not counted)
    ids       the whole text's token ids; tokens, offsets: its tokens and (start, end) characters (text only)
    text      the text (None when ids were given)
    """

    def __init__(self, windows, ids: List[int], before: int, text: Optional[str] = None, tokens=None, offsets=None):
        self.windows: List[Tuple[Tuple[int, int], object]] = windows
        self.ids = ids
        self.n = len(ids)
        self.text = text
        self.tokens = tokens
        self.offsets = offsets
        self._before = before  # special tokens before the text in each window

    def __len__(self) -> int:
        return self.n

    def _gather(self, per_window) -> Tuple[np.ndarray, np.ndarray]:
        """(sum, count) over windows per text token of the window's per-position values (NaN skipped)."""
        total = np.zeros(self.n)
        count = np.zeros(self.n)
        for (start, end), values in per_window:
            part = np.asarray(values, dtype=np.float64)[self._before:self._before + end - start]
            defined = np.isfinite(part)
            total[start:end] += np.where(defined, part, 0.0)
            count[start:end] += defined
        return total, count

    def ap_tokens(self, layer: int = -1, rope: bool = False) -> np.ndarray:
        """AP_i of every token of the text [n]: the mean of its AP_i over the windows that contain it."""
        total, count = self._gather(((span, r.ap_tokens(layer, rope=rope)) for span, r in self.windows))
        return total / count

    def ap(self, layer: int = -1, rope: bool = False) -> float:
        """The text's AP: the windows' AP weighted by their lengths N_w, Σ_w N_w·AP^(w) / Σ_w N_w."""
        weighted = sum(len(r) * r.ap(layer, rope=rope) for _, r in self.windows)
        return float(weighted / sum(len(r) for _, r in self.windows))

    def ape(self, layer: int = -1, policy: Optional[str] = None, rope: bool = False) -> APE:
        """The text's APE: the mean of iAPE_i over every defined position of every window; `.normalized` the mean
        of iAPE_i / log(N_w − 1); `.tokens` ape_tokens(); `.undefined_rows` the text tokens with no defined value."""
        name = policy_name(policy)
        per_window, value_sum, normalized_sum, defined_rows = [], 0.0, 0.0, 0
        for span, r in self.windows:
            report = r.ape(layer, name, rope=rope)
            per_window.append((span, report.tokens))
            rows = int(report.defined.sum())
            if rows:  # the window's APE and normalized APE are means over its defined rows
                value_sum += rows * float(report)
                normalized_sum += rows * report.normalized
                defined_rows += rows
        total, count = self._gather(per_window)
        with np.errstate(invalid="ignore", divide="ignore"):
            tokens = total / count
        return APE(value_sum / defined_rows if defined_rows else None,
                   normalized=normalized_sum / defined_rows if defined_rows else None,
                   undefined_rows=int((count == 0).sum()), tokens=tokens, defined=count > 0, policy=name)

    def ape_tokens(self, layer: int = -1, policy: Optional[str] = None, rope: bool = False) -> np.ndarray:
        """iAPE_i of every token of the text [n]: the mean over the windows where it is defined (NaN where none)."""
        return self.ape(layer, policy, rope=rope).tokens

    def __repr__(self) -> str:
        return f"<attnprox.Windowed {self.n} tokens in {len(self.windows)} windows>"


def run_windows(model, text: Optional[str] = None, ids=None, window: Optional[int] = None,
                stride: Optional[int] = None, add_special_tokens: bool = True,
                token_budget: Optional[int] = None, layers=None) -> Windowed:
    """Model.run_windows (see there)."""
    from .model import _as_ids, _utf8_text

    if (text is None) == (ids is None):
        raise InvalidArgumentError("give exactly one of text= or ids=")
    chosen = model._run_layers(layers)
    if text is not None and not isinstance(text, str):
        raise InvalidArgumentError(f"run_windows reads one text (a str), found {type(text).__name__}")
    window = model.max_positions if window is None else _positive(window, "window")
    if window > model.max_positions:
        raise InvalidArgumentError(f"window {window} is longer than the model's {model.max_positions} positions")
    if text is not None:
        whole = model.encode(text, add_special_tokens=add_special_tokens)
        before, after = added_around(whole.sequence_ids)
        size = len(whole.ids)
        keep = range(before, size - after)
        fields = [list(getattr(whole, name)) for name in ("ids", "tokens", "offsets", "char_offsets", "special",
                                                          "type_ids", "sequence_ids")]
        head = [f[:before] for f in fields]
        tail = [f[size - after:] for f in fields]
        body = [[f[i] for i in keep] for f in fields]
    else:
        body = [_as_ids(ids, "ids")]
        before = after = 0
    n = len(body[0])
    span = window - before - after
    if span < 1:
        raise InvalidArgumentError(f"window {window} leaves no room for the text: the model adds {before + after} "
                                   f"special tokens around it")
    stride = max(1, span // 2) if stride is None else _positive(stride, "stride")
    if stride > span:
        raise InvalidArgumentError(f"stride {stride} is longer than a window's {span} text tokens: tokens between "
                                   f"windows would be skipped")
    spans = window_spans(n, span, stride)
    if text is not None:
        encodings = [_core.Encoding(*(h + b[s:e] + t for h, b, t in zip(head, body, tail))) for s, e in spans]
        inputs = [(text, list(enc.ids), enc, None) for enc in encodings]
        tokens, offsets = body[1], [tuple(o) for o in body[3]]
        _utf8_text(text)
    else:
        inputs = [(None, body[0][s:e], None, None) for s, e in spans]
        tokens = offsets = None
    results: List[object] = [None] * len(spans)
    from .batching import default_token_budget, micro_batches

    budget = default_token_budget(model.device) if token_budget is None else token_budget
    for batch in micro_batches([len(p[1]) for p in inputs], budget):
        for k, result in zip(batch, model._run_prepared([inputs[k] for k in batch], chosen)):
            results[k] = result
    return Windowed(list(zip(spans, results)), list(body[0]), before, text=text, tokens=tokens, offsets=offsets)


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive number of tokens, found {value!r}")
    return int(value)
