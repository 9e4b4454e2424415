"""`attnprox.study`: a corpus scored with one model into a resumable store, compared between groups, reported.

One study, in the order data flows:
  1. the corpus is read (`corpus`), every text tokenized with the model file's tokenizer, and quality control
     leaves out what cannot be compared (`quality`);
  2. the store (`store`) resumes the run with the same configuration, or starts one; texts already scored are
     skipped;
  3. the rest is cut into batches of similar length within a token budget (`scoring.batches_of`) and scored in
     this process or on Dask workers (`execute`), each batch's rows written to the store as it finishes;
  4. the run's rows are compared between groups (`stats`), and the table, the report and the figure written
     (`report`, `figure`).
"""
import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from .. import batching, default_model
from ..errors import InvalidArgumentError
from ..files import write_text
from ..metrics import policy_name
from . import corpus as corpora
from . import figure as figures
from . import quality, report
from .corpus import Corpus, Dropped
from .execute import Plan, Timing, run_batches
from .model_file import ModelFile
from .scoring import Batch, Scoring, batches_of
from .stats import Comparison, compare
from .store import Store

DEFAULT_TOKEN_BUDGET = batching.DEFAULT_TOKEN_BUDGET
COMPARED = ("n", "ap", "ape", "ape_normalized", "mean_entropy", "mean_normalized_entropy")
FIGURE_MEASURES = ("ap", "ape_normalized")


@dataclass
class Study:
    """What `attnprox.study` did and found."""

    run_id: int
    store: str                                   # the SQLite file
    config: dict                                 # what identifies the run
    groups: List[str]
    matched: bool
    rows: List[dict]                             # the compared texts' rows (one per text and layer)
    comparisons: Dict[int, Dict[str, Comparison]]  # layer → measure → tests
    quality: List[Dropped]                       # what was left out, and why
    windowed: List[dict]                         # texts run in windows: text_id, group, n, windows
    files: Dict[str, str] = field(default_factory=dict)
    scored: int = 0                              # texts scored in this call
    skipped: int = 0                             # texts the store already had
    wall_seconds: float = 0.0                    # this call, from reading the corpus to the last row stored
    timing: Optional[Timing] = None              # of which starting the workers and scoring

    def comparison(self, measure: str = "ap", layer: Optional[int] = None) -> Comparison:
        """The tests of one measure (at the first layer studied unless `layer`)."""
        layer = next(iter(self.comparisons)) if layer is None else layer
        if layer not in self.comparisons:
            raise InvalidArgumentError(f"layer {layer} was not studied (layers {list(self.comparisons)})")
        if measure not in self.comparisons[layer]:
            raise InvalidArgumentError(f"measure {measure!r} is not one of {', '.join(self.comparisons[layer])}")
        return self.comparisons[layer][measure]

    def __repr__(self) -> str:
        return (f"<attnprox.studies.Study run {self.run_id} in {self.store}: {len(self.rows)} rows, groups "
                f"{', '.join(self.groups)}, {len(self.quality)} left out, {self.scored} scored now, "
                f"{self.skipped} from before>")


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def study(corpus: Union[Corpus, str, Sequence[str]], model=None, out: Optional[str] = "study", *,
          store: Optional[str] = None, layers=None, policy: Optional[str] = None, per_token: bool = False,
          window: Optional[int] = None, stride: Optional[int] = None, device: str = "cpu",
          dtype: Optional[str] = None, workers: Optional[int] = None, threads: Optional[int] = None,
          scheduler: Optional[str] = None, workers_per_gpu: int = 1,
          token_budget: int = DEFAULT_TOKEN_BUDGET, new_run: bool = False,
          progress: bool = True, figure_measures: Sequence[str] = FIGURE_MEASURES, figure_style: str = "point",
          title: Optional[str] = None, rope: bool = False) -> Study:
    """Scores every text of a corpus with one model, stores the rows (resumable), compares the groups and writes
    the table, the report and the figure into `out`.

    corpus: a `Corpus` (attnprox.studies.onestopenglish / folders / glob / table), or what the command line takes:
        ["onestopenglish", DIR], a .csv/.jsonl table, a glob, or folders ("NAME=DIR" or DIR).
    model: a model file path or a loaded `attnprox.Model` (None or "default": attnprox's default model).
    out: the folder for study.sqlite, texts.csv, texts.json, stats.csv, report.md and figure.png/.svg (None:
        only the store, which must then be given).
    layers: "last" (default), "all", a layer number or a list; policy: the APE policy (default shift);
    per_token: also store AP_i, iAPE_i and the tokens of every text; window, stride: `Model.run_windows` for texts
        longer than the model's positions.
    device, dtype: where and how the model runs.
    workers: Dask worker processes (default one per core, or one per GPU with device="cuda"; 0: in this process,
        without Dask); threads: libtorch threads per worker (default cores / workers; in this process, libtorch's
        default); workers_per_gpu: with device="cuda", workers sharing each GPU (default 1); scheduler: the address
        of an existing Dask cluster instead of a local one.
    token_budget: padded tokens per batch (default attnprox.batching's). new_run: start a new run beside the
        store's runs of other configurations instead of refusing.
    rope: measure the queries and keys after the rotary embedding (default: before it, as the original Attention
        Proximity code; docs/measurements.md §1).
    """
    import attnprox

    started = time.perf_counter()
    if out is None and store is None:
        raise InvalidArgumentError("give out= (a folder) or store= (an SQLite file)")
    if not isinstance(corpus, Corpus):
        corpus = corpora.from_sources([corpus] if isinstance(corpus, str) else list(corpus))
    unknown = [m for m in figure_measures if m not in COMPARED]
    if unknown:
        raise InvalidArgumentError(f"figure measure(s) {', '.join(unknown)} not among {', '.join(COMPARED)}")
    if isinstance(model, attnprox.Model):
        model = model.path
    model_file = ModelFile.read(default_model.resolve(model))
    if model is None or model_file.path != os.path.abspath(str(model)):  # the default model
        model_file.given = f"attnprox's default model ({os.path.basename(model_file.path)})"
    if model_file.tokenizer is None:
        raise InvalidArgumentError(f"model file '{model_file.path}' has no tokenizer.json: a study runs texts")
    chosen_layers = model_file.resolve_layers(layers)
    plan = Plan(device=device, workers=workers, threads=threads, scheduler=scheduler,
                workers_per_gpu=workers_per_gpu)
    scoring = Scoring(model_file.path, "cuda" if plan.gpus else device, dtype, plan.threads, tuple(chosen_layers),
                      policy_name(policy), bool(per_token), window, stride, token_budget, bool(rope))
    config = {"model_sha256": model_file.sha256, "attnprox_version": attnprox.__version__,
              "policy": scoring.policy, "layers": chosen_layers, "rope": scoring.rope,
              "windowing": {"strategy": "run_windows", "window": window, "stride": stride},
              "per_token": scoring.per_token, "dtype": dtype or model_file.manifest.get("dtype"),
              "device": "cuda" if device.startswith("cuda") else device}
    about = {"model_file": model_file.given, "family": model_file.manifest.get("family"),
             "captured_layers": model_file.captured_layers, "max_positions": model_file.max_positions,
             "corpus": corpus.name}

    # 1. quality control before scoring
    counted, untokenized = quality.tokenized(corpus, model_file)
    tokens = {item.id: count for item, count in counted}
    items, dropped = quality.complete_sets(corpus, [item for item, _ in counted],
                                           list(corpus.dropped) + untokenized)
    if not items:
        reasons = "; ".join(f"{d.id}: {d.reason}" for d in dropped[:5])
        more = "; …" if len(dropped) > 5 else ""
        raise InvalidArgumentError(f"no text of the corpus can be studied ({reasons}{more})")

    # 2. the store
    if out is not None:
        os.makedirs(out, exist_ok=True)
    store_path = store or os.path.join(out, "study.sqlite")
    with Store(store_path) as db:
        run_id = db.open_run(config, about, new_run=new_run)
        db.set_quality(run_id, dropped)
        digests = {item.id: text_sha256(item.text) for item in items}
        done = db.done(run_id)
        db.forget(run_id, [i for i in digests if i in done and done[i] != digests[i]])

        # 3. batches of what is not done yet
        batches = batches_of([(item.id, item.text, tokens[item.id]) for item in items], token_budget,
                             model_file.max_positions)
        pending = [b for b in batches if any(done.get(ident) != digests[ident] for ident in b.ids)]
        by_id = {item.id: item for item in items}
        session = db.start_session(run_id, plan.describe())
        scored = 0

        def on_batch(batch: Batch, rows: List[dict]) -> None:
            nonlocal scored
            for row in rows:
                item = by_id[row["text_id"]]
                row.update(grp=item.group, match=item.match, text_sha256=digests[item.id])
            db.write(run_id, rows)
            db.count_scored(session, len(batch.texts))
            scored += len(batch.texts)

        skipped = len(items) - sum(len(b.texts) for b in pending)
        timing = run_batches(scoring, pending, plan, on_batch, progress=progress, done_before=skipped)
        wall = time.perf_counter() - started
        db.end_session(session, scored, wall, timing.start_seconds, timing.scoring_seconds)

        # 4. compare, report
        rows = [r for r in db.rows(run_id, per_token=False) if r["text_id"] in digests
                and r["text_sha256"] == digests[r["text_id"]]]
        errors = {r["text_id"]: r["error"] for r in rows if r["error"]}
        compared, failed = quality.after_scoring(corpus, items, errors)
        dropped = dropped + failed
        db.set_quality(run_id, dropped)
        kept = {item.id for item in compared}
        rows = [r for r in rows if r["text_id"] in kept]
        comparisons, excluded = _compare(rows, corpus, chosen_layers)
        windowed = [{"text_id": r["text_id"], "group": r["grp"], "n": r["n"], "windows": r["windows"]} for r in rows
                    if r["layer"] == chosen_layers[0] and (r["windows"] or 1) > 1]
        order = {g: k for k, g in enumerate(corpus.groups)}
        windowed.sort(key=lambda w: (order[w["group"]], w["text_id"]))
        result = Study(run_id, store_path, config, list(corpus.groups), corpus.matched, rows, comparisons, dropped,
                       windowed, scored=scored, skipped=skipped, wall_seconds=wall, timing=timing)
        if out is not None:
            result.files = _write_outputs(out, db, result, model_file, corpus, figure_measures, figure_style, title,
                                          excluded)
    return result


def _compare(rows: List[dict], corpus: Corpus, layers: Sequence[int]):
    comparisons: Dict[int, Dict[str, Comparison]] = {}
    excluded: Dict[int, Dict[str, int]] = {}
    for layer in layers:
        at_layer = [r for r in rows if r["layer"] == layer]
        comparisons[layer], excluded[layer] = {}, {}
        for measure in COMPARED:
            values: Dict[str, Dict[str, float]] = {g: {} for g in corpus.groups}
            keys = set()
            for r in at_layer:
                key = r["match"] if corpus.matched else r["text_id"]
                keys.add(key)
                value = r[measure]
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    values[r["grp"]][key] = float(value)
            comparison = compare(measure, values, corpus.groups, corpus.matched)
            comparisons[layer][measure] = comparison
            kept = set.intersection(*(set(v) for v in values.values())) if corpus.matched else \
                set().union(*(set(v) for v in values.values()))
            if len(keys) - len(kept):
                excluded[layer][measure] = len(keys) - len(kept)
    return comparisons, excluded


def _write_outputs(out: str, db: Store, result: Study, model_file: ModelFile, corpus: Corpus,
                   figure_measures: Sequence[str], figure_style: str, title: Optional[str],
                   excluded: Dict[int, Dict[str, int]]) -> Dict[str, str]:
    from ..plots import _matplotlib

    files = {"store": result.store,
             "texts_csv": db.export_csv(result.run_id, os.path.join(out, "texts.csv")),
             "texts_json": db.export_json(result.run_id, os.path.join(out, "texts.json")),
             "stats_csv": report.write_stats_csv(result.comparisons, os.path.join(out, "stats.csv"))}
    title = title or f"{corpus.name}: {os.path.basename(model_file.path)}"
    drawn: Dict[int, List[str]] = {}
    for layer, by_measure in result.comparisons.items():
        stem = os.path.join(out, "figure" if len(result.comparisons) == 1 else f"figure-layer{layer}")
        fig = figures.draw([by_measure[m] for m in figure_measures], title=f"{title}, layer {layer}",
                           style=figure_style)
        drawn[layer] = figures.save(fig, stem)
        _matplotlib().close(fig)
        files[f"figure_{layer}_png"], files[f"figure_{layer}_svg"] = drawn[layer]
    config = result.config
    windowing = config["windowing"]
    facts = {
        "model file": f"{model_file.given} (SHA-256 {model_file.sha256[:16]}…, {model_file.manifest.get('family')}, "
                      f"layers {','.join(map(str, model_file.captured_layers))} captured, "
                      f"{model_file.max_positions} positions)",
        "attnprox": config["attnprox_version"],
        "layers": ", ".join(map(str, config["layers"])),
        "APE policy": config["policy"],
        "queries and keys": "after RoPE (rope=True)" if config.get("rope") else "before RoPE (the default)",
        "long texts": f"Model.run_windows (window {windowing['window'] or 'default'}, "
                      f"stride {windowing['stride'] or 'default'})",
        "store": f"{os.path.basename(result.store)}, run {result.run_id}",
        "texts compared": _counts(result, corpus),
    }
    text = report.markdown(title, facts, [{"item": d.id, "reason": d.reason} for d in result.quality],
                           corpus.matched, result.comparisons, drawn, result.windowed,
                           db.sessions(result.run_id), excluded)
    files["report"] = os.path.join(out, "report.md")
    write_text(files["report"], text)
    return files


def _counts(result: Study, corpus: Corpus) -> str:
    first = [r for r in result.rows if r["layer"] == result.config["layers"][0]]
    per_group = ", ".join(f"{g} {sum(1 for r in first if r['grp'] == g)}" for g in corpus.groups)
    sets = f"; {len({r['match'] for r in first})} complete match sets" if corpus.matched else ""
    return f"{len(first)} ({per_group}){sets}"
