"""The study's report: what was run (model, configuration, quality control, windowed texts, time), and per layer and
measure the groups' descriptive statistics and tests, as Markdown (`report.md`) and CSV (`stats.csv`)."""
import csv
import math
import os
from typing import Dict, List, Sequence

from ..files import replacing
from .figure import LABELS
from .stats import Comparison, stars


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e5):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}f}"


def _p(value) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "< 1e-16" if value < 1e-16 else f"{value:.3g}"


def markdown(title: str, facts: Dict[str, str], quality: Sequence[dict], matched: bool,
             comparisons: Dict[int, Dict[str, Comparison]], figures: Dict[int, List[str]], windowed: List[dict],
             sessions: Sequence[dict], excluded: Dict[int, Dict[str, int]]) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in facts.items()]
    lines += ["", "## Quality control", ""]
    if not quality:
        lines.append("Every text was read, tokenized and scored.")
    else:
        what = ("match set" if matched else "text") + ("s" if len(quality) > 1 else "")
        lines += [f"{len(quality)} {what} left out:", "", "| left out | why |", "| --- | --- |"]
        for entry in quality:
            lines.append(f"| {_cell(entry['item'])} | {_cell(entry['reason'])} |")
    lines += ["", "## Texts longer than the model's positions", ""]
    if not windowed:
        lines.append("None: every text ran whole.")
    else:
        by_group = {}
        for w in windowed:
            by_group[w["group"]] = by_group.get(w["group"], 0) + 1
        counts = ", ".join(f"{_cell(g)} {n}" for g, n in by_group.items())
        lines += [f"{len(windowed)} text{'s' if len(windowed) > 1 else ''} ran in windows (`Model.run_windows`): "
                  f"{counts}. A windowed text's values gather its windows' (docs/long-texts.md); where groups differ "
                  f"in how many of their texts ran in windows, compare with that in mind.", "",
                  "<details><summary>The windowed texts</summary>", "", "| text | group | N | windows |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {_cell(w['text_id'])} | {_cell(w['group'])} | {w['n']} | {w['windows']} |" for w in windowed]
        lines += ["", "</details>"]
    for layer, by_measure in comparisons.items():
        lines += ["", f"## Layer {layer}", ""]
        for path in figures.get(layer, []):
            if path.endswith(".png"):
                lines += [f"![figure]({os.path.basename(path)})", ""]
        for measure, comparison in by_measure.items():
            lines += [f"### {LABELS.get(measure, measure)}", ""]
            left = excluded.get(layer, {}).get(measure)
            if left:
                lines += [f"{left} {'match set(s)' if matched else 'text(s)'} without a defined value left out.", ""]
            lines += ["| group | n | mean | SD | median |", "| --- | --- | --- | --- | --- |"]
            for s in comparison.summaries:
                lines.append(f"| {_cell(s.group)} | {s.n} | {_number(s.mean)} | {_number(s.sd)} | "
                             f"{_number(s.median)} |")
            lines.append("")
            if comparison.pairs:
                test = comparison.pairs[0].test
                lines += [f"{test} tests, Bonferroni-corrected over {len(comparison.pairs)} pair(s); r is the "
                          f"{'matched-pairs ' if matched else ''}rank-biserial correlation (> 0: the second group "
                          f"is higher).", "",
                          "| pair | n | statistic | p | p corrected | | r | direction | mean difference |",
                          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
                for t in comparison.pairs:
                    lines.append(f"| {_cell(t.group_a)} – {_cell(t.group_b)} | {t.n} | {_number(t.statistic, 2)} | "
                                 f"{_p(t.p)} | {_p(t.p_corrected)} | {stars(t.p_corrected)} | "
                                 f"{_number(t.rank_biserial, 3)} | {_cell(t.direction)} | "
                                 f"{_number(t.mean_difference)} |")
                lines.append("")
            if comparison.omnibus is not None:
                o = comparison.omnibus
                symbol = "χ²" if o.test == "Friedman" else "H"
                lines += [f"{o.test} test across the groups: {symbol} = {_number(o.statistic, 3)}, p = {_p(o.p)} "
                          f"(n = {o.n}).", ""]
            elif comparison.note:
                lines += [comparison.note, ""]
    if sessions:
        lines += ["## Sessions", "", "Wall time from reading the corpus to the last row stored; of which starting the "
                  "workers (and loading the model) and scoring.", "",
                  "| started | finished | texts scored | wall time (s) | starting (s) | scoring (s) | texts/s | "
                  "workers | machine |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for s in sessions:
            def seconds(key):
                return "–" if s[key] is None else f"{s[key]:.1f}"
            rate = (f"{s['texts_scored'] / s['scoring_seconds']:.2f}" if s["scoring_seconds"] and s["texts_scored"]
                    else "–")
            lines.append(f"| {s['started']} | {s['finished'] or 'did not finish'} | {s['texts_scored']} | "
                         f"{seconds('wall_seconds')} | {seconds('start_seconds')} | {seconds('scoring_seconds')} | "
                         f"{rate} | {_cell(s['workers'] or '')} | {_cell(s['machine'] or '')} |")
        lines.append("")
    return "\n".join(lines)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


STATS_COLUMNS = ("layer", "measure", "kind", "test", "group", "group_a", "group_b", "n", "mean", "sd", "median",
                 "statistic", "p", "p_corrected", "stars", "rank_biserial", "direction", "mean_difference")


def stats_rows(comparisons: Dict[int, Dict[str, Comparison]]) -> List[dict]:
    rows = []
    for layer, by_measure in comparisons.items():
        for measure, c in by_measure.items():
            for s in c.summaries:
                rows.append({"layer": layer, "measure": measure, "kind": "group", "group": s.group, "n": s.n,
                             "mean": s.mean, "sd": s.sd, "median": s.median})
            for t in c.pairs:
                rows.append({"layer": layer, "measure": measure, "kind": "pair", "test": t.test,
                             "group_a": t.group_a, "group_b": t.group_b, "n": t.n, "statistic": t.statistic,
                             "p": t.p, "p_corrected": t.p_corrected, "stars": t.stars,
                             "rank_biserial": t.rank_biserial, "direction": t.direction,
                             "mean_difference": t.mean_difference})
            if c.omnibus is not None:
                o = c.omnibus
                rows.append({"layer": layer, "measure": measure, "kind": "omnibus", "test": o.test, "n": o.n,
                             "statistic": o.statistic, "p": o.p})
    return rows


def write_stats_csv(comparisons: Dict[int, Dict[str, Comparison]], path: str) -> str:
    with replacing(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=STATS_COLUMNS)
        writer.writeheader()
        for row in stats_rows(comparisons):
            writer.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else
                                 repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return path
