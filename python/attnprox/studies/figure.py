"""The study's figure: for each measure a panel of the group means ±1 SD, with a bracket over every pair of groups
labelled by its corrected test (*** p < 0.001, ** p < 0.01, * p < 0.05, n.s.), panels side by side (by default AP
and the length-corrected APE). PNG and SVG through matplotlib's Agg backend; in the SVG the labels stay text
(searchable), and every bracket and label carries an id `bracket:MEASURE:A|B` / `label:MEASURE:A|B`."""
from typing import Dict, List, Optional, Sequence

from ..files import replacing_path
from .stats import Comparison

LABELS = {
    "n": "N (tokens)",
    "windows": "windows",
    "ap": "AP",
    "ape": "APE",
    "ape_normalized": "APE / log(N−1)",
    "mean_entropy": "mean attention entropy (nats)",
    "mean_normalized_entropy": "mean normalised attention entropy",
}


def draw(comparisons: Sequence[Comparison], title: Optional[str] = None, style: str = "point"):
    """The figure (a matplotlib Figure) of some measures' comparisons. style: "point" (means as points, the axis
    fitted to the data) or "bar" (bars from zero)."""
    import numpy as np

    from ..plots import _matplotlib

    plt = _matplotlib()  # Agg unless a notebook chose its backend

    if style not in ("point", "bar"):
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"figure style {style!r}: expected point or bar")
    if not comparisons:
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError("no measures to draw")
    figure, axes = plt.subplots(1, len(comparisons), figsize=(1.4 + 3.4 * len(comparisons), 4.8), squeeze=False)
    for axis, comparison in zip(axes[0], comparisons):
        groups = comparison.groups
        x = np.arange(len(groups))
        means = np.array([s.mean for s in comparison.summaries])
        sds = np.nan_to_num(np.array([s.sd for s in comparison.summaries]))
        colors = [plt.get_cmap("tab10")(k % 10) for k in range(len(groups))]
        if style == "bar":
            axis.bar(x, means, yerr=sds, capsize=6, color=colors, alpha=0.75, edgecolor="black", linewidth=0.8,
                     error_kw={"elinewidth": 1.2})
        else:
            for k in range(len(groups)):
                axis.errorbar(x[k], means[k], yerr=sds[k], fmt="o", color=colors[k], capsize=7, markersize=8,
                              elinewidth=1.5)
        label = LABELS.get(comparison.measure, comparison.measure)
        axis.set_title(label)
        axis.set_ylabel(label)
        axis.set_xticks(x)
        axis.set_xticklabels([f"{g}\n(n={s.n})" for g, s in zip(groups, comparison.summaries)])
        axis.set_xlim(-0.6, len(groups) - 0.4)
        _brackets(axis, comparison, means, sds, zero=style == "bar")
        axis.spines["top"].set_visible(False)
        axis.spines["right"].set_visible(False)
    test = comparisons[0].pairs[0].test if comparisons[0].pairs else "pairwise tests"
    figure.text(0.5, 0.01, f"mean ± 1 SD; brackets: {test} tests, Bonferroni-corrected over the pairs\n"
                f"*** p < 0.001, ** p < 0.01, * p < 0.05, n.s. not significant", ha="center", va="bottom",
                fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    return figure


def _brackets(axis, comparison: Comparison, means, sds, zero: bool) -> None:
    import numpy as np

    tops = means + sds
    bottoms = means - sds
    if not np.isfinite(tops).any():
        axis.text(0.5, 0.5, "no values", ha="center", va="center", transform=axis.transAxes)
        return
    low = min(float(np.nanmin(bottoms)), 0.0) if zero else float(np.nanmin(bottoms))
    high = max(float(np.nanmax(tops)), 0.0) if zero else float(np.nanmax(tops))
    span = (high - low) or abs(high) or 1.0
    step, tick = 0.09 * span, 0.025 * span
    index = {g: k for k, g in enumerate(comparison.groups)}
    levels: List[float] = []
    # Short brackets low, long ones above them; each above every mean + SD it spans and every bracket it overlaps.
    placed: Dict[tuple, float] = {}
    for pair in sorted(comparison.pairs, key=lambda p: (abs(index[p.group_b] - index[p.group_a]), index[p.group_a])):
        a, b = sorted((index[pair.group_a], index[pair.group_b]))
        spanned = tops[a:b + 1]
        base = (float(np.nanmax(spanned)) if np.isfinite(spanned).any() else high) + step * 0.5
        for (pa, pb), level in placed.items():
            if not (pb < a or b < pa):
                base = max(base, level + step)
        placed[(a, b)] = base
        levels.append(base)
        key = f"{comparison.measure}:{pair.group_a}|{pair.group_b}"
        line, = axis.plot([a, a, b, b], [base - tick, base, base, base - tick], color="black", linewidth=1.0)
        line.set_gid(f"bracket:{key}")
        text = axis.text((a + b) / 2, base, pair.stars, ha="center", va="bottom",
                         fontsize=11 if pair.stars != "n.s." else 9)
        text.set_gid(f"label:{key}")
    if levels:
        axis.set_ylim(top=max(levels) + step * 1.2)


def save(figure, stem: str) -> List[str]:
    """Writes STEM.png and STEM.svg; returns their paths."""
    import matplotlib

    paths = []
    for extension in (".png", ".svg"):
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            with replacing_path(stem + extension) as temporary:
                figure.savefig(temporary, dpi=150, format=extension[1:])
        paths.append(stem + extension)
    return paths
