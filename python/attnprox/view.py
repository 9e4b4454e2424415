"""The interactive views of model runs: `View` shows one text (`Result.view()`), `Compare` two side by side with one
colour range (`attnprox.compare()`). attnprox.html_view renders them; `export()` gives, from the Results' own
arrays, what the page shows in the state it opens in (the page's "export" button downloads the same record for the
state it is in, computed from what the page stores).

What a page embeds: for every layer it can show, the queries and keys of every head (float32 where the page stays
within `max_bytes`, else float16), the layer's AP_i and iAPE_i, the text and its tokens. The page computes each map
it shows (proximity or attention, of a layer, a head or a mean) from those, so its size grows with N, not N^2:
(H + Hkv) * d values per token and layer. Where even float16 does not fit every layer, the view keeps the layer it
opens on and then the others from the last one down while they fit, and the page names the layers left out; choose
them with `layers=`. "mean" over layers means the mean over the layers in the page.
"""
import math
from typing import Optional, Sequence

import numpy as np

from . import html_view
from .errors import InvalidArgumentError, OutOfRangeError
from .files import replacing, write_text

VIEW_FORMAT = "attnprox-view"
COMPARE_FORMAT = "attnprox-compare"
EXPORT_VERSION = 1
_VALUE_BYTES = 48  # JSON of AP_i and iAPE_i, per token and layer (two floats)


def _rotation(manifest: dict, layer: int) -> Optional[dict]:
    """The rotary embedding of a captured layer as its manifest records it (the layer's own, else the model's), or
    None where the queries and keys are the same before and after RoPE."""
    entry = next((e for e in manifest["layers"] if e["index"] == layer), {})
    record = entry["rope"] if "rope" in entry else manifest.get("rope")
    return record if isinstance(record, dict) and "inv_freq" in record else None


class _Panel:
    """One text in a page: its Result, what to show of it first, and which layers the page holds."""

    def __init__(self, result, layer, head, selection, layers, temperature, policy):
        model = result.model
        self.result = result
        self.n = len(result)
        self.temperature = float(temperature)
        self.policy = policy or "shift"
        captured = result.layers  # the layers the run kept (every captured layer unless layers= chose some)
        if layers is None or (isinstance(layers, str) and layers == "all"):
            layers = captured
        elif isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
            layers = [layers]
        self.wanted = _layer_numbers(captured, layers, "layers")
        if not self.wanted:
            raise InvalidArgumentError("layers is empty: name at least one captured layer")
        if isinstance(layer, str):
            if layer != "mean":
                raise InvalidArgumentError(f"layer must be a layer number or \"mean\", got {layer!r}")
            self.layer = "mean"
        else:
            (self.layer,) = _layer_numbers(captured, [layer], "layer")
            if self.layer not in self.wanted:
                raise InvalidArgumentError(f"layer {self.layer} is not among the layers the page holds {self.wanted}")
        if head != "mean" and (isinstance(head, bool) or not isinstance(head, (int, np.integer))):
            raise InvalidArgumentError(f"head must be a head number or \"mean\", got {head!r}")
        if head != "mean" and not 0 <= head < model.num_heads:
            raise OutOfRangeError(f"head {head} requested, the model has {model.num_heads} heads "
                                  f"(0..{model.num_heads - 1})")
        self.head = head if head == "mean" else int(head)
        if isinstance(selection, (str, bytes)) or not all(
                isinstance(j, (int, np.integer)) and not isinstance(j, bool) for j in selection):
            raise InvalidArgumentError(f"selection must be token positions, got {selection!r}")
        self.selection = sorted({int(j) for j in selection})
        outside = [j for j in self.selection if not 0 <= j < self.n]
        if outside:
            raise OutOfRangeError(f"token {outside[0]} in the selection, the text has {self.n} tokens "
                                  f"(0..{self.n - 1})")
        self.embedded = list(self.wanted)
        self.omitted = []
        self.encoding = None

    # ---- The payload. ----

    def text_and_offsets(self):
        """The text the page shows and each token's span in it; a sentence pair as its two texts on two lines; None,
        None when ids were run (the page joins the tokens' labels)."""
        r = self.result
        if r.text is None:
            return None, None
        offsets = [list(o) for o in r.offsets]
        if r.text_pair is None:
            return r.text, offsets
        shift = len(r.text) + 1
        for j, sequence in enumerate(r.sequence_ids):
            if sequence == 1:
                offsets[j] = [offsets[j][0] + shift, offsets[j][1] + shift]
        return r.text + "\n" + r.text_pair, offsets

    def layer_entry(self, number: int) -> dict:
        model = self.result.model
        entry = model.manifest["layers"][model.captured_layers.index(number)]
        return {"layer": number, "scaling": float(entry["scaling"]),
                "causal": bool(not entry.get("cross_attention", False) and entry.get("causal", model.causal)),
                "sliding_window": entry.get("sliding_window") or None, "softcap": entry.get("softcap"),
                "sinks": entry.get("sinks")}

    def title(self) -> str:
        family = self.result.model.family
        return (f"{family} \u00b7 layer {self.layer}" if self.layer != "mean"
                else f"{family} \u00b7 mean of {len(self.embedded)} layers")

    def sizes(self):
        model = self.result.model
        return [(model.num_heads + model.num_kv_heads) * self.n * model.head_dim for _ in self.wanted]

    def keep_index(self) -> int:
        return self.wanted.index(self.layer) if self.layer != "mean" else len(self.wanted) - 1

    def payload(self, with_arrays: bool = True) -> dict:
        r = self.result
        model = r.model
        text, offsets = self.text_and_offsets()
        layers = []
        for number in (self.embedded if with_arrays else []):
            layer = self.layer_entry(number)
            # Before RoPE, as the proximity family measures them; the page turns them back for the attention with
            # the layer's rotation (docs/model-file.md, "rope").
            layer["queries"] = r.queries(number, rope=False)
            layer["keys"] = r.keys(number, rope=False)
            rope = _rotation(model.manifest, number)
            if rope is not None:
                layer["rope"] = rope
            if self.n >= 2:
                layer["ap_tokens"] = r.ap_tokens(number)
                layer["ape_tokens"] = r.ape_tokens(number, self.policy)
            layers.append(layer)
        stats_layer = self.layer if self.layer != "mean" else self.embedded[-1]
        panel = {"title": self.title(), "model": model_name(model), "tokens": r.token_labels, "ids": r.ids,
                 "temperature": self.temperature, "policy": self.policy, "layers": layers,
                 "stats": _stats(r, stats_layer, self.temperature, self.policy),
                 "state": {"layer": self.layer, "head": self.head, "selection": self.selection},
                 "encoding": self.encoding, "omitted_layers": self.omitted}
        if text is not None:
            panel["text"], panel["offsets"] = text, offsets
        return panel

    # ---- What the page shows, from the Result. ----

    def shown(self, kind: str, measure: str) -> dict:
        """The panel's record for export(), less the colour ranges (they span both panels of a comparison)."""
        r = self.result
        n = self.n
        chosen = self.embedded if self.layer == "mean" else [self.layer]
        heads = None if self.head == "mean" else [self.head]
        own = len(chosen) == 1 and heads is None
        proximity = r.proximity(chosen[0]) if own else r.average_proximity(chosen, heads)
        if n >= 2:
            from . import metrics

            ap_tokens = r.ap_tokens(chosen[0]) if own else metrics.ap_tokens(proximity=proximity)
            ape = r.ape(chosen[0], self.policy) if own else metrics.ape(proximity=proximity, policy=self.policy)
            ape_tokens = np.asarray(ape.tokens, dtype=np.float64)
            ape_value, ape_normalized, undefined = float(ape), ape.normalized, ape.undefined_rows
        else:
            ap_tokens = np.zeros(n)
            ape_tokens = np.full(n, math.nan)
            ape_value, ape_normalized, undefined = math.nan, None, n
        if kind == "proximity":
            matrix = proximity
        elif len(chosen) == 1 and heads is not None:
            matrix = r.attention(chosen[0], head=heads[0], temperature=self.temperature)
        else:
            matrix = r.average_attention(chosen, heads, temperature=self.temperature)
        subset = None
        if self.selection:
            subset = (r.subset_proximity(self.selection, chosen[0]) if own
                      else np.asarray(proximity, dtype=np.float64)[self.selection].mean(axis=0))
        values = subset if subset is not None else ap_tokens if measure == "ap" else ape_tokens
        text, offsets = self.text_and_offsets()
        return {
            "format": VIEW_FORMAT, "version": EXPORT_VERSION,
            "model": model_name(r.model),
            "text": text if text is not None else "".join(r.token_labels), "text_from_tokens": text is None,
            "tokens": r.token_labels, "ids": r.ids,
            "char_spans": offsets if offsets is not None else _joined_spans(r.token_labels),
            "kind": kind, "measure": measure, "layer": self.layer, "head": self.head,
            "layers": list(self.embedded), "omitted_layers": list(self.omitted), "heads": r.model.num_heads,
            "temperature": self.temperature, "policy": self.policy, "selection": list(self.selection),
            "ap_tokens": _floats(ap_tokens), "ape_tokens": _floats(ape_tokens),
            "ap": float(np.mean(ap_tokens)) if n >= 2 else None, "ape": _float(ape_value),
            "ape_normalized": _float(ape_normalized), "ape_undefined_rows": int(undefined),
            "subset_proximity": None if subset is None else _floats(subset),
            "values": _floats(values), "matrix": np.asarray(matrix, dtype=np.float64).tolist(),
            "_matrix": np.asarray(matrix, dtype=np.float64),
        }


class _Page:
    """The panels of one page and what they share: the kind of map, the measure, the colours."""

    def __init__(self, panels, kind, measure, scheme, scaling, max_bytes):
        for name, value, allowed in (("kind", kind, html_view.KINDS), ("measure", measure, html_view.MEASURES),
                                     ("scheme", scheme, html_view.SCHEMES)):
            if value not in allowed:
                raise InvalidArgumentError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if scaling is not None and scaling not in html_view.SCALINGS:
            raise InvalidArgumentError(f"scaling must be one of {', '.join(html_view.SCALINGS)} or None, got "
                                       f"{scaling!r}")
        self.panels = panels
        self.kind, self.measure, self.scheme, self.scaling = kind, measure, scheme, scaling
        self.max_bytes = max_bytes
        self._plan()
        self._data = None

    def _plan(self):
        """Which layers' queries and keys the page holds, and how (html_view.plan_layers), before fetching them."""
        skeleton = {"title": "", "panels": [panel.payload(with_arrays=False) for panel in self.panels]}
        fixed = html_view.fixed_bytes(skeleton) + sum(_VALUE_BYTES * p.n * len(p.wanted) for p in self.panels)
        encoding, kept = html_view.plan_layers([p.sizes() for p in self.panels], [p.keep_index() for p in self.panels],
                                               self.max_bytes - fixed)
        for panel, indices in zip(self.panels, kept):
            panel.embedded = [panel.wanted[k] for k in indices]
            panel.omitted = [number for number in panel.wanted if number not in panel.embedded]
            panel.encoding = encoding

    def payload(self) -> dict:
        state = {"kind": self.kind, "measure": self.measure, "scheme": self.scheme, "heatmap_scaling": self.scaling}
        panels = [panel.payload() for panel in self.panels]
        title = panels[0]["title"] if len(panels) == 1 else " | ".join(p["title"] for p in panels)
        return {"title": title, "panels": panels, "state": state}

    def data(self) -> dict:
        """The page's data as its script receives it (arrays encoded)."""
        if self._data is None:
            self._data = html_view.page_data(self.payload(), self.max_bytes)
        return self._data

    def html(self) -> str:
        data = self.data()
        return html_view.render_page(data, data["title"])

    def export(self) -> list:
        records = [panel.shown(self.kind, self.measure) for panel in self.panels]
        # One text colour range over the panels (their values less the selected tokens), one for the heatmaps.
        values = [np.asarray([v for j, v in enumerate(r["values"]) if v is not None and j not in r["selection"]])
                  for r in records]
        text_range = _fitted(np.concatenate(values) if values else np.zeros(0))
        heat_range = _fitted(np.concatenate([r["_matrix"].ravel() for r in records]))
        scaling = self.scaling or ("log" if self.kind == "attention" else "linear")
        data = self.data()
        for record, panel_data in zip(records, data["panels"]):
            del record["_matrix"]
            record["colour"] = {"scheme": self.scheme, "range": text_range, "heatmap_range": heat_range,
                                "heatmap_scaling": scaling}
            arrays = [layer[name] for layer in panel_data["layers"] for name in ("queries", "keys") if name in layer]
            record["precision"] = {"encoding": arrays[0]["dtype"], "max_abs_error": max(a["max_error"] for a in arrays),
                                   "computed_from": "result"}
        return records


class View:
    """The interactive HTML view of one text (Result.view()): displays itself in Jupyter, `.save(path)` writes a
    self-contained page (no network needed to open it), `.export()` is what it shows as data.

    layer: the layer shown first (the model's number, negative from the last captured) or "mean"; head: a head or
    "mean"; kind: "proximity" (the matrix A) or "attention" (the weights); measure: "ap" or "ape" (what colours the
    text when nothing is selected); selection: token positions selected first; scheme: "viridis" or
    "blue-white-red"; scaling: the heatmap's, "linear", "log" or "percentile" (default: log for attention, linear
    for proximity); temperature and policy as Result.attention and Result.ape; layers: the layers the page holds
    (default: every captured layer that fits); max_bytes: the page's size budget."""

    def __init__(self, result, layer=-1, temperature: float = 1.0, policy: Optional[str] = None, *, head="mean",
                 kind: str = "proximity", measure: str = "ap", selection: Sequence[int] = (), scheme: str = "viridis",
                 scaling: Optional[str] = None, layers=None, max_bytes: int = html_view.DEFAULT_MAX_BYTES):
        panel = _Panel(result, layer, head, selection, layers, temperature, policy)
        self._page = _Page([panel], kind, measure, scheme, scaling, max_bytes)

    @property
    def payload(self) -> dict:
        """The page's payload (attnprox.html_view's schema), arrays as the Result's numpy arrays."""
        return self._page.payload()

    @property
    def layers(self) -> list:
        """The layers the page holds."""
        return list(self._page.panels[0].embedded)

    def html(self) -> str:
        return self._page.html()

    def _repr_html_(self) -> str:
        return self.html()

    def save(self, path: str) -> str:
        write_text(path, self.html(), encoding="ascii")
        return path

    def export(self) -> dict:
        """What the page shows when it opens, from the Result's own arrays: format, title, model, text (the tokens'
        labels joined when ids were run), text_from_tokens, tokens, ids, char_spans (each token's [start, end) in
        text), kind, measure, layer, head, layers (those in the page), omitted_layers, heads, temperature, policy,
        selection, ap_tokens, ape_tokens (None where undefined), ap, ape, ape_normalized, ape_undefined_rows,
        subset_proximity (None without a selection), values (what colours the text), colour (scheme, the text's
        and the heatmap's ranges, the heatmap's scaling), matrix (the N x N map shown) and precision (how the page
        stores its arrays, and their largest error). The page's export button gives the same record for its state
        then, computed from what it stores (with "computed_from": "page")."""
        return self._page.export()[0]

    def save_json(self, path: str) -> str:
        return _save_json(self.export(), path)


class Compare:
    """Two texts side by side in one page, with one colour range for both (attnprox.compare()). Displays itself in
    Jupyter; `.save(path)`, `.export()` ({"format": "attnprox-compare", "panels": [View.export()-like records]}),
    `.save_json(path)`."""

    def __init__(self, result_a, result_b, layer=-1, temperature: float = 1.0, policy: Optional[str] = None, *,
                 head="mean", kind: str = "proximity", measure: str = "ap", selections=((), ()),
                 scheme: str = "viridis", scaling: Optional[str] = None, layers=None,
                 max_bytes: int = html_view.DEFAULT_MAX_BYTES):
        if len(selections) != 2:
            raise InvalidArgumentError(f"selections must hold two selections (one per text), got {len(selections)}")
        panels = [_Panel(result, layer, head, selection, layers, temperature, policy)
                  for result, selection in zip((result_a, result_b), selections)]
        self._page = _Page(panels, kind, measure, scheme, scaling, max_bytes)

    @property
    def payload(self) -> dict:
        return self._page.payload()

    def html(self) -> str:
        return self._page.html()

    def _repr_html_(self) -> str:
        return self.html()

    def save(self, path: str) -> str:
        write_text(path, self.html(), encoding="ascii")
        return path

    def export(self) -> dict:
        return {"format": COMPARE_FORMAT, "version": EXPORT_VERSION, "panels": self._page.export()}

    def save_json(self, path: str) -> str:
        return _save_json(self.export(), path)


def compare(result_a, result_b, layer=-1, temperature: float = 1.0, policy: Optional[str] = None, **options) -> Compare:
    """Two Results side by side in one interactive page with one colour range for both texts (and one for both
    heatmaps): `attnprox.compare(a, b).save("compare.html")`, or inline in Jupyter. The options are View's
    (head, kind, measure, scheme, scaling, layers, max_bytes), with selections=(S_a, S_b) for the two texts."""
    return Compare(result_a, result_b, layer, temperature, policy, **options)


def model_name(model) -> str:
    """The model as an export names it: the manifest's source when it has one, else its family."""
    source = model.manifest.get("source")
    return str(source) if source else str(model.family)


def _layer_numbers(captured, layers, what) -> list:
    numbers = []
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise InvalidArgumentError(f"{what} must hold layer numbers, got {layer!r}")
        number = captured[layer] if -len(captured) <= layer < 0 else int(layer)
        if number not in captured:
            raise OutOfRangeError(f"layer {layer} requested, the model has captured layers {_listed(captured)}")
        if number not in numbers:
            numbers.append(number)
    return sorted(numbers)


def _listed(numbers) -> str:
    return f"{numbers[0]}..{numbers[-1]}" if numbers == list(range(numbers[0], numbers[-1] + 1)) else str(numbers)


def _stats(result, layer: int, temperature: float, policy: str) -> dict:
    n = len(result)
    stats = result.attention_stats(layer, temperature=temperature)
    ape = result.ape(layer, policy) if n >= 2 else None
    return {"tokens": n, "ap": result.ap(layer) if n >= 2 else 0.0,
            "ape": None if ape is None or math.isnan(ape) else float(ape),
            "ape_normalized": None if ape is None or ape.normalized is None else float(ape.normalized),
            "ape_undefined_rows": 0 if ape is None else ape.undefined_rows,
            "mean_entropy": stats.mean_entropy, "mean_normalized_entropy": stats.mean_normalized_entropy,
            "max_weight": stats.max_weight, "max_query": int(stats.max_query), "max_key": int(stats.max_key),
            "most_attended": int(stats.most_attended), "layer": layer, "temperature": temperature}


def _joined_spans(labels) -> list:
    spans, start = [], 0
    for label in labels:
        spans.append([start, start + len(label)])
        start += len(label)
    return spans


def _fitted(values: np.ndarray) -> list:
    """[min, max] of the values as the page's colour scales fit them (a flat set gets a range around it)."""
    values = values[~np.isnan(values)] if values.size else values
    if not values.size:
        return [0.0, 1.0]
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return [lo - (abs(lo) * 0.5 or 0.5), hi + (abs(hi) * 0.5 or 0.5)]
    return [lo, hi]


def _float(value) -> Optional[float]:
    return None if value is None or math.isnan(value) else float(value)


def _floats(values) -> list:
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64).tolist()]


def _save_json(record: dict, path: str) -> str:
    import json

    with replacing(path, "w", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False, allow_nan=False)
    return path
