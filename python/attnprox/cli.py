"""The `attnprox` command line.

    attnprox info [MODEL]                             what a model file holds
    attnprox score [MODEL] (--text T | --file F | --ids 1,2,3)...
                                                      N, AP, APE, length-corrected APE (a table, or --json)
    attnprox heatmap [MODEL] (--text T | --file F | --ids ...) --out FILE.png|.svg|.pdf|.html
                                                      pictures: one head, the layer's heads, the average, the grid
                                                      of every layer × head, the proximity matrix, AP as coloured
                                                      text; .html is the interactive view (two inputs: the two
                                                      texts side by side, one colour range)
    attnprox export MODEL OUT                         a Hugging Face model → model file, through transformers,
                                                      verified against output_attentions=True
    attnprox export-reference HF_DIR OUT              a Hugging Face directory → model file (reference families,
                                                      no transformers)
    attnprox study CORPUS... --out DIR                a corpus scored into a resumable store, groups compared
                                                      (Wilcoxon, Friedman), a report and a figure
    attnprox set-tokenizer MODEL TOKENIZER.json       give a model file the tokenizer it was made without

MODEL is a model file, given first or as -m/--model; without it, the default model (attnprox.load()).

Exit codes: 0 success, 1 an error attnprox reports (message on stderr), 2 wrong usage.
"""
import argparse
import json
import os
import sys
from typing import List, Optional

from .errors import InvalidArgumentError
from .checks import MAX_THREADS
from .files import check_output

# The most worker processes `study --workers` starts (more would exhaust the machine's processes).
MAX_WORKERS = 1024
from .layers import parse_layers


def _ids(text: str) -> List[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integer token ids") from None


class _Input(argparse.Action):
    """--text, --file and --ids append (kind, value) to one list, so that inputs keep their command-line order."""

    def __call__(self, parser, namespace, value, option_string=None):
        inputs = getattr(namespace, "inputs", None) or []
        inputs.append((self.dest, value))
        setattr(namespace, "inputs", inputs)


def _add_inputs(parser: argparse.ArgumentParser, many: bool) -> None:
    more = "; repeat for several" if many else ""
    parser.set_defaults(inputs=None, lines=False)
    parser.add_argument("--text", action=_Input, help=f"a text{more}")
    parser.add_argument("--file", action=_Input,
                        help=f"a UTF-8 text file, read as one text ('-': standard input){more}")
    parser.add_argument("--ids", type=_ids, action=_Input, help=f"comma-separated token ids{more}")
    if many:
        parser.add_argument("--lines", action="store_true",
                            help="each line of every --file is a text of its own (blank lines skipped)")


def _add_model(parser: argparse.ArgumentParser) -> None:
    """MODEL, first or as -m/--model; neither: the default model."""
    parser.add_argument("model", nargs="?", help="model file (default: the default model)")
    parser.add_argument("-m", "--model", dest="model_option", metavar="MODEL", help="model file, as the first argument")


def _model_path(args) -> Optional[str]:
    if args.model is not None and args.model_option is not None:
        raise UsageError(f"two models given: {args.model} and --model {args.model_option}")
    return args.model if args.model is not None else args.model_option


def _layers(text: str) -> str:
    """--layers: all, last, or comma-separated layer numbers (negative from the end), checked as written."""
    try:
        parse_layers(text)
    except InvalidArgumentError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--layer", type=int, default=-1,
                        help="layer: the model's own number, negative from the last captured (default -1)")
    parser.add_argument("--layers", default=None, type=_layers,
                        help="captured layers to keep: all, last or comma-separated numbers; the forward stops "
                        "after the last of them (default: score keeps --layer only, heatmap all)")


SCORE_JSON = """--json writes one list, one object per input in input order:
  {"input": {"text": K} | {"file": PATH} | {"file": PATH, "line": L} | {"ids": K},
   "n": tokens, "ap": AP, "ape": APE, "ape_normalized": APE / log(N-1), "ape_undefined_rows": R, "policy": P,
   "mean_entropy": H, "mean_normalized_entropy": H', "max_weight": W, "most_attended": J,
   with --windows "windows": the number of windows, with --tokens "tokens", "ap_tokens", "ape_tokens"}
K counts the --text (or --ids) options from 0, L the file's lines from 1; PATH "-" is standard input. AP and APE
are null for a one-token input (undefined for N = 1; the table shows n/a). An input that failed:
  {"input": ..., "error": "the message"}"""


class UsageError(Exception):
    """Wrong use of the command line (exit code 2)."""


class Input:
    """One input of the command line: a text (given, or read from a file) or token ids, and how to name it: its
    `label` is what --json writes as "input" ({"text": K}, {"file": PATH}, {"file": PATH, "line": L}, {"ids": K})."""

    def __init__(self, label: dict, text: Optional[str] = None, ids: Optional[List[int]] = None):
        self.label, self.text, self.ids = label, text, ids

    def shown(self) -> str:
        """A short name for tables: the file, or the start of the text, or of the ids."""
        if "file" in self.label:
            name = "<stdin>" if self.label["file"] == "-" else self.label["file"]
            return f"{name}:{self.label['line']}" if "line" in self.label else name
        shown = " ".join(self.text.split()) if self.text is not None else ",".join(map(str, self.ids))
        if not shown:
            return "(an empty text)" if self.text is not None else "(no ids)"
        return shown if len(shown) < 50 else shown[:47] + "..."


def _read_inputs(args) -> List[Input]:
    """Every --text, --file and --ids given, in their order."""
    inputs = []
    counts = {"text": 0, "ids": 0}
    for kind, value in args.inputs or []:
        if kind == "file":
            text = _read_file(value)
            if args.lines:
                inputs += [Input({"file": value, "line": number}, text=line)
                           for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
            else:
                inputs.append(Input({"file": value}, text=text))
        elif kind == "text":
            inputs.append(Input({"text": counts["text"]}, text=value))
        else:
            inputs.append(Input({"ids": counts["ids"]}, ids=value))
        if kind in counts:
            counts[kind] += 1
    if not inputs:
        raise UsageError("--lines found no text in the files" if args.inputs else "give --text, --file or --ids")
    return inputs


def _read_file(path: str) -> str:
    """A UTF-8 text file (or standard input for '-'), without the byte-order mark editors may write."""
    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8-sig")
    with open(path, encoding="utf-8-sig") as f:
        return f.read()


def _run_inputs(model, inputs: List[Input], **options):
    """Yields (index, Result or attnprox.Error) for every input as its micro-batch finishes (texts, then ids)."""
    texts = [k for k, item in enumerate(inputs) if item.text is not None]
    ids = [k for k, item in enumerate(inputs) if item.text is None]
    if texts:
        for k, result in model.stream(text=[inputs[k].text for k in texts], errors="yield", **options):
            yield texts[k], result
    if ids:
        for k, result in model.stream(ids=[inputs[k].ids for k in ids], errors="yield", **options):
            yield ids[k], result


def _picture_inputs(args, html: bool) -> List[Input]:
    """The inputs a picture shows: one, or two side by side in an .html page."""
    inputs = _read_inputs(args)
    if html and len(inputs) > 2:
        raise UsageError(f"an .html page shows one text or compares two: {len(inputs)} were given")
    if len(inputs) != 1 and not (html and len(inputs) == 2):
        raise UsageError("a picture shows one text: give one of --text, --file, --ids (two make a comparison, "
                         "in an .html page only)")
    return inputs


def _run_one(model, item: Input):
    return model.run(text=item.text) if item.text is not None else model.run(ids=item.ids)


class Progress:
    """A progress bar on stderr (tqdm) while long work runs: only when stderr is a terminal, not with --quiet, and
    not when tqdm is missing. `step(n)` advances it; `stage(name)` advances through named stages."""

    def __init__(self, args, total: int, unit: str, description: str = ""):
        self.bar, self.staged = None, False
        if getattr(args, "quiet", False) or not sys.stderr.isatty() or total < 1:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, unit=unit, desc=description, file=sys.stderr, leave=False, dynamic_ncols=True)

    def step(self, count: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def stage(self, name: str) -> None:
        """The next stage of an export begins (the one before it is done)."""
        if self.bar is not None:
            if self.staged:
                self.bar.update(1)
            self.staged = True
            self.bar.set_postfix_str(name)

    def message(self, text: str) -> None:
        """A line on stderr, above the bar."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class InOrder:
    """Hands rows to `emit` in input order: row k as soon as rows 0..k-1 have been handed on."""

    def __init__(self, emit):
        self.emit, self.waiting, self.next = emit, {}, 0

    def add(self, index: int, row) -> None:
        self.waiting[index] = row
        while self.next in self.waiting:
            self.emit(self.next, self.waiting.pop(self.next))
            self.next += 1


def _cmd_info(args) -> int:
    import attnprox

    model = attnprox.load(_model_path(args), device=args.device)
    if args.json:
        print(json.dumps(model.manifest, indent=2))
        return 0
    m = model.manifest
    print(f"model file      {model.path}")
    print(f"family          {m['family']} ({m.get('model_type', '?')}), from {m.get('source', '?')}")
    print(f"layers          {m['num_layers']}, captured {m['captured_layers']}")
    print(f"heads           H={m['num_heads']} query, Hkv={m['num_kv_heads']} key/value, d={m['head_dim']}")
    print(f"attention       {'causal' if m['causal'] else 'bidirectional'}, max {m['max_positions']} positions")
    windows = {e['index']: e['sliding_window'] for e in m['layers'] if e.get('sliding_window')}
    if windows:
        print(f"sliding windows {windows}")
    print(f"vocabulary      {m['vocab_size']} ids, dtype {m['dtype']}, running on {model.device}")
    tokenizer = model.tokenizer
    print(f"tokenizer       {'yes, ' + str(tokenizer.vocab_size) + ' ids' if tokenizer else 'none (ids only)'}")
    exporter = m.get("exporter", {})
    print(f"written by      {exporter.get('name', '?')} (attnprox {exporter.get('attnprox', '?')}, "
          f"torch {exporter.get('torch', '?')})")
    return 0


def _score_row(item: Input, result, args, layer: int) -> dict:
    """The scores of one input (a Result, or a Windowed with --windows) at `layer`."""
    import attnprox

    row = {"input": item.label}
    if isinstance(result, attnprox.Windowed):
        ape = result.ape(layer, args.policy, rope=args.rope)
        row.update({"n": result.n, "windows": len(result.windows), "ap": result.ap(layer, rope=args.rope),
                    "ape": None if ape != ape else float(ape), "ape_normalized": ape.normalized,
                    "ape_undefined_rows": ape.undefined_rows})
        tokens = result.tokens or [str(i) for i in result.ids]
    else:
        row.update(result.summary(layer, args.policy, rope=args.rope))
        tokens = result.token_texts or [str(i) for i in result.ids]
    row["policy"] = args.policy or attnprox.metrics.DEFAULT_APE_POLICY
    if args.tokens:
        row["tokens"] = tokens
        if row["n"] < 2:  # AP and APE are undefined for one token
            row["ap_tokens"] = row["ape_tokens"] = [None] * row["n"]
        else:
            row["ap_tokens"] = [float(x) for x in result.ap_tokens(layer, rope=args.rope)]
            row["ape_tokens"] = [None if x != x else float(x)
                                 for x in result.ape_tokens(layer, args.policy, rope=args.rope)]
    return row


def _number(value, width: int, decimals: int = 6, undefined: str = "n/a") -> str:
    return f"{undefined:>{width}}" if value is None else f"{value:>{width}.{decimals}f}"


def _print_row(row: dict, args) -> None:
    if "error" in row:
        print(f"{'-':>6}  {'failed':>10}  {'':>10}  {'':>12}  {row['shown']}", flush=True)
        return
    one = row["n"] < 2  # AP and APE need two tokens
    ape = _number(row["ape"], 10, undefined="n/a" if one else "undefined")
    normalized = _number(row["ape_normalized"], 12, undefined="n/a" if one else "-")
    windows = f"  ({row['windows']} windows)" if "windows" in row else ""
    print(f"{row['n']:>6}  {_number(row['ap'], 10)}  {ape}  {normalized}  {row['shown']}{windows}")
    if row["ape_undefined_rows"]:
        print(f"        ({row['ape_undefined_rows']} rows undefined under the {row['policy']} policy)")
    if args.tokens:
        for index, (t, ap, ape_i) in enumerate(zip(row["tokens"], row["ap_tokens"], row["ape_tokens"])):
            ap_text = "n/a" if ap is None else f"{ap:+.4f}"
            ape_text = ("n/a" if one else "undefined") if ape_i is None else f"{ape_i:.4f}"
            print(f"        {index:>5}  {t.strip() or repr(t):>16}  AP_i {ap_text:>7}  iAPE_i {ape_text}")
    sys.stdout.flush()


def _cmd_score(args) -> int:
    import attnprox

    if args.max_length is not None and not args.truncate:
        raise UsageError("--max-length needs --truncate")
    if (args.window is not None or args.stride is not None) and not args.windows:
        raise UsageError("--window and --stride need --windows")
    if args.windows and args.truncate:
        raise UsageError("--truncate and --windows are two ways of reading a long text: choose one")
    inputs = _read_inputs(args)
    # Without --layers only the measured layer is kept, and the forward stops after its queries and keys.
    model = attnprox.load(_model_path(args), device=args.device,
                          layers=[args.layer] if args.layers is None else args.layers)
    layer = -1 if args.layers is None else args.layer
    if args.windows:
        def results():
            for k, item in enumerate(inputs):
                try:
                    yield k, model.run_windows(text=item.text, ids=item.ids, window=args.window, stride=args.stride,
                                               token_budget=args.token_budget)
                except attnprox.Error as e:
                    yield k, e
    else:
        def results():
            yield from _run_inputs(model, inputs, token_budget=args.token_budget, truncation=args.truncate,
                                   max_length=args.max_length)

    failed = 0

    def emit(index: int, row: dict) -> None:
        if args.json:
            row.pop("shown")
            print(("[" if index == 0 else ",") + json.dumps(row, ensure_ascii=False), flush=True)
        else:
            _print_row(row, args)

    if not args.json:
        print(f"{'N':>6}  {'AP':>10}  {'APE':>10}  {'APE/log(N-1)':>12}  input", flush=True)
    printer = InOrder(emit)
    progress = Progress(args, len(inputs) if len(inputs) > 1 else 0, "text")
    try:
        for index, result in results():
            item = inputs[index]
            if isinstance(result, attnprox.Error):
                failed += 1
                progress.message(f"attnprox score: error: {item.shown()}: {result}")
                row = {"input": item.label, "error": str(result)}
            else:
                row = _score_row(item, result, args, layer)
            row["shown"] = item.shown()
            printer.add(index, row)
            progress.step()
    finally:
        progress.close()
    if args.json:
        print("]", flush=True)
    return 1 if failed else 0


def _cmd_heatmap(args) -> int:
    import attnprox
    from attnprox import plots

    extension = os.path.splitext(args.out)[1].lower()
    if extension not in (".png", ".svg", ".pdf", ".html"):
        raise UsageError(f"--out {args.out}: the picture is written as .png, .svg, .pdf or .html")
    if args.subset is not None and (extension == ".html" or not (args.proximity or args.ap_text)):
        raise UsageError("--subset is drawn by --proximity and --ap-text only (in the .html view, click tokens to "
                         "select them)")
    if args.rope and (extension == ".html" or not (args.proximity or args.ap_text)):
        raise UsageError("--rope applies to --proximity and --ap-text pictures (attention weights are always those "
                         "the attention used; the .html view measures before RoPE)")
    check_output(args.out, [_model_path(args)] + [value for kind, value in args.inputs or [] if kind == "file"],
                 what="--out")
    inputs = _picture_inputs(args, html=extension == ".html")
    model = attnprox.load(_model_path(args), device=args.device, layers=args.layers)
    results = [_run_one(model, item) for item in inputs]
    if extension == ".html":
        if len(results) == 2:
            attnprox.compare(*results, layer=args.layer, temperature=args.temperature).save(args.out)
            print(f"wrote {args.out} (two texts compared, one colour range, layer {args.layer})")
        else:
            results[0].view(args.layer, temperature=args.temperature).save(args.out)
            print(f"wrote {args.out} (interactive view, layer {args.layer})")
        return 0
    (result,) = results
    colors = {"cmap": args.cmap, "vmin": args.vmin, "vmax": args.vmax}
    colors = {k: v for k, v in colors.items() if v is not None}
    if args.grid:
        fig = plots.grid(result, temperature=args.temperature, **colors)
    elif args.average:
        fig = plots.average_attention(result, temperature=args.temperature, **colors)
    elif args.proximity:
        fig = plots.proximity(result, args.layer, subset=args.subset, rope=args.rope, **colors)
    elif args.ap_text:
        fig = plots.ap_text(result, args.layer, subset=args.subset, rope=args.rope, **colors)
    elif args.heads:
        fig = plots.heads(result, args.heads, args.layer, temperature=args.temperature, **colors)
    else:
        fig = plots.attention(result, args.layer, head=args.head, temperature=args.temperature, **colors)
    plots.save(fig, args.out)
    print(f"wrote {args.out}")
    return 0


def _cmd_export(args) -> int:
    from .hf_export import export

    from .hf_export import STAGES

    texts = [args.text] if args.text else None
    progress = Progress(args, len(STAGES), "stage", "export")
    try:
        manifest = export(args.model, args.out, layers=args.layers, dtype=args.dtype, device=args.device,
                          tokenizer=args.tokenizer, verify_texts=texts, check=not args.no_verify,
                          progress=progress.stage)
    finally:
        progress.close()
    crossed = sum(1 for layer in manifest["layers"] if layer.get("cross_attention"))
    print(f"wrote {args.out}: {manifest['family']}, layers {_listed(manifest['captured_layers'])} of "
          f"{manifest['num_layers']} attention layers" + (f" ({crossed} cross-attention)" if crossed else "") +
          f", H={manifest['num_heads']} Hkv={manifest['num_kv_heads']} d={manifest['head_dim']}, "
          f"{manifest['dtype']} on {args.device}")
    if "verification" in manifest:
        v = manifest["verification"]
        worst = max(v["max_abs_diff"], key=lambda i: v["max_abs_diff"][i] / v["allowed"][i])
        print(f"verified against transformers' {v['reference']} on {len(v['inputs'])} inputs: "
              f"max |difference| {max(v['max_abs_diff'].values()):.2e} (closest to its bound: layer {worst}, "
              f"{v['max_abs_diff'][worst]:.2e} of {v['allowed'][worst]:.2e} allowed)")
    else:
        print("not verified (--no-verify)")
    return 0


def _listed(values) -> str:
    values = list(values)
    return ",".join(map(str, values)) if len(values) <= 8 else f"{values[0]}..{values[-1]} ({len(values)})"


def _cmd_export_reference(args) -> int:
    import attnprox

    from .reference.export import STAGES

    progress = Progress(args, len(STAGES), "stage", "export")
    try:
        manifest = attnprox.export_reference(args.hf_dir, args.out, layers=args.layers, dtype=args.dtype,
                                             progress=progress.stage)
    finally:
        progress.close()
    print(f"wrote {args.out}: {manifest['family']}, layers {manifest['captured_layers']} of "
          f"{manifest['num_layers']}, {manifest['dtype']}")
    return 0


def _count(minimum: int, maximum: Optional[int] = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: expected at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value}: expected at most {maximum}")
        return value

    return parse


def _cmd_study(args) -> int:
    from .studies import from_sources, study
    from .studies.figure import LABELS
    from .studies.run import COMPARED, DEFAULT_TOKEN_BUDGET

    measures = [m.strip() for m in args.figure.split(",") if m.strip()]
    unknown = [m for m in measures if m not in COMPARED]
    if unknown or not measures:
        raise UsageError(f"--figure {args.figure}: expected measures among {', '.join(COMPARED)}")
    groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups else None
    corpus = from_sources(args.corpus, pattern=args.pattern, match=None if args.match == "none" else args.match,
                          groups=groups)
    result = study(corpus, model=args.model, out=args.out, store=args.store, layers=args.layers,
                   policy=args.policy, rope=args.rope, per_token=args.tokens, window=args.window, stride=args.stride,
                   device=args.device, dtype=args.dtype, workers=args.workers, threads=args.threads,
                   workers_per_gpu=args.workers_per_gpu,
                   scheduler=args.scheduler, token_budget=args.token_budget or DEFAULT_TOKEN_BUDGET,
                   new_run=args.new_run,
                   progress=not args.quiet, figure_measures=measures, figure_style=args.figure_style)
    compared = len({r["text_id"] for r in result.rows})
    left_out = ("match set" if result.matched else "text") + ("" if len(result.quality) == 1 else "s")
    print(f"run {result.run_id} in {result.store}: {compared} texts compared, {len(result.quality)} {left_out} left "
          f"out, {len(result.windowed)} run in windows; "
          f"{result.scored} scored now, {result.skipped} from before ({result.wall_seconds:.1f} s)")
    for layer, by_measure in result.comparisons.items():
        for measure in measures:
            c = by_measure[measure]
            means = ", ".join(f"{s.group} {s.mean:.4g} ± {s.sd:.2g}" for s in c.summaries)
            print(f"{LABELS.get(measure, measure)}, layer {layer}: {means}")
            for t in c.pairs:
                print(f"    {t.group_a} – {t.group_b}: {t.direction}, p corrected {t.p_corrected:.3g} {t.stars}, "
                      f"r = {t.rank_biserial:+.3f}")
    if result.files:
        print("wrote " + ", ".join(path for key, path in result.files.items() if key != "store"))
    return 0


def _cmd_set_tokenizer(args) -> int:
    import attnprox

    attnprox.set_tokenizer(args.model, args.tokenizer)
    model = attnprox.load(args.model)
    print(f"{args.model} now has the tokenizer of {args.tokenizer} ({model.tokenizer.vocab_size} ids)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnprox", description="What a transformer's attention sees: Q/K per "
                                     "layer and head, rebuilt attention, Attention Proximity.")
    parser.add_argument("--version", action="store_true", help="print the versions of attnprox and libtorch")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="what a model file holds", description="Print a model file's manifest.")
    _add_model(info)
    info.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    info.add_argument("--json", action="store_true", help="the whole manifest as JSON")
    info.set_defaults(run=_cmd_info)

    score = sub.add_parser("score", help="AP and APE of texts or token-id sequences",
                           description="Attention Proximity (AP), Attention Proximity Entropy (APE) and the "
                           "length-corrected APE of texts (through the model file's tokenizer) or token ids. Rows "
                           "come out in input order as they are done; an input that fails is reported on stderr, "
                           "the others are scored, and the exit status is 1.",
                           epilog=SCORE_JSON, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_model(score)
    _add_inputs(score, many=True)
    _add_model_options(score)
    score.add_argument("--policy", choices=["literal", "shift", "clamp", "softmax"], default=None,
                       help="how APE treats negative proximity entries (default shift)")
    score.add_argument("--tokens", action="store_true", help="also per-token AP_i and iAPE_i")
    score.add_argument("--rope", action="store_true",
                       help="measure the queries and keys after the rotary embedding, as the attention used them "
                       "(default: before it, as the original Attention Proximity code)")
    score.add_argument("-q", "--quiet", action="store_true", help="no progress bar (there is one on a terminal)")
    score.add_argument("--json", action="store_true", help="JSON output")
    long = score.add_argument_group("texts longer than the model's positions (docs/long-texts.md)")
    long.add_argument("--truncate", action="store_true",
                      help="cut each input to --max-length tokens, special tokens included (its beginning)")
    long.add_argument("--max-length", type=_count(1),
                      help="with --truncate: tokens kept (default: the model's positions)")
    long.add_argument("--windows", action="store_true",
                      help="read each input in overlapping windows; AP, APE gathered over them")
    long.add_argument("--window", type=_count(1), help="with --windows: tokens of a window, special tokens included "
                      "(default: the model's positions)")
    long.add_argument("--stride", type=_count(1), help="with --windows: tokens between window starts (default: half a "
                      "window)")
    score.add_argument("--token-budget", type=_count(1), default=None,
                       help="most padded tokens run at once (rows × longest; default 512 on the CPU, 8192 on CUDA)")
    score.set_defaults(run=_cmd_score)

    heatmap = sub.add_parser("heatmap", help="pictures of attention and proximity (.png, .svg, .html)",
                             description="Pictures of one text: by default the mean of the layer's heads; "
                             ".html writes the interactive view, and with two inputs (--text A --text B) a page "
                             "that compares the two texts side by side with one colour range.")
    _add_model(heatmap)
    _add_inputs(heatmap, many=False)
    _add_model_options(heatmap)
    heatmap.add_argument("--out", required=True, help="FILE.png, FILE.svg, FILE.pdf or FILE.html")
    what = heatmap.add_mutually_exclusive_group()
    what.add_argument("--head", type=int, help="one head of the layer")
    what.add_argument("--heads", type=_ids, help="several heads of the layer side by side, e.g. 0,3,5")
    what.add_argument("--average", action="store_true", help="the mean over every layer and head")
    what.add_argument("--grid", action="store_true", help="every layer × every head")
    what.add_argument("--proximity", action="store_true", help="the proximity matrix A")
    what.add_argument("--ap-text", action="store_true", help="the text coloured by AP_i (or AP^(S) with --subset)")
    heatmap.add_argument("--subset", type=_ids, help="token positions S for --proximity / --ap-text")
    heatmap.add_argument("--rope", action="store_true",
                         help="--proximity / --ap-text: the queries and keys after the rotary embedding, as the "
                         "attention used them (default: before it, as the original Attention Proximity code)")
    heatmap.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1)")
    heatmap.add_argument("--cmap", help="matplotlib colour map")
    heatmap.add_argument("--vmin", type=float, help="colour range minimum")
    heatmap.add_argument("--vmax", type=float, help="colour range maximum")
    heatmap.set_defaults(run=_cmd_heatmap)

    hf = sub.add_parser("export", help="Hugging Face model → model file, through transformers (verified)",
                        description="Export a Hugging Face model (a directory, or a hub id in the local cache) "
                        "through transformers' attention-function registry, then verify the file against "
                        "output_attentions=True. Layers are the model's attention calls in order (encoder–decoder: "
                        "the encoder's, then each decoder layer's self- and cross-attention).")
    hf.add_argument("model", help="Hugging Face model directory or cached hub id")
    hf.add_argument("out", help="model file to write")
    hf.add_argument("--layers", default="all", type=_layers,
                    help="all, last, or comma-separated layer numbers (default all)")
    hf.add_argument("--dtype", default=None, help="float32, float16 or bfloat16 (default: the model's)")
    hf.add_argument("--device", default="cpu", help="where to trace: cpu, cuda (default cpu)")
    hf.add_argument("--tokenizer", default=None, help="directory with tokenizer.json (default: the model's)")
    hf.add_argument("--text", default=None, help="a text to verify on, besides random ids")
    hf.add_argument("--no-verify", action="store_true", help="skip the check against output_attentions")
    hf.add_argument("-q", "--quiet", action="store_true", help="no progress bar (there is one on a terminal)")
    hf.set_defaults(run=_cmd_export)

    export = sub.add_parser("export-reference", help="Hugging Face directory → model file (no transformers)",
                            description="Export a GPT-2, BERT, DistilBERT, Llama or Qwen3 Hugging Face directory "
                            "(config.json + model.safetensors) with attnprox's own reference architectures.")
    export.add_argument("hf_dir", help="Hugging Face model directory")
    export.add_argument("out", help="model file to write")
    export.add_argument("--layers", default="all", type=_layers,
                        help="all, last, or comma-separated layer numbers (default all)")
    export.add_argument("--dtype", default=None, help="float32, float16 or bfloat16 (default: the weights')")
    export.add_argument("-q", "--quiet", action="store_true", help="no progress bar (there is one on a terminal)")
    export.set_defaults(run=_cmd_export_reference)

    st = sub.add_parser(
        "study", help="score a corpus, compare groups, test the differences (report, figure)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score every text of a corpus with one model (N, AP, APE, length-corrected APE, mean\n"
        "attention entropy), store each finished text at once in OUT/study.sqlite (the same command again\n"
        "resumes), compare the groups (matched texts: Wilcoxon signed-rank tests, Bonferroni-corrected, and\n"
        "Friedman's test; otherwise Mann-Whitney and Kruskal-Wallis) and write texts.csv, texts.json,\n"
        "stats.csv, report.md (with what quality control left out and why) and figure.png/.svg into OUT.\n"
        "docs/studies.md in the repository says more.",
        epilog="CORPUS is one of:\n"
        "  onestopenglish DIR        the OneStopEnglish triplets (Ele-Txt, Int-Txt/Int-Txt, Adv-Txt)\n"
        "  FILE.csv | FILE.jsonl     rows of id, group, match, and path or text\n"
        "  'texts/*/*.txt'           a glob: group = parent folder, match = file name (--pattern to change)\n"
        "  NAME=DIR ... | DIR ...    a folder per group; texts with the same file name are matched (--match)\n"
        "\nexample: attnprox study onestopenglish data/onestopenglish --out study/")
    st.add_argument("corpus", nargs="+", metavar="CORPUS", help="see below")
    st.add_argument("-m", "--model", default=None, help="model file (default: attnprox's default model)")
    st.add_argument("--out", default="study", help="folder for the store, table, report and figure (default study)")
    st.add_argument("--store", default=None, help="SQLite file (default OUT/study.sqlite)")
    st.add_argument("--layers", default="last", help="last (default), all, or comma-separated layer numbers")
    st.add_argument("--policy", choices=["literal", "shift", "clamp", "softmax"], default=None,
                    help="how APE treats negative proximity entries (default shift)")
    st.add_argument("--tokens", action="store_true", help="also store per-token AP_i and iAPE_i (in texts.json)")
    st.add_argument("--rope", action="store_true",
                    help="measure the queries and keys after the rotary embedding (default: before it)")
    st.add_argument("--window", type=_count(2), default=None,
                    help="window (tokens) for texts longer than the model's positions (default: run_windows')")
    st.add_argument("--stride", type=_count(1), default=None, help="stride between windows (default: run_windows')")
    st.add_argument("--device", default="cpu",
                    help="cpu, cuda (one worker per visible GPU) or cuda:N (every worker on GPU N) (default cpu)")
    st.add_argument("--dtype", default=None, help="float32, float16 or bfloat16 (default: the file's)")
    st.add_argument("--workers", type=_count(0, MAX_WORKERS), default=None,
                    help="Dask worker processes (default: one per core, or per GPU; 0: in this process, no Dask)")
    st.add_argument("--workers-per-gpu", type=_count(1, MAX_WORKERS), default=1,
                    help="with --device cuda: worker processes sharing each GPU (default 1)")
    st.add_argument("--threads", type=_count(0, MAX_THREADS), default=None,
                    help="libtorch threads per worker (default: cores / workers)")
    st.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler to send the work to")
    st.add_argument("--token-budget", type=_count(1), default=None,
                    help="padded tokens per batch (default: attnprox.batching's, 1,024; raise it on a GPU)")
    st.add_argument("--new-run", action="store_true",
                    help="start a new run beside the store's runs when the configuration changed (else refused)")
    st.add_argument("--groups", default=None, help="comma-separated groups to compare, in this order")
    st.add_argument("--match", default="stem",
                    help="folders: stem (same file name = same item; default), none, or a regex on the file name")
    st.add_argument("--pattern", default=None,
                    help="glob: regex with named groups (?P<group>...) and (?P<match>...) searched in each path")
    st.add_argument("--figure", default="ap,ape_normalized",
                    help="measures side by side in the figure (default ap,ape_normalized)")
    st.add_argument("--figure-style", choices=["point", "bar"], default="point", help="means as points or bars")
    st.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    st.set_defaults(run=_cmd_study)

    tokenizer = sub.add_parser("set-tokenizer", help="give a model file a tokenizer (tokenizer.json)",
                               description="Put a Hugging Face tokenizer.json into a model file made without one "
                               "(or replace its tokenizer), so that it takes text. The tokenizer must load in "
                               "attnprox's tokenizer; the file's other contents are kept as they are.")
    tokenizer.add_argument("model", help="model file to change")
    tokenizer.add_argument("tokenizer", help="tokenizer.json")
    tokenizer.set_defaults(run=_cmd_set_tokenizer)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import attnprox

        print(f"attnprox {attnprox.__version__} (libtorch {attnprox.torch_version()})")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    import attnprox

    try:
        return args.run(args)
    except UsageError as e:
        print(f"attnprox {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"attnprox {args.command}: interrupted", file=sys.stderr)
        return 130
    except (attnprox.Error, OSError, ValueError, RuntimeError) as e:  # ExportError is a RuntimeError
        print(f"attnprox {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
