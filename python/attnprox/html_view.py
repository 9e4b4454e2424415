"""An interactive, self-contained HTML view of what attention sees in one text.

    from attnprox import html_view
    page = html_view.render_html(payload, title="gpt2 layer 11")
    open("view.html", "w", encoding="utf-8").write(page)     # works offline from file://
    IPython.display.HTML(page)                                # or inline in a notebook

`render_html` returns one complete document with its script and styles inline (assets/view.js and
assets/view.css beside this module): it loads nothing from the network or other files, and is pure ASCII. Shown
inline in Jupyter, the same string lives inside the notebook's page: everything hangs under one root element whose
id carries a random suffix, the styles are scoped to that root (class `apx-view`) and the script keeps its names in
a function scope. The script builds the first root of its id that is not built yet, so that the same string shown
twice makes two views. Without JavaScript (an untrusted notebook) the root says that the view needs it.

The payload (validated; a malformed one raises ValueError naming what is wrong):

    {"title": str,
     "tokens": [str] * N,                 display labels, one per token
     "proximity": [[float] * N] * N,      the symmetric proximity matrix A
     "ap_tokens": [float] * N,            AP_i
     "attention": [[float] * N] * N,      attention weights averaged over the heads; row i (query i) sums to 1
     "causal": bool,                      optional (default false): query i sees keys j <= i only
     "sliding_window": int | None,        optional: causal, i - j < W; bidirectional, |i - j| <= W
     "stats": {"tokens": int, "ap": float, "ape": float | None, "ape_normalized": float | None,
               "ape_undefined_rows": int, "mean_entropy": float, "mean_normalized_entropy": float,
               "max_weight": float, "max_query": int, "max_key": int, "most_attended": int,
               "layer": int, "temperature": float}}

The matrices and AP_i may be numpy arrays; NaN for "ape" or "ape_normalized" means undefined, like None.

What the view shows and how it reacts:

- The heatmap of A, coloured on a scale of its own: the bar beneath it, over A's entries, works as the text's
  scale described below does. Its row and column labels thin out to every k-th token so that they stay at least
  14 px apart; hovering a cell shows A[i, j]; clicking a cell or a label selects that row's token as a click in
  the text does.
- The text as a flow of token spans. Whitespace a token carries stays in place (a newline also breaks the line);
  newlines, tabs and control characters show as glyphs, and a token of spaces alone as dots, so that each token
  can be seen and clicked.
- Selection, a set S of token positions: a click selects that token alone (clicking it again when it is the
  only one selected clears S); shift-click selects the range from the anchor (the last token clicked without
  shift) to this one; ctrl-click or cmd-click adds or removes one token; the "clear" button empties S. Selected
  tokens are outlined, and so are their rows in the heatmap.
- Token colours: with S empty, each token's AP_i; otherwise AP^(S)_j = (1/|S|) sum_{i in S} A_ij, computed in
  the browser from A. Each token span carries its value in `data-value` and its tooltip.
- The colour scale of the text (the heatmap has its own): a bar with two handles, its min and max, and their
  values. Until a handle is moved the scale fits the range of the values shown and refits at every selection;
  dragging a handle (or pressing on the bar, or an arrow key on a focused handle) sets that end by hand,
  selections then keep the range, and values beyond it take the end colours (how many is shown). "reset" fits
  the range again.
- The top 5 attention arcs ("key token - weight", largest first, ties by position) of the focused token, the
  most recently added token of S, to the keys it sees ("causal", "sliding_window"): fewer when it sees fewer.
  Hovering an arc outlines its key token in the text.
- The statistics of the payload: tokens, AP, APE (or "undefined", with the number of undefined rows),
  length-corrected APE, mean attention entropy and its normalised form, the largest weight with its query and
  key, the most attended token, the layer and the temperature.

The numbers shown are in the DOM for tests and scrapers, under `data-testid` attributes: token-<j> (with
data-value), selection-count, selected-tokens (data-indices), clear-selection, colour-quantity, arcs-query,
arc-<rank> (data-key, data-weight), heatmap, heatmap-hover, row-label-<i>, col-label-<i>, view-title; for the
text's scale scale-min and scale-max (data-value), scale-handle-min, scale-handle-max, scale-track,
scale-mode, scale-clamped, scale-reset, and the same under heatmap-scale-* for the heatmap's; stat-tokens,
stat-ap, stat-ape, stat-ape-normalized, stat-entropy, stat-entropy-normalized, stat-max-weight,
stat-most-attended, stat-layer, stat-temperature (each with data-value). The root gets data-ready="true" once
the view is built.

Only the standard library and numpy: this module imports nothing from attnprox.
"""
import html
import json
import math
import numbers
import os
import string
import uuid
from typing import Any, Mapping

import numpy as np

_ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")

_PAGE = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
</head>
<body>
<div class="apx-view" id="${root_id}">
<style>
${css}
</style>
<div class="apx-nojs">This interactive attnprox view needs JavaScript (in Jupyter: trust the notebook).</div>
</div>
<script>
(function () {
${js}
const root = document.querySelector("#${root_id}:not([data-ready])");
if (root) attnproxView(root, ${data});
})();
</script>
</body>
</html>
""")

_INT_STATS = ("tokens", "ape_undefined_rows", "max_query", "max_key", "most_attended", "layer")
_FLOAT_STATS = ("ap", "mean_entropy", "mean_normalized_entropy", "max_weight", "temperature")
_OPTIONAL_FLOAT_STATS = ("ape", "ape_normalized")
_TOKEN_STATS = ("max_query", "max_key", "most_attended")  # positions in the text
_SYMMETRY_TOLERANCE = 1e-6  # relative to the largest |A_ij|
_ROW_SUM_TOLERANCE = 1e-3   # attention rows may come from float16 or float32


def render_html(payload: Mapping[str, Any], title: str = "attnprox") -> str:
    """A complete, self-contained HTML document (str) showing `payload` (see the module's docstring) under the
    document title `title`. Raises ValueError when the payload is malformed."""
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    data = _validated(payload)
    return _PAGE.substitute(
        title=_ascii_html(title),
        root_id=f"apx-{uuid.uuid4().hex[:12]}",
        css=_asset("view.css"),
        js=_asset("view.js"),
        data=_script_json(data),
    )


def _asset(name: str) -> str:
    path = os.path.join(_ASSETS, name)
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"the HTML view's asset {path} is missing: the attnprox package must ship its "
                                f"assets/ folder beside html_view.py") from None


def _ascii_html(text: str) -> str:
    """text escaped for HTML, with non-ASCII characters as character references."""
    return html.escape(text).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _script_json(data: dict) -> str:
    """data as a JSON (and JavaScript) literal that is safe inside <script>: ASCII, and without <, > or &, so
    that no "</script>" or "<!--" can appear in it."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _validated(payload: Any) -> dict:
    """The payload as plain JSON values (lists of floats for the matrices), after checking every field."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a dict, got {type(payload).__name__}")
    missing = [key for key in ("title", "tokens", "proximity", "ap_tokens", "attention", "stats") if key not in payload]
    if missing:
        raise ValueError(f"payload is missing {', '.join(repr(key) for key in missing)}")
    if not isinstance(payload["title"], str):
        raise ValueError(f"payload['title'] must be a str, got {type(payload['title']).__name__}")

    tokens = payload["tokens"]
    if not isinstance(tokens, (list, tuple)) or not tokens:
        raise ValueError("payload['tokens'] must be a non-empty list of str")
    for j, token in enumerate(tokens):
        if not isinstance(token, str):
            raise ValueError(f"payload['tokens'][{j}] must be a str, got {type(token).__name__}")
    n = len(tokens)

    proximity = _numbers("proximity", payload["proximity"], (n, n))
    scale = max(1.0, float(np.abs(proximity).max()))
    asymmetry = float(np.abs(proximity - proximity.T).max())
    if asymmetry > _SYMMETRY_TOLERANCE * scale:
        raise ValueError(f"payload['proximity'] must be symmetric: |A - A^T| reaches {asymmetry:.3g}")

    attention = _numbers("attention", payload["attention"], (n, n))
    if attention.min() < 0:
        raise ValueError(f"payload['attention'] has a negative weight ({attention.min():.3g})")
    row_sums = attention.sum(axis=1)
    worst = int(np.argmax(np.abs(row_sums - 1.0)))
    if abs(row_sums[worst] - 1.0) > _ROW_SUM_TOLERANCE:
        raise ValueError(f"payload['attention'] rows must sum to 1 (rows are queries): row {worst} sums to "
                         f"{row_sums[worst]:.6g}")

    causal = payload.get("causal", False)
    if not isinstance(causal, bool):
        raise ValueError(f"payload['causal'] must be true or false, got {causal!r}")
    window = payload.get("sliding_window")
    if window is not None and (not isinstance(window, numbers.Integral) or isinstance(window, bool) or window < 1):
        raise ValueError(f"payload['sliding_window'] must be a positive int or None, got {window!r}")
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    if causal:
        hidden = (j > i) | ((i - j >= window) if window else False)
    else:
        hidden = (np.abs(i - j) > window) if window else np.zeros((n, n), bool)
    if (attention[hidden] != 0).any():
        q, k = np.argwhere(hidden & (attention != 0))[0]
        raise ValueError(f"payload['attention'] gives query {q} weight on key {k}, which it cannot see")

    ap_tokens = _numbers("ap_tokens", payload["ap_tokens"], (n,))
    return {
        "title": payload["title"],
        "tokens": list(tokens),
        "proximity": proximity.tolist(),
        "ap_tokens": ap_tokens.tolist(),
        "attention": attention.tolist(),
        "causal": causal,
        "sliding_window": None if window is None else int(window),
        "stats": _validated_stats(payload["stats"], n),
    }


def _numbers(name: str, value: Any, shape: tuple) -> np.ndarray:
    """value as a finite float64 array of the given shape (ints and floats only: no bools, strings or None)."""
    what = "an N x N matrix" if len(shape) == 2 else "a list of N"
    try:
        array = np.asarray(value)
    except ValueError as e:  # ragged nesting
        raise ValueError(f"payload[{name!r}] must be {what} numbers (N = {shape[0]}): {e}") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"payload[{name!r}] must be {what} numbers (N = {shape[0]}), found {array.dtype} values")
    if array.shape != shape:
        raise ValueError(f"payload[{name!r}] must have shape {shape} (N = {shape[0]} tokens), found {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"payload[{name!r}] has a value that is not finite (NaN or infinite)")
    return array


def _validated_stats(stats: Any, n: int) -> dict:
    if not isinstance(stats, Mapping):
        raise ValueError(f"payload['stats'] must be a dict, got {type(stats).__name__}")
    missing = [key for key in _INT_STATS + _FLOAT_STATS + _OPTIONAL_FLOAT_STATS if key not in stats]
    if missing:
        raise ValueError(f"payload['stats'] is missing {', '.join(repr(key) for key in missing)}")
    out = {}
    for key in _INT_STATS:
        value = stats[key]
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ValueError(f"payload['stats'][{key!r}] must be an int, got {value!r}")
        out[key] = int(value)
    for key in _FLOAT_STATS + _OPTIONAL_FLOAT_STATS:
        value = stats[key]
        if value is None and key in _OPTIONAL_FLOAT_STATS:
            out[key] = None
            continue
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(f"payload['stats'][{key!r}] must be a number, got {value!r}")
        value = float(value)
        if math.isnan(value) and key in _OPTIONAL_FLOAT_STATS:
            out[key] = None  # undefined
        elif not math.isfinite(value):
            raise ValueError(f"payload['stats'][{key!r}] must be finite, got {value!r}")
        else:
            out[key] = value
    if out["tokens"] != n:
        raise ValueError(f"payload['stats']['tokens'] is {out['tokens']} but there are {n} tokens")
    if not 0 <= out["ape_undefined_rows"] <= n:
        raise ValueError(f"payload['stats']['ape_undefined_rows'] must be in 0..{n}, got {out['ape_undefined_rows']}")
    for key in _TOKEN_STATS:
        if not 0 <= out[key] < n:
            raise ValueError(f"payload['stats'][{key!r}] must be a token position in 0..{n - 1}, got {out[key]}")
    return out
