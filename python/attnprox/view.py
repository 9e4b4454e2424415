"""The interactive view of one text (attnprox.html_view renders it): what Result.view() returns."""
import math
from typing import Optional

import numpy as np


def payload(result, layer: int = -1, temperature: float = 1.0, policy: Optional[str] = None) -> dict:
    """Everything the HTML view shows, from a Result: token labels (`token_labels`), the proximity matrix A, AP_i, the attention
    averaged over the layer's heads (for the arcs) and the stats panel's numbers."""
    n = len(result)
    layer_number = result.layers[layer] if layer < 0 else layer
    stats = result.attention_stats(layer, temperature=temperature)
    entry = result.model.manifest["layers"][result.model.captured_layers.index(layer_number)]
    ape = result.ape(layer, policy) if n >= 2 else None
    round_matrix = lambda m: np.round(np.asarray(m, dtype=np.float64), 6).tolist()  # noqa: E731
    return {
        "title": f"{result.model.family} · layer {layer_number}",
        "tokens": result.token_labels,  # the tokenizer's tokens, decoded: the view shows their whitespace
        "proximity": round_matrix(result.proximity(layer)),
        "ap_tokens": round_matrix(result.ap_tokens(layer)) if n >= 2 else [0.0] * n,
        "attention": round_matrix(result.attention(layer, temperature=temperature).mean(0)),
        "causal": bool(entry.get("causal", result.model.causal)),
        "sliding_window": entry.get("sliding_window") or None,
        "stats": {
            "tokens": n,
            "ap": result.ap(layer) if n >= 2 else 0.0,
            "ape": None if ape is None or math.isnan(ape) else float(ape),
            "ape_normalized": None if ape is None or ape.normalized is None else float(ape.normalized),
            "ape_undefined_rows": 0 if ape is None else ape.undefined_rows,
            "mean_entropy": stats.mean_entropy,
            "mean_normalized_entropy": stats.mean_normalized_entropy,
            "max_weight": stats.max_weight,
            "max_query": int(stats.max_query),
            "max_key": int(stats.max_key),
            "most_attended": int(stats.most_attended),
            "layer": layer_number,
            "temperature": temperature,
        },
    }


class View:
    """The interactive HTML view of a text; displays itself in Jupyter, `.save(path)` writes a self-contained file
    (no network needed to open it)."""

    def __init__(self, result, layer: int = -1, temperature: float = 1.0, policy: Optional[str] = None):
        self.payload = payload(result, layer, temperature, policy)

    def html(self) -> str:
        from .html_view import render_html

        return render_html(self.payload, title=self.payload["title"])

    def _repr_html_(self) -> str:
        return self.html()

    def save(self, path: str) -> str:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html())
        return path
