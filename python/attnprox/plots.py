"""Pictures of what attention sees (matplotlib): one head's weights, averaged weights, heads side by side, the grid
of every layer × head, the proximity matrix A, and per-token values (AP_i, AP^(S)) as coloured text.

Every function returns a matplotlib Figure (draw on your own Axes with `ax=` where there is one picture) and takes
`cmap`, `vmin`, `vmax`; `save(fig, "out.png")` / `"out.svg"` writes it. Token labels thin out for long texts: at
most `max_labels` are written along an axis (every k-th token), so that they stay legible.

    import attnprox
    from attnprox import plots
    r = attnprox.load("model.apx").run(text="The bank by the river was steep.")
    plots.save(plots.attention(r, layer=-1, head=3), "head3.png")
    plots.save(plots.grid(r), "grid.svg")
"""
import math
import os
from typing import Optional, Sequence

import numpy as np

from .files import replacing_path

_MPL = None


def _matplotlib():
    """matplotlib with a non-interactive backend unless one was chosen (imported on first use)."""
    global _MPL
    if _MPL is None:
        import matplotlib

        if "MPLBACKEND" not in os.environ and matplotlib.get_backend().lower() not in (
                "agg", "module://matplotlib_inline.backend_inline"):
            try:
                matplotlib.use("Agg")
            except Exception:  # a backend is already in use (a notebook): keep it
                pass
        import matplotlib.pyplot as plt

        _MPL = plt
    return _MPL


def labels(result) -> list:
    """Token labels for pictures: `result.token_labels` (the tokens as the tokenizer sees them, decoded: "##ing",
    " world"; the ids without a tokenizer), newlines as ⏎, surrounding spaces dropped (a token of spaces alone as
    its repr)."""
    return [t.replace("\n", "⏎").strip() or repr(t) for t in result.token_labels]


def _thin(n: int, max_labels: int) -> int:
    return max(1, math.ceil(n / max(1, max_labels)))


def _label_axes(ax, names: Sequence[str], max_labels: int, rows: bool = True, cols: bool = True, fontsize=None):
    n = len(names)
    step = _thin(n, max_labels)
    ticks = list(range(0, n, step))
    size = fontsize or (9 if n <= 20 else 7 if n <= 60 else 6)
    if cols:
        ax.set_xticks(ticks)
        ax.set_xticklabels([names[i] for i in ticks], rotation=90, fontsize=size)
    else:
        ax.set_xticks([])
    if rows:
        ax.set_yticks(ticks)
        ax.set_yticklabels([names[i] for i in ticks], fontsize=size)
    else:
        ax.set_yticks([])


def _matrix(matrix, names, title, cmap, vmin, vmax, max_labels, ax, colorbar=True, xlabel="key", ylabel="query"):
    plt = _matplotlib()
    matrix = np.asarray(matrix)
    if ax is None:
        side = min(14.0, max(4.0, 0.28 * len(names) + 2.5))
        fig, ax = plt.subplots(figsize=(side + (1.0 if colorbar else 0), side))
    else:
        fig = ax.figure
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal")
    _label_axes(ax, names, max_labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def attention(result, layer: int = -1, head: Optional[int] = None, temperature: float = 1.0, cmap: str = "viridis",
              vmin: Optional[float] = None, vmax: Optional[float] = None, max_labels: int = 40, ax=None, title=None):
    """One head's attention weights with token labels (head=None: the mean of the layer's heads)."""
    names = labels(result)
    if head is None:
        weights = result.attention(layer, temperature=temperature).mean(0)
        default = f"layer {_layer_number(result, layer)}, mean of {result.model.num_heads} heads"
    else:
        weights = result.attention(layer, head=head, temperature=temperature)
        default = f"layer {_layer_number(result, layer)}, head {head}"
    return _matrix(weights, names, title or default, cmap, vmin, vmax, max_labels, ax)


def average_attention(result, layers=None, heads=None, temperature: float = 1.0, cmap: str = "viridis",
                      vmin: Optional[float] = None, vmax: Optional[float] = None, max_labels: int = 40, ax=None,
                      title=None):
    """Attention averaged over layers × heads (None: all captured layers, all heads)."""
    weights = result.average_attention(layers, heads, temperature=temperature)
    default = ("mean attention over " + ("every layer" if layers is None else f"layers {_listed(layers)}") + " × " +
               ("every head" if heads is None else f"heads {_listed(heads)}"))
    return _matrix(weights, labels(result), title or default, cmap, vmin, vmax, max_labels, ax)


def heads(result, heads: Sequence[int], layer: int = -1, temperature: float = 1.0, cmap: str = "viridis",
          vmin: Optional[float] = 0.0, vmax: Optional[float] = None, max_labels: int = 30, titles=None):
    """Several heads of one layer side by side, on one colour range (vmax: the largest weight shown)."""
    return head_panels(result, [(layer, h) for h in heads], temperature, cmap, vmin, vmax, max_labels, titles)


def head_panels(result, pairs: Sequence[Sequence[int]], temperature: float = 1.0, cmap: str = "viridis",
                vmin: Optional[float] = 0.0, vmax: Optional[float] = None, max_labels: int = 30, titles=None):
    """Heads from any layers side by side: `pairs` of (layer, head), on one colour range."""
    plt = _matplotlib()
    names = labels(result)
    weights = [result.attention(layer, head=head, temperature=temperature) for layer, head in pairs]
    top = vmax if vmax is not None else max(float(w.max()) for w in weights)
    side = min(8.0, max(3.0, 0.22 * len(names) + 2.0))
    fig, axes = plt.subplots(1, len(pairs), figsize=(side * len(pairs) + 1.0, side), squeeze=False)
    for k, ((layer, head), w) in enumerate(zip(pairs, weights)):
        ax = axes[0][k]
        image = ax.imshow(w, cmap=cmap, vmin=vmin, vmax=top, interpolation="nearest")
        _label_axes(ax, names, max_labels, rows=k == 0)
        ax.set_title(titles[k] if titles else f"layer {_layer_number(result, layer)}, head {head}", fontsize=10)
    fig.colorbar(image, ax=list(axes[0]), fraction=0.02, pad=0.02)
    return fig


def grid(result, layers=None, temperature: float = 1.0, cmap: str = "viridis", vmin: Optional[float] = 0.0,
         vmax: Optional[float] = None, cell: float = 1.6):
    """Every captured layer (rows) × every head (columns), on one colour range, each cell titled "L{l} H{h}", and
    "L{l} H{h} (kv {g})" with the key/value head g it reads where heads share key heads (grouped-query
    attention, H ≠ Hkv)."""
    plt = _matplotlib()
    model = result.model
    chosen = result.layers if layers is None else [_layer_number(result, l) for l in layers]
    group = model.num_heads // model.num_kv_heads
    weights = {l: result.attention(l, temperature=temperature) for l in chosen}
    top = vmax if vmax is not None else max(float(w.max()) for w in weights.values())
    fig, axes = plt.subplots(len(chosen), model.num_heads, squeeze=False,
                             figsize=(cell * model.num_heads + 1.0, cell * len(chosen) + 0.6))
    for r, l in enumerate(chosen):
        for h in range(model.num_heads):
            ax = axes[r][h]
            image = ax.imshow(weights[l][h], cmap=cmap, vmin=vmin, vmax=top, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = f"L{l} H{h}" + (f" (kv {h // group})" if group > 1 else "")  # every head its own key head: no kv
            ax.set_title(label, fontsize=7, pad=2)
    fig.suptitle(f"{model.family}: {len(chosen)} layers × {model.num_heads} heads"
                 + (f" ({model.num_kv_heads} key/value groups)" if group > 1 else ""), fontsize=10)
    fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.015, pad=0.01)
    return fig


def proximity(result, layer: int = -1, subset: Optional[Sequence[int]] = None, cmap: str = "RdBu_r",
              vmin: Optional[float] = None, vmax: Optional[float] = None, max_labels: int = 40, ax=None, title=None,
              rope: bool = False):
    """The proximity matrix A of a layer (a diverging map centred on 0 unless vmin/vmax say otherwise); `subset`
    outlines the rows of S. `rope`: from the queries and keys after RoPE (default: before, Result.proximity)."""
    a = result.proximity(layer, rope=rope)
    if vmin is None and vmax is None:
        bound = float(np.abs(a).max()) or 1.0
        vmin, vmax = -bound, bound
    after = ", after RoPE" if rope else ""
    default = f"proximity A{after}, layer {_layer_number(result, layer)}, AP = {result.ap(layer, rope=rope):.4f}"
    if subset is not None:
        result.subset_proximity(subset, layer, rope=rope)  # the engine's check: positions in the text, S not empty
    fig = _matrix(a, labels(result), title or default, cmap, vmin, vmax, max_labels, ax, xlabel="token j",
                  ylabel="token i")
    if subset:
        ax = ax or fig.axes[0]
        for i in sorted(set(subset)):
            ax.add_patch(_matplotlib().Rectangle((-0.5, i - 0.5), a.shape[0], 1, fill=False, lw=1.5, ec="black"))
    return fig


def token_values(tokens: Sequence[str], values: Sequence[float], title: str = "", cmap: str = "RdBu_r",
                 vmin: Optional[float] = None, vmax: Optional[float] = None, marked: Sequence[int] = (),
                 width: float = 10.0, fontsize: int = 12):
    """Tokens as coloured text, each coloured by its value (AP_i, AP^(S)_j, ...); `marked` tokens are boxed.
    The tokens flow in lines `width` inches wide, each placed after the measured width of the previous one."""
    plt = _matplotlib()
    values = np.asarray(values, dtype=float)
    if vmin is None and vmax is None:
        bound = float(np.nanmax(np.abs(values))) if values.size else 1.0
        vmin, vmax = -(bound or 1.0), (bound or 1.0)
    norm = plt.Normalize(vmin=vmin, vmax=vmax)
    colormap = plt.get_cmap(cmap)
    line_height = fontsize / 72 * 2.1  # inches
    fig = plt.figure(figsize=(width + 0.4, 2.0))
    renderer = fig.canvas.get_renderer()
    gap = fontsize / 72 * 0.45  # inches between tokens
    placed, x, row = [], 0.0, 0
    for k, token in enumerate(tokens):
        value = values[k]
        color = colormap(norm(value)) if np.isfinite(value) else (0.85, 0.85, 0.85, 1.0)
        luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
        box = dict(boxstyle="round,pad=0.2", fc=color, ec="black" if k in marked else "none",
                   lw=1.5 if k in marked else 0)
        text = fig.text(0, 0, token, fontsize=fontsize, va="center", ha="left", bbox=box,
                        color="white" if luminance < 0.5 else "black", transform=None)
        w = text.get_window_extent(renderer).width / fig.dpi  # inches, box included
        if x > 0 and x + w > width:
            x, row = 0.0, row + 1
        placed.append((text, x, row))
        x += w + gap
    rows = row + 1
    height = rows * line_height + (0.5 if title else 0.15) + 0.75
    fig.set_size_inches(width + 0.4, height)
    top = height - (0.5 if title else 0.15) - line_height / 2
    for text, x0, r in placed:
        text.set_transform(fig.dpi_scale_trans)
        text.set_position((0.2 + x0, top - r * line_height))
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.2 / height)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    bar = fig.add_axes([0.15, 0.35 / height, 0.7, 0.18 / height])
    fig.colorbar(mappable, cax=bar, orientation="horizontal")
    return fig


def ap_text(result, layer: int = -1, subset: Optional[Sequence[int]] = None, rope: bool = False, **kwargs):
    """The text coloured by per-token AP_i, or by AP^(S) when a subset S is given (S boxed). `rope`: from the queries
    and keys after RoPE (default: before, as Result.ap_tokens)."""
    after = ", after RoPE" if rope else ""
    if subset is not None:
        values = result.subset_proximity(subset, layer, rope=rope)
        title = f"proximity to tokens {_listed(subset)} (layer {_layer_number(result, layer)}{after})"
    else:
        values = result.ap_tokens(layer, rope=rope)
        title = f"AP per token, layer {_layer_number(result, layer)}{after} (AP = {result.ap(layer, rope=rope):.4f})"
    return token_values(labels(result), values, title=kwargs.pop("title", title), marked=subset or (), **kwargs)


def save(fig, path: str, dpi: int = 150) -> str:
    """Writes a figure as PNG, SVG or PDF (by the file's extension) and closes it; returns the path."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".png", ".svg", ".pdf"):
        raise ValueError(f"{path}: pictures are written as .png, .svg or .pdf")
    try:
        with replacing_path(path) as temporary:
            fig.savefig(temporary, dpi=dpi, bbox_inches="tight", format=extension[1:])
    finally:
        _matplotlib().close(fig)
    return path


def _layer_number(result, layer: int) -> int:
    return result.layer_number(layer)


def _listed(values) -> str:
    if isinstance(values, (int, np.integer)):
        return str(values)
    values = list(values)
    return ", ".join(map(str, values[:6])) + (" …" if len(values) > 6 else "")
