"""An interactive, self-contained HTML view of what attention sees in one text, or in two side by side.

    from attnprox import html_view
    page = html_view.render_html(payload, title="gpt2 layer 11")
    open("view.html", "w", encoding="utf-8").write(page)     # works offline from file://
    IPython.display.HTML(page)                                # or inline in a notebook

`render_html` returns one complete document with its script and styles inline (the files of assets/ beside this
module): it loads nothing from the network or other files, and is pure ASCII. Shown inline in Jupyter, the same
string lives inside the notebook's page: everything hangs under one root element whose id carries a random suffix,
the styles are scoped to that root (class `apx-view`) and the script keeps its names in a function scope. The script
builds the first root of its id that is not built yet, so that the same string shown twice makes two views. Without
JavaScript (an untrusted notebook) the root says that the view needs it. `attnprox.Result.view()` and
`attnprox.compare()` build the payload from model runs; this module imports nothing from attnprox.

The payload (validated; a malformed one raises ValueError naming what is wrong) is one panel, or two to compare:

    {"title": str, "panels": [panel] or [panel, panel], "state": page_state}      or a panel alone

    panel = {
     "title": str,
     "tokens": [str] * N,                 display labels, one per token
     "text": str,                         optional: the text the tokens come from (else their labels joined)
     "offsets": [[start, end]] * N,       with "text": each token's characters text[start:end], indices of the
                                          Python str; end <= start for a token not in the text (special tokens)
     "ids": [int] * N, "model": str,      optional, passed on to the export
     "temperature": float,                optional (default 1): the softmax temperature of the attention weights
     "policy": str,                       optional (default "shift"): APE's policy, literal/shift/clamp/softmax
     "layers": [layer, ...],              one per layer the view can show, each of one of two forms:
        queries and keys (every head):    {"layer": int, "queries": [H, N, d], "keys": [Hkv, N, d],
                                           "scaling": float, "causal": bool, "sliding_window": int | None,
                                           "softcap": float | None, "sinks": [float] * H | None,
                                           "rope": {...} | None}  (optional: queries and keys are given before
                                           the rotary embedding "rope" of docs/model-file.md, which the page
                                           applies for the attention; the proximity maps use them as given)
        ready-made matrices:              {"layer": int, "proximity": [N, N] symmetric, "attention": [N, N]
                                           (mean of the heads; row i, query i, sums to 1), "causal", "sliding_window"}
        and in both, optionally "ap_tokens": [N] (AP_i) and "ape_tokens": [N] (iAPE_i, NaN where undefined), the
        layer's own values; without them the page computes them from the layer's proximity matrix.
     "stats": {...},                      optional: the statistics panel (keys below)
     "state": {"layer": int | "mean", "head": int | "mean", "selection": [int]},   optional: the first view
     "encoding": "float32" | "float16" | "uint8",   optional: how to store the arrays (default: chosen by size)
     "omitted_layers": [int],             optional: layers the producer left out for size, named in the page
    }
    page_state = {"kind": "proximity" | "attention", "measure": "ap" | "ape", "scheme": "viridis" |
                  "blue-white-red", "heatmap_scaling": "linear" | "log" | "percentile" | None}
    stats = {"tokens": int, "ap": float, "ape": float | None, "ape_normalized": float | None,
             "ape_undefined_rows": int, "mean_entropy": float, "mean_normalized_entropy": float,
             "max_weight": float, "max_query": int, "max_key": int, "most_attended": int, "layer": int,
             "temperature": float}

The form of earlier versions, one layer's matrices at the top level ({"title", "tokens", "proximity", "ap_tokens",
"attention", "causal", "sliding_window", "stats"}), is read as a panel with one layer. Arrays may be numpy arrays;
NaN for "ape" or "ape_normalized" means undefined, like None.

What the page embeds, and how (the size of a long text's page): every array is stored as base64 of little-endian
float32, of float16 times a power-of-two scale (relative error at most 2^-11 = 4.9e-4, as float16 rounds), or of
uint8 codes offset + q * scale (absolute error at most scale / 2); each array carries the largest error its values
actually have ("max_error", measured here by decoding what was written). The encoding is the most precise one whose
arrays fit in `max_bytes` (8 MB by default): float32, then float16, then (for ready-made matrices) uint8. Queries and
keys cost (H + Hkv) * d values per token and layer, and no N x N map is embedded for them: the page computes each
map it shows from them (the proximity matrix of a layer, a head, or the mean of layers, N^2 * Hkv * d products; the
attention weights of one head, N^2 * d, with the layer's mask, soft-cap, sinks and temperature), so that every
layer and head stays available at O(N) size. Where even float16 queries and keys of every layer do not fit, the
layers are dropped from the first one up (a panel's first view's layer is always kept), and the page names them.

What the view shows and how it reacts (the numbers are in the DOM under data-testid attributes, listed below):

- Page controls: the matrix shown, proximity A or attention weights P ("kind"); what colours the text when nothing
  is selected, AP_i or iAPE_i ("measure"); the colour scheme, viridis or blue-white-red ("scheme"); and "export",
  which downloads what is shown as JSON (attnprox.view's export(): text, tokens, character spans, per-token AP and
  APE, scalar AP and APE, the matrix shown, the model, the measure, the layer and head, the selection).
- Per panel: a layer selector (each layer, or the mean of the layers) and a head selector (each head, or the mean
  of the heads; ready-made matrices have the mean only). The heatmap shows the chosen matrix, and the text the
  proximity values of the same choice: AP_i or iAPE_i, or with a selection S, AP^(S)_j = (1/|S|) sum_{i in S} A_ij.
- The text as it was written: each token's characters where they stand in the text, the gaps between them (spaces,
  line breaks) as they are, a token never split across lines; line breaks inside a token show as a glyph, special
  tokens that are not in the text as small chips.
- Selection: a click selects that token alone (clicking it again when it is the only one selected clears S);
  shift-click selects the range from the anchor (the last token clicked without shift); ctrl- or cmd-click adds or
  removes one token; a double-click selects the whole word under the pointer (letters, digits and the apostrophes
  and hyphens inside a word; punctuation runs are words of their own), ctrl-double-click adds it; "clear" empties S;
  ctrl/cmd+Z undoes the last change of the selection (of the panel changed last). Selected tokens are outlined,
  left uncoloured and out of the colour range and histogram (their AP^(S) holds their proximity to themselves).
- The text's colour scale: a 100-bin histogram of the values shown over the scale's range (hovering a bin outlines
  its tokens, hovering a token marks its bin) above a bar with two handles, its min and max. Until a handle is moved
  the scale fits the range of the values shown (in a comparison, of both texts: one range for both) and refits at
  every change; dragging a handle (or pressing on the bar, or an arrow key on a focused handle) sets that end by
  hand, which then stays until "reset"; values beyond it take the end colours (how many is shown).
- The heatmap on a canvas (drawn smoothed when it has more entries than pixels), labels thinned out to 14 px apart;
  hovering a cell shows its value; clicking a cell or a label selects that row's token. Its own colour scale works
  as the text's, with a choice of scaling for skewed maps: linear, log (of the value above the map's minimum, plus
  1e-4 of its range) or percentile (each value's rank among the map's entries); attention starts on log.
- A head view beside it (as bertviz draws one): the tokens in two columns, lines from the focused token (the one
  selected last) to the keys it sees, each line's opacity its weight over the row's largest; without a focus and
  for texts of at most 64 tokens, every query's lines. The top 5 attention arcs of the focused token are listed.
- The statistics of the payload ("stats") and pills with N and the AP and APE of the choice shown.

Test ids: view-title, kind, measure, scheme, export, status; per panel (each under panel-<k> in a comparison):
layer, head, token-<j> (data-value, data-index), selection-count, selected-tokens (data-indices), clear-selection,
colour-quantity, histogram (data-lo, data-hi), hist-bin-<k> (data-count), heatmap (data-kind, data-layer,
data-head), heatmap-hover, row-label-<i>, col-label-<i>, head-view (data-query, data-lines, data-max-weight),
arcs-query, arc-<rank> (data-key, data-weight), pill-ap, pill-ape (data-value), stat-tokens, stat-ap, stat-ape,
stat-ape-normalized, stat-entropy, stat-entropy-normalized, stat-max-weight, stat-most-attended, stat-layer,
stat-temperature (each with data-value); for the scales scale-min and scale-max (data-value), scale-handle-min,
scale-handle-max, scale-track, scale-mode, scale-clamped, scale-reset, and the same under heatmap-scale-*, with
heatmap-scale-scaling; head-view-hint, head-view-hover, precision (the note on how the page stores its arrays).
The root gets data-built at once, data-ready="true" (and data-ready-ms, performance.now() then) once its first maps
are drawn, and data-busy="true" while it computes a map.

Only the standard library and numpy: this module imports nothing from attnprox.
"""
import base64
import html
import json
import math
import numbers
import os
import string
import uuid
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

_ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
# The script's parts, in the order they are inlined (one function scope): each file is one idea.
_SCRIPTS = ("data.js", "measures.js", "colour.js", "histogram.js", "text.js", "heatmap.js", "headview.js",
            "panel.js", "view.js")

DEFAULT_MAX_BYTES = 8_000_000
ENCODINGS = ("float32", "float16", "uint8")
KINDS = ("proximity", "attention")
MEASURES = ("ap", "ape")
SCHEMES = ("viridis", "blue-white-red")
SCALINGS = ("linear", "log", "percentile")
POLICIES = ("literal", "shift", "clamp", "softmax")

_PAGE = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
</head>
<body>
<div class="apx-view" id="${root_id}" tabindex="-1">
<style>
${css}
</style>
<div class="apx-nojs">This interactive attnprox view needs JavaScript (in Jupyter: trust the notebook).</div>
</div>
<script>
(function () {
"use strict";
${js}
const root = document.querySelector("#${root_id}:not([data-built])");
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
_BYTES_PER_VALUE = {"float32": 4, "float16": 2, "uint8": 1}
_LEGACY_KEYS = ("proximity", "attention", "ap_tokens", "causal", "sliding_window")


# ---- The page. ----

def render_html(payload: Mapping[str, Any], title: str = "attnprox", max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """A complete, self-contained HTML document (str) showing `payload` (see the module's docstring) under the
    document title `title`; its arrays are stored as precisely as `max_bytes` allows. Raises ValueError when the
    payload is malformed."""
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    return render_page(page_data(payload, max_bytes), title)


def render_page(data: Mapping[str, Any], title: str) -> str:
    """The document for page data that `page_data` made."""
    return _PAGE.substitute(
        title=_ascii_html(title),
        root_id=f"apx-{uuid.uuid4().hex[:12]}",
        css=_asset("view.css"),
        js=script(),
        data=_script_json(dict(data)),
    )


def page_data(payload: Mapping[str, Any], max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """What the page's script receives: the payload validated, with its arrays encoded (see `encode_array`)."""
    if not isinstance(max_bytes, numbers.Integral) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    page = _validated(payload)
    available = max_bytes - fixed_bytes(page)
    panels = page["panels"]
    encodings = [panel.pop("encoding") for panel in panels]
    qk = [k for k, panel in enumerate(panels) if "queries" in panel["layers"][0]]
    planned = [k for k in qk if encodings[k] is None]
    if planned:
        sizes = [[_values(layer, ("queries", "keys")) for layer in panels[k]["layers"]] for k in planned]
        keep = [_first_layer_index(panels[k]) for k in planned]
        encoding, kept = plan_layers(sizes, keep, available)
        for k, indices in zip(planned, kept):
            panel = panels[k]
            dropped = [layer["layer"] for m, layer in enumerate(panel["layers"]) if m not in indices]
            panel["layers"] = [panel["layers"][m] for m in indices]
            panel["omitted_layers"] = sorted(set(panel["omitted_layers"]) | set(dropped))
            encodings[k] = encoding
    used = sum(_base64_size(_values(layer, ("queries", "keys")) * _BYTES_PER_VALUE[encodings[k]])
               for k in qk for layer in panels[k]["layers"])
    matrices = sum(_values(layer, ("proximity", "attention")) for k, panel in enumerate(panels) if k not in qk
                   for layer in panel["layers"] if encodings[k] is None)
    matrix_encoding = next((e for e in ENCODINGS if _base64_size(matrices * _BYTES_PER_VALUE[e]) <= available - used),
                           "uint8")
    for panel, encoding in zip(panels, encodings):
        for layer in panel["layers"]:
            for name in ("queries", "keys", "proximity", "attention"):
                if name in layer:
                    layer[name] = encode_array(layer[name], encoding or matrix_encoding)
    return page


def script() -> str:
    """The page's script: the asset files inlined in order (inside the page's function scope)."""
    return "\n".join(_asset(name) for name in _SCRIPTS)


def fixed_bytes(page_without_arrays: Mapping[str, Any]) -> int:
    """The page's size less its encoded arrays: the document, styles, script and the payload's other fields."""
    def strip(value):
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if k not in ("queries", "keys", "proximity", "attention")}
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (Mapping, list, tuple)):
            return [strip(v) for v in value]
        return value

    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, (np.floating, np.integer)):
            return value.item()
        raise TypeError(f"{type(value).__name__} in the payload")

    text = json.dumps(strip(page_without_arrays), ensure_ascii=True, default=plain, separators=(",", ":"))
    return len(_PAGE.template) + len(_asset("view.css")) + len(script()) + len(text) + 4096  # + ids, base64 headers


def plan_layers(sizes: Sequence[Sequence[int]], keep: Sequence[int], available: int) -> Tuple[str, List[List[int]]]:
    """What to embed of the queries and keys of the panels' layers: `sizes[p][k]` values in layer k of panel p,
    `keep[p]` the layer a panel must keep, `available` bytes. Returns the encoding ("float32" when every layer fits
    so, else "float16") and, per panel, the indices of the layers kept (all of them when they fit as float16; else
    each panel's kept layer and then the others from the last one down, in turns between panels, while they fit)."""
    total = sum(sum(panel) for panel in sizes)
    for encoding in ("float32", "float16"):
        if _base64_size(total * _BYTES_PER_VALUE[encoding]) <= available:
            return encoding, [list(range(len(panel))) for panel in sizes]
    kept = [[k] for k in keep]
    used = sum(sizes[p][k] for p, k in enumerate(keep))
    queues = [[k for k in reversed(range(len(panel))) if k != keep[p]] for p, panel in enumerate(sizes)]
    while any(queues):
        for p, queue in enumerate(queues):
            if not queue:
                continue
            k = queue.pop(0)
            if _base64_size((used + sizes[p][k]) * 2) <= available:
                kept[p].append(k)
                used += sizes[p][k]
    return "float16", [sorted(panel) for panel in kept]


def _base64_size(raw_bytes: int) -> int:
    return 4 * ((raw_bytes + 2) // 3)


def _values(layer: Mapping[str, Any], names: Sequence[str]) -> int:
    return sum(int(np.asarray(layer[name]).size) for name in names if name in layer)


def _first_layer_index(panel: Mapping[str, Any]) -> int:
    """The layer a panel shows first (the last one for "mean")."""
    wanted = panel["state"]["layer"]
    numbers_ = [layer["layer"] for layer in panel["layers"]]
    return numbers_.index(wanted) if wanted in numbers_ else len(numbers_) - 1


# ---- Arrays in the page. ----

def encode_array(array: Any, encoding: str) -> dict:
    """An array as the page stores it: {"dtype", "shape", "scale", "offset", "max_error", "data"} with data the
    base64 of the little-endian values. float32 as they are; float16 of value / scale with scale a power of two
    that brings the largest |value| into [2^14, 2^15) (so the relative error is float16's, at most 2^-11, and no
    value overflows); uint8 codes q with value = offset + q * scale over the array's range (error at most scale/2).
    max_error is the largest |decoded - value| over the array, measured on what was written."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    values = np.asarray(array, dtype=np.float64)
    scale, offset = 1.0, 0.0
    if encoding == "float32":
        raw = values.astype("<f4")
    elif encoding == "float16":
        largest = float(np.abs(values).max()) if values.size else 0.0
        if largest > 0:
            scale = 2.0 ** (math.floor(math.log2(largest)) - 14)
        raw = (values / scale).astype("<f2")
    else:
        low = float(values.min()) if values.size else 0.0
        high = float(values.max()) if values.size else 0.0
        scale = (high - low) / 255 if high > low else 1.0
        offset = low
        raw = np.clip(np.rint((values - low) / scale), 0, 255).astype(np.uint8)
    encoded = {"dtype": encoding, "shape": list(values.shape), "scale": scale, "offset": offset,
               "data": base64.b64encode(raw.tobytes()).decode("ascii")}
    decoded = decode_array(encoded)
    encoded["max_error"] = float(np.abs(decoded - values).max()) if values.size else 0.0
    return encoded


def decode_array(encoded: Mapping[str, Any]) -> np.ndarray:
    """The float32 values the page decodes from an encoded array (as its script computes them)."""
    raw = base64.b64decode(encoded["data"])
    dtype = {"float32": "<f4", "float16": "<f2", "uint8": np.uint8}[encoded["dtype"]]
    codes = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    return (encoded["offset"] + codes * encoded["scale"]).astype(np.float32).reshape(encoded["shape"])


# ---- Text in the page. ----

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


# ---- Validation. ----

def _validated(payload: Any) -> dict:
    """The payload as one page: {"title", "panels": [...], "state": {...}}, plain JSON values but for the arrays
    (float64 numpy arrays, encoded afterwards), after checking every field."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a dict, got {type(payload).__name__}")
    if "panels" in payload:
        title = payload.get("title", "attnprox")
        if not isinstance(title, str):
            raise ValueError(f"payload['title'] must be a str, got {type(title).__name__}")
        panels = payload["panels"]
        if not isinstance(panels, (list, tuple)) or len(panels) not in (1, 2):
            raise ValueError(f"payload['panels'] must be a list of one or two panels, got "
                             f"{len(panels) if isinstance(panels, (list, tuple)) else type(panels).__name__}")
        page_state = payload.get("state", {})
        panels = [_validated_panel(panel, f"payload['panels'][{k}]") for k, panel in enumerate(panels)]
    else:
        page_state = payload.get("state", {})
        panels = [_validated_panel(payload, "payload")]
        title = panels[0]["title"]
    return {"title": title, "panels": panels, "state": _validated_page_state(page_state)}


def _validated_page_state(state: Any) -> dict:
    if not isinstance(state, Mapping):
        raise ValueError(f"payload['state'] must be a dict, got {type(state).__name__}")
    out = {"kind": state.get("kind", "proximity"), "measure": state.get("measure", "ap"),
           "scheme": state.get("scheme", "viridis"), "heatmap_scaling": state.get("heatmap_scaling")}
    for key, allowed in (("kind", KINDS), ("measure", MEASURES), ("scheme", SCHEMES)):
        if out[key] not in allowed:
            raise ValueError(f"payload['state'][{key!r}] must be one of {', '.join(allowed)}, got {out[key]!r}")
    if out["heatmap_scaling"] is not None and out["heatmap_scaling"] not in SCALINGS:
        raise ValueError(f"payload['state']['heatmap_scaling'] must be one of {', '.join(SCALINGS)} or None, got "
                         f"{out['heatmap_scaling']!r}")
    return out


def _validated_panel(panel: Any, where: str) -> dict:
    if not isinstance(panel, Mapping):
        raise ValueError(f"{where} must be a dict, got {type(panel).__name__}")
    legacy = "layers" not in panel
    required = ("title", "tokens", "proximity", "ap_tokens", "attention", "stats") if legacy else ("title", "tokens",
                                                                                                  "layers")
    missing = [key for key in required if key not in panel]
    if missing:
        raise ValueError(f"{where} is missing {', '.join(repr(key) for key in missing)}")
    if not isinstance(panel["title"], str):
        raise ValueError(f"{where}['title'] must be a str, got {type(panel['title']).__name__}")

    tokens = panel["tokens"]
    if not isinstance(tokens, (list, tuple)) or not tokens:
        raise ValueError(f"{where}['tokens'] must be a non-empty list of str")
    for j, token in enumerate(tokens):
        if not isinstance(token, str):
            raise ValueError(f"{where}['tokens'][{j}] must be a str, got {type(token).__name__}")
    n = len(tokens)

    text, offsets = _validated_text(panel, where, n)
    ids = panel.get("ids")
    if ids is not None:
        if (not isinstance(ids, (list, tuple)) or len(ids) != n or
                not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids)):
            raise ValueError(f"{where}['ids'] must be a list of {n} ints")
        ids = [int(i) for i in ids]
    model = panel.get("model", "")
    if not isinstance(model, str):
        raise ValueError(f"{where}['model'] must be a str, got {type(model).__name__}")

    stats = panel.get("stats")
    stats = None if stats is None else _validated_stats(stats, n, where)
    temperature = panel.get("temperature", stats.get("temperature", 1.0) if isinstance(stats, Mapping) else 1.0)
    if (not isinstance(temperature, numbers.Real) or isinstance(temperature, bool) or not math.isfinite(temperature)
            or temperature <= 0):
        raise ValueError(f"{where}['temperature'] must be a positive number, got {temperature!r}")
    policy = panel.get("policy", "shift")
    if policy not in POLICIES:
        raise ValueError(f"{where}['policy'] must be one of {', '.join(POLICIES)}, got {policy!r}")

    if legacy:
        layer_number = stats["layer"]
        layers = [_validated_matrix_layer({"layer": layer_number, **{k: panel[k] for k in _LEGACY_KEYS if k in panel}},
                                          where, n)]
    else:
        raw_layers = panel["layers"]
        if not isinstance(raw_layers, (list, tuple)) or not raw_layers:
            raise ValueError(f"{where}['layers'] must be a non-empty list of layers")
        layers = []
        for k, layer in enumerate(raw_layers):
            here = f"{where}['layers'][{k}]"
            if not isinstance(layer, Mapping):
                raise ValueError(f"{here} must be a dict, got {type(layer).__name__}")
            if "queries" in layer or "keys" in layer:
                layers.append(_validated_qk_layer(layer, here, n))
            else:
                layers.append(_validated_matrix_layer(layer, here, n))
        forms = {"queries" in layer for layer in layers}
        if len(forms) > 1:
            raise ValueError(f"{where}['layers'] mixes layers of queries and keys with ready-made matrices")
        if "queries" in layers[0]:
            shapes = {(layer["queries"].shape[0], layer["keys"].shape[0], layer["queries"].shape[2])
                      for layer in layers}
            if len(shapes) > 1:
                raise ValueError(f"{where}['layers'] have different head counts or head sizes: {sorted(shapes)}")
        numbers_ = [layer["layer"] for layer in layers]
        if len(set(numbers_)) != len(numbers_):
            raise ValueError(f"{where}['layers'] repeats a layer number: {numbers_}")

    out = {"title": panel["title"], "model": model, "tokens": list(tokens), "text": text, "offsets": offsets,
           "text_from_tokens": "text" not in panel or panel.get("text") is None, "ids": ids,
           "temperature": float(temperature), "policy": policy, "layers": layers,
           "stats": stats,
           "state": _validated_panel_state(panel.get("state", {}), where, n, layers),
           "encoding": _validated_encoding(panel.get("encoding"), where),
           "omitted_layers": _validated_ints(panel.get("omitted_layers", []), f"{where}['omitted_layers']")}
    return out


def _validated_encoding(encoding: Any, where: str) -> Optional[str]:
    if encoding is not None and encoding not in ENCODINGS:
        raise ValueError(f"{where}['encoding'] must be one of {', '.join(ENCODINGS)} or None, got {encoding!r}")
    return encoding


def _validated_ints(values: Any, where: str) -> List[int]:
    if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{where} must be a list of ints, got {values!r}")
    return [int(v) for v in values]


def _validated_text(panel: Mapping[str, Any], where: str, n: int) -> Tuple[str, List[List[int]]]:
    """The text and each token's [start, end] in it; without a text, the labels joined and their spans."""
    text = panel.get("text")
    offsets = panel.get("offsets")
    if text is None:
        if offsets is not None:
            raise ValueError(f"{where}['offsets'] needs {where}['text'], the text they point into")
        starts = np.cumsum([0] + [len(token) for token in panel["tokens"]])
        return "".join(panel["tokens"]), [[int(starts[j]), int(starts[j + 1])] for j in range(n)]
    if not isinstance(text, str):
        raise ValueError(f"{where}['text'] must be a str, got {type(text).__name__}")
    if offsets is None:
        raise ValueError(f"{where}['text'] needs {where}['offsets'], each token's [start, end] in it")
    try:
        spans = np.asarray(offsets)
    except ValueError as e:
        raise ValueError(f"{where}['offsets'] must be {n} pairs [start, end]: {e}") from None
    if spans.shape != (n, 2) or spans.dtype.kind not in "iu":
        raise ValueError(f"{where}['offsets'] must be {n} pairs of ints [start, end] (one per token), found "
                         f"shape {spans.shape} of {spans.dtype}")
    bad = np.flatnonzero((spans < 0).any(axis=1) | (spans > len(text)).any(axis=1))
    if bad.size:
        j = int(bad[0])
        raise ValueError(f"{where}['offsets'][{j}] = {spans[j].tolist()} lies outside the text "
                         f"({len(text)} characters)")
    return text, spans.astype(int).tolist()


def _validated_qk_layer(layer: Mapping[str, Any], where: str, n: int) -> dict:
    missing = [key for key in ("layer", "queries", "keys", "scaling") if key not in layer]
    if missing:
        raise ValueError(f"{where} is missing {', '.join(repr(key) for key in missing)}")
    queries = _array(f"{where}['queries']", layer["queries"], 3)
    keys = _array(f"{where}['keys']", layer["keys"], 3)
    heads, kv_heads = queries.shape[0], keys.shape[0]
    if queries.shape[1] != n or keys.shape[1] != n:
        raise ValueError(f"{where}: queries {list(queries.shape)} and keys {list(keys.shape)} must hold N = {n} "
                         f"tokens on their second axis")
    if queries.shape[2] != keys.shape[2] or queries.shape[2] == 0:
        raise ValueError(f"{where}: queries have head size {queries.shape[2]}, keys {keys.shape[2]}")
    if kv_heads == 0 or heads % kv_heads:
        raise ValueError(f"{where}: {heads} query heads must be a multiple of {kv_heads} key heads")
    out = {"layer": _int(layer["layer"], f"{where}['layer']"), "queries": queries, "keys": keys,
           "scaling": _finite(layer["scaling"], f"{where}['scaling']")}
    out.update(_mask(layer, where))
    softcap = layer.get("softcap")
    out["softcap"] = None if softcap is None else _finite(softcap, f"{where}['softcap']")
    if out["softcap"] is not None and out["softcap"] <= 0:
        raise ValueError(f"{where}['softcap'] must be positive or None, got {softcap!r}")
    sinks = layer.get("sinks")
    if sinks is not None:
        sinks = _array(f"{where}['sinks']", sinks, 1)
        if sinks.shape != (heads,):
            raise ValueError(f"{where}['sinks'] must hold one logit per query head ({heads}), found {sinks.shape[0]}")
        sinks = sinks.tolist()
    out["sinks"] = sinks
    rope = layer.get("rope")
    if rope is not None:
        if not isinstance(rope, Mapping) or not all(key in rope for key in ("inv_freq", "rotary_dim", "layout")):
            raise ValueError(f"{where}['rope'] must be a rotary embedding record (inv_freq, rotary_dim, layout) or "
                             f"None, got {rope!r}")
        inv_freq = [float(f) for f in rope["inv_freq"]]
        dim = _int(rope["rotary_dim"], f"{where}['rope']['rotary_dim']")
        if dim != 2 * len(inv_freq) or dim > queries.shape[2] or rope["layout"] not in ("rotate_half", "interleaved"):
            raise ValueError(f"{where}['rope'] does not fit heads of {queries.shape[2]}: rotary_dim {dim}, "
                             f"{len(inv_freq)} frequencies, layout {rope['layout']!r}")
        scaling = _finite(rope.get("attention_scaling", 1.0), f"{where}['rope']['attention_scaling']")
        rope = {"inv_freq": inv_freq, "rotary_dim": dim, "layout": rope["layout"], "attention_scaling": scaling}
    out["rope"] = rope
    out.update(_layer_values(layer, where, n))
    return out


def _validated_matrix_layer(layer: Mapping[str, Any], where: str, n: int) -> dict:
    missing = [key for key in ("layer", "proximity", "attention") if key not in layer]
    if missing:
        raise ValueError(f"{where} is missing {', '.join(repr(key) for key in missing)}")
    proximity = _numbers(f"{where}['proximity']", layer["proximity"], (n, n))
    scale = max(1.0, float(np.abs(proximity).max()))
    asymmetry = float(np.abs(proximity - proximity.T).max())
    if asymmetry > _SYMMETRY_TOLERANCE * scale:
        raise ValueError(f"{where}['proximity'] must be symmetric: |A - A^T| reaches {asymmetry:.3g}")

    attention = _numbers(f"{where}['attention']", layer["attention"], (n, n))
    if attention.min() < 0:
        raise ValueError(f"{where}['attention'] has a negative weight ({attention.min():.3g})")
    row_sums = attention.sum(axis=1)
    worst = int(np.argmax(np.abs(row_sums - 1.0)))
    if abs(row_sums[worst] - 1.0) > _ROW_SUM_TOLERANCE:
        raise ValueError(f"{where}['attention'] rows must sum to 1 (rows are queries): row {worst} sums to "
                         f"{row_sums[worst]:.6g}")
    mask = _mask(layer, where)
    causal, window = mask["causal"], mask["sliding_window"]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    if causal:
        hidden = (j > i) | ((i - j >= window) if window else False)
    else:
        hidden = (np.abs(i - j) > window) if window else np.zeros((n, n), bool)
    if (attention[hidden] != 0).any():
        q, k = np.argwhere(hidden & (attention != 0))[0]
        raise ValueError(f"{where}['attention'] gives query {q} weight on key {k}, which it cannot see")
    out = {"layer": _int(layer["layer"], f"{where}['layer']"), "proximity": proximity, "attention": attention}
    out.update(mask)
    out.update(_layer_values(layer, where, n))
    return out


def _mask(layer: Mapping[str, Any], where: str) -> dict:
    causal = layer.get("causal", False)
    if not isinstance(causal, (bool, np.bool_)):
        raise ValueError(f"{where}['causal'] must be true or false, got {causal!r}")
    window = layer.get("sliding_window")
    if window is not None and (not isinstance(window, numbers.Integral) or isinstance(window, bool) or window < 1):
        raise ValueError(f"{where}['sliding_window'] must be a positive int or None, got {window!r}")
    return {"causal": bool(causal), "sliding_window": None if window is None else int(window)}


def _layer_values(layer: Mapping[str, Any], where: str, n: int) -> dict:
    """A layer's own AP_i and iAPE_i, when given (lists, iAPE_i None where undefined)."""
    out = {}
    if layer.get("ap_tokens") is not None:
        out["ap_tokens"] = _numbers(f"{where}['ap_tokens']", layer["ap_tokens"], (n,)).tolist()
    if layer.get("ape_tokens") is not None:
        values = _numbers(f"{where}['ape_tokens']", layer["ape_tokens"], (n,), allow_nan=True)
        out["ape_tokens"] = [None if math.isnan(v) else v for v in values.tolist()]
    return out


def _validated_panel_state(state: Any, where: str, n: int, layers: List[dict]) -> dict:
    if not isinstance(state, Mapping):
        raise ValueError(f"{where}['state'] must be a dict, got {type(state).__name__}")
    numbers_ = [layer["layer"] for layer in layers]
    layer = state.get("layer", numbers_[-1])
    if layer != "mean" and (not isinstance(layer, numbers.Integral) or isinstance(layer, bool)
                            or layer not in numbers_):
        raise ValueError(f"{where}['state']['layer'] must be one of the layers {numbers_} or \"mean\", got {layer!r}")
    heads = layers[0]["queries"].shape[0] if "queries" in layers[0] else 0
    head = state.get("head", "mean")
    if head != "mean" and (not isinstance(head, numbers.Integral) or isinstance(head, bool) or not 0 <= head < heads):
        allowed = f"a head 0..{heads - 1} or \"mean\"" if heads else "\"mean\" (the layers are ready-made matrices)"
        raise ValueError(f"{where}['state']['head'] must be {allowed}, got {head!r}")
    selection = _validated_ints(state.get("selection", []), f"{where}['state']['selection']")
    outside = [j for j in selection if not 0 <= j < n]
    if outside:
        raise ValueError(f"{where}['state']['selection'] holds token {outside[0]}, the text has {n} tokens")
    return {"layer": layer if layer == "mean" else int(layer), "head": head if head == "mean" else int(head),
            "selection": sorted(set(selection))}


def _int(value: Any, where: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{where} must be an int, got {value!r}")
    return int(value)


def _finite(value: Any, where: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _array(where: str, value: Any, dims: int) -> np.ndarray:
    """value as a finite float64 array of `dims` dimensions."""
    try:
        array = np.asarray(value)
    except ValueError as e:  # ragged nesting
        raise ValueError(f"{where} must be an array of {dims} dimensions: {e}") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{where} must hold numbers, found {array.dtype} values")
    if array.ndim != dims:
        raise ValueError(f"{where} must have {dims} dimensions, found shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{where} has a value that is not finite (NaN or infinite)")
    return array


def _numbers(where: str, value: Any, shape: tuple, allow_nan: bool = False) -> np.ndarray:
    """value as a finite float64 array of the given shape (ints and floats only: no bools, strings or None)."""
    what = "an N x N matrix" if len(shape) == 2 else "a list of N"
    try:
        array = np.asarray(value)
    except ValueError as e:  # ragged nesting
        raise ValueError(f"{where} must be {what} numbers (N = {shape[0]}): {e}") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{where} must be {what} numbers (N = {shape[0]}), found {array.dtype} values")
    if array.shape != shape:
        raise ValueError(f"{where} must have shape {shape} (N = {shape[0]} tokens), found {array.shape}")
    array = array.astype(np.float64)
    finite = np.isfinite(array) | (np.isnan(array) if allow_nan else False)
    if not finite.all():
        raise ValueError(f"{where} has a value that is not finite ({'infinite' if allow_nan else 'NaN or infinite'})")
    return array


def _validated_stats(stats: Any, n: int, where: str) -> dict:
    if not isinstance(stats, Mapping):
        raise ValueError(f"{where}['stats'] must be a dict, got {type(stats).__name__}")
    missing = [key for key in _INT_STATS + _FLOAT_STATS + _OPTIONAL_FLOAT_STATS if key not in stats]
    if missing:
        raise ValueError(f"{where}['stats'] is missing {', '.join(repr(key) for key in missing)}")
    out = {}
    for key in _INT_STATS:
        value = stats[key]
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ValueError(f"{where}['stats'][{key!r}] must be an int, got {value!r}")
        out[key] = int(value)
    for key in _FLOAT_STATS + _OPTIONAL_FLOAT_STATS:
        value = stats[key]
        if value is None and key in _OPTIONAL_FLOAT_STATS:
            out[key] = None
            continue
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(f"{where}['stats'][{key!r}] must be a number, got {value!r}")
        value = float(value)
        if math.isnan(value) and key in _OPTIONAL_FLOAT_STATS:
            out[key] = None  # undefined
        elif not math.isfinite(value):
            raise ValueError(f"{where}['stats'][{key!r}] must be finite, got {value!r}")
        else:
            out[key] = value
    if out["tokens"] != n:
        raise ValueError(f"{where}['stats']['tokens'] is {out['tokens']} but there are {n} tokens")
    if not 0 <= out["ape_undefined_rows"] <= n:
        raise ValueError(f"{where}['stats']['ape_undefined_rows'] must be in 0..{n}, got "
                         f"{out['ape_undefined_rows']}")
    for key in _TOKEN_STATS:
        if not 0 <= out[key] < n:
            raise ValueError(f"{where}['stats'][{key!r}] must be a token position in 0..{n - 1}, got {out[key]}")
    return out
