"""The `attnprox` command line.

    attnprox info MODEL                               what a model file holds
    attnprox score MODEL (--text T | --file F | --ids 1,2,3)...
                                                      N, AP, APE, length-corrected APE (a table, or --json)
    attnprox heatmap MODEL (--text T | --file F | --ids ...) --out FILE.png|.svg|.html
                                                      pictures: one head, the layer's heads, the average, the grid
                                                      of every layer × head, the proximity matrix, AP as coloured
                                                      text; .html is the interactive view
    attnprox export MODEL OUT                         a Hugging Face model → model file, through transformers,
                                                      verified against output_attentions=True
    attnprox export-reference HF_DIR OUT              a Hugging Face directory → model file (reference families,
                                                      no transformers)

Exit codes: 0 success, 1 an error attnprox reports (message on stderr), 2 wrong usage.
"""
import argparse
import json
import os
import sys
from typing import List, Optional


def _ids(text: str) -> List[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integer token ids") from None


def _add_inputs(parser: argparse.ArgumentParser, many: bool) -> None:
    action = "append" if many else "store"
    more = "; repeat for several" if many else ""
    parser.add_argument("--text", action=action, help=f"a text{more}")
    parser.add_argument("--file", action=action, help=f"a UTF-8 text file, read as one text{more}")
    parser.add_argument("--ids", type=_ids, action=action, help=f"comma-separated token ids{more}")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--layer", type=int, default=-1,
                        help="layer: the model's own number, negative from the last captured (default -1)")
    parser.add_argument("--layers", default=None,
                        help="captured layers to keep: all, last or comma-separated numbers; the forward stops "
                        "after the last of them (default: score keeps --layer only, heatmap all)")


class UsageError(Exception):
    """Wrong use of the command line (exit code 2)."""


def _run_inputs(model, args) -> list:
    """(label, Result) for every --text, --file and --ids given."""
    def listed(value):
        return [] if value is None else value if isinstance(value, list) else [value]

    texts = listed(args.text)
    for path in listed(args.file):
        with open(path, encoding="utf-8") as f:
            texts.append(f.read())
    ids = listed(args.ids)
    if ids and not isinstance(ids[0], list):
        ids = [ids]
    if not texts and not ids:
        raise UsageError("give --text, --file or --ids")
    runs = []
    if texts:
        runs += list(zip(texts, model.run(text=texts)))
    if ids:
        runs += [(",".join(map(str, i)), r) for i, r in zip(ids, model.run(ids=ids))]
    return runs


def _cmd_info(args) -> int:
    import attnprox

    model = attnprox.load(args.model, device=args.device)
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


def _cmd_score(args) -> int:
    import attnprox

    # Without --layers only the measured layer is kept, and the forward stops after its queries and keys.
    model = attnprox.load(args.model, device=args.device,
                          layers=[args.layer] if args.layers is None else args.layers)
    layer = -1 if args.layers is None else args.layer
    rows = []
    for label, result in _run_inputs(model, args):
        row = {"input": label}
        row.update(result.summary(layer, args.policy))
        row["policy"] = args.policy or attnprox.metrics.DEFAULT_APE_POLICY
        if args.tokens:
            row["tokens"] = result.token_texts or [str(i) for i in result.ids]
            row["ap_tokens"] = [float(x) for x in result.ap_tokens(layer)]
            row["ape_tokens"] = [None if x != x else float(x) for x in result.ape_tokens(layer, args.policy)]
        rows.append(row)
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], ensure_ascii=False))
        return 0
    print(f"{'N':>6}  {'AP':>10}  {'APE':>10}  {'APE/log(N-1)':>12}  input")
    for row in rows:
        shown = " ".join(row["input"].split())
        ape = "undefined" if row["ape"] is None else f"{row['ape']:.6f}"
        normalized = "-" if row["ape_normalized"] is None else f"{row['ape_normalized']:.6f}"
        print(f"{row['n']:>6}  {row['ap']:>10.6f}  {ape:>10}  {normalized:>12}  "
              f"{shown if len(shown) < 50 else shown[:47] + '...'}")
        if row["ape_undefined_rows"]:
            print(f"        ({row['ape_undefined_rows']} rows undefined under the {row['policy']} policy)")
        if args.tokens:
            for t, ap, ape_i in zip(row["tokens"], row["ap_tokens"], row["ape_tokens"]):
                print(f"        {t.strip() or repr(t):>16}  AP_i {ap:+.4f}  iAPE_i "
                      f"{'undefined' if ape_i is None else f'{ape_i:.4f}'}")
    return 0


def _cmd_heatmap(args) -> int:
    import attnprox
    from attnprox import plots

    extension = os.path.splitext(args.out)[1].lower()
    if extension not in (".png", ".svg", ".html"):
        raise UsageError(f"--out {args.out}: the picture is written as .png, .svg or .html")
    model = attnprox.load(args.model, device=args.device, layers=args.layers)
    runs = _run_inputs(model, args)
    if len(runs) != 1:
        raise UsageError("a picture shows one text: give one of --text, --file, --ids")
    result = runs[0][1]
    if extension == ".html":
        result.view(args.layer, temperature=args.temperature).save(args.out)
        print(f"wrote {args.out} (interactive view, layer {args.layer})")
        return 0
    colors = {"cmap": args.cmap, "vmin": args.vmin, "vmax": args.vmax}
    colors = {k: v for k, v in colors.items() if v is not None}
    if args.grid:
        fig = plots.grid(result, temperature=args.temperature, **colors)
    elif args.average:
        fig = plots.average_attention(result, temperature=args.temperature, **colors)
    elif args.proximity:
        fig = plots.proximity(result, args.layer, subset=args.subset, **colors)
    elif args.ap_text:
        fig = plots.ap_text(result, args.layer, subset=args.subset, **colors)
    elif args.heads:
        fig = plots.heads(result, args.heads, args.layer, temperature=args.temperature, **colors)
    else:
        fig = plots.attention(result, args.layer, head=args.head, temperature=args.temperature, **colors)
    plots.save(fig, args.out)
    print(f"wrote {args.out}")
    return 0


def _cmd_export(args) -> int:
    from .hf_export import export

    texts = [args.text] if args.text else None
    manifest = export(args.model, args.out, layers=args.layers, dtype=args.dtype, device=args.device,
                      tokenizer=args.tokenizer, verify_texts=texts, check=not args.no_verify)
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

    manifest = attnprox.export_reference(args.hf_dir, args.out, layers=args.layers, dtype=args.dtype)
    print(f"wrote {args.out}: {manifest['family']}, layers {manifest['captured_layers']} of "
          f"{manifest['num_layers']}, {manifest['dtype']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnprox", description="What a transformer's attention sees: Q/K per "
                                     "layer and head, rebuilt attention, Attention Proximity.")
    parser.add_argument("--version", action="store_true", help="print the versions of attnprox and libtorch")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="what a model file holds", description="Print a model file's manifest.")
    info.add_argument("model", help="model file")
    info.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    info.add_argument("--json", action="store_true", help="the whole manifest as JSON")
    info.set_defaults(run=_cmd_info)

    score = sub.add_parser("score", help="AP and APE of texts or token-id sequences",
                           description="Attention Proximity (AP), Attention Proximity Entropy (APE) and the "
                           "length-corrected APE of texts (through the model file's tokenizer) or token ids.")
    score.add_argument("model", help="model file")
    _add_inputs(score, many=True)
    _add_model_options(score)
    score.add_argument("--policy", choices=["literal", "shift", "clamp", "softmax"], default=None,
                       help="how APE treats negative proximity entries (default shift)")
    score.add_argument("--tokens", action="store_true", help="also per-token AP_i and iAPE_i")
    score.add_argument("--json", action="store_true", help="JSON output")
    score.set_defaults(run=_cmd_score)

    heatmap = sub.add_parser("heatmap", help="pictures of attention and proximity (.png, .svg, .html)",
                             description="Pictures of one text: by default the mean of the layer's heads; "
                             ".html writes the interactive view.")
    heatmap.add_argument("model", help="model file")
    _add_inputs(heatmap, many=False)
    _add_model_options(heatmap)
    heatmap.add_argument("--out", required=True, help="FILE.png, FILE.svg or FILE.html")
    what = heatmap.add_mutually_exclusive_group()
    what.add_argument("--head", type=int, help="one head of the layer")
    what.add_argument("--heads", type=_ids, help="several heads of the layer side by side, e.g. 0,3,5")
    what.add_argument("--average", action="store_true", help="the mean over every layer and head")
    what.add_argument("--grid", action="store_true", help="every layer × every head")
    what.add_argument("--proximity", action="store_true", help="the proximity matrix A")
    what.add_argument("--ap-text", action="store_true", help="the text coloured by AP_i (or AP^(S) with --subset)")
    heatmap.add_argument("--subset", type=_ids, help="token positions S for --proximity / --ap-text")
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
    hf.add_argument("--layers", default="all", help="all, last, or comma-separated layer numbers (default all)")
    hf.add_argument("--dtype", default=None, help="float32, float16 or bfloat16 (default: the model's)")
    hf.add_argument("--device", default="cpu", help="where to trace: cpu, cuda (default cpu)")
    hf.add_argument("--tokenizer", default=None, help="directory with tokenizer.json (default: the model's)")
    hf.add_argument("--text", default=None, help="a text to verify on, besides random ids")
    hf.add_argument("--no-verify", action="store_true", help="skip the check against output_attentions")
    hf.set_defaults(run=_cmd_export)

    export = sub.add_parser("export-reference", help="Hugging Face directory → model file (no transformers)",
                            description="Export a GPT-2, BERT, DistilBERT, Llama or Qwen3 Hugging Face directory "
                            "(config.json + model.safetensors) with attnprox's own reference architectures.")
    export.add_argument("hf_dir", help="Hugging Face model directory")
    export.add_argument("out", help="model file to write")
    export.add_argument("--layers", default="all", help="all, last, or comma-separated layer numbers (default all)")
    export.add_argument("--dtype", default=None, help="float32, float16 or bfloat16 (default: the weights')")
    export.set_defaults(run=_cmd_export_reference)
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
    except (attnprox.Error, OSError, ValueError, RuntimeError) as e:  # ExportError is a RuntimeError
        print(f"attnprox {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
