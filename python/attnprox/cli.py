"""The `attnprox` command line.

    attnprox info MODEL                          what a model file holds
    attnprox score MODEL --text T | --file F | --ids 1,2,3   Attention Proximity of texts or id sequences
    attnprox export-reference HF_DIR OUT         a Hugging Face directory → model file (reference families)

Exit codes: 0 success, 1 an error attnprox reports (message on stderr), 2 wrong usage.
"""
import argparse
import json
import sys
from typing import List, Optional


def _ids(text: str) -> List[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integer token ids") from None


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
    exporter = m.get("exporter", {})
    print(f"written by      {exporter.get('name', '?')} (attnprox {exporter.get('attnprox', '?')}, "
          f"torch {exporter.get('torch', '?')})")
    return 0


def _cmd_score(args) -> int:
    import attnprox

    model = attnprox.load(args.model, device=args.device)
    inputs = []  # (label, result)
    if args.ids:
        inputs += [(",".join(map(str, ids)), r) for ids, r in zip(args.ids, model.run(ids=args.ids))]
    texts = list(args.text or [])
    for path in args.file or []:
        with open(path, encoding="utf-8") as f:
            texts.append(f.read())
    if texts:
        inputs += [(text, r) for text, r in zip(texts, model.run(text=texts))]
    if not inputs:
        print("attnprox score: error: give --text, --file or --ids", file=sys.stderr)
        return 2
    rows = []
    for label, result in inputs:
        row = {"n": len(result), "ap": result.ap(args.layer), "input": label, "ids": result.ids}
        if args.tokens:
            row["tokens"] = result.token_texts
            row["ap_tokens"] = [float(x) for x in result.ap_tokens(args.layer)]
        rows.append(row)
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], ensure_ascii=False))
        return 0
    print(f"{'N':>6}  {'AP':>12}  input")
    for row in rows:
        shown = " ".join(row["input"].split())
        print(f"{row['n']:>6}  {row['ap']:>12.6f}  {shown if len(shown) < 60 else shown[:57] + '...'}")
        if args.tokens:
            labels = row["tokens"] or [str(i) for i in row["ids"]]
            print("        " + " ".join(f"{t.strip() or t!r}:{x:+.4f}" for t, x in zip(labels, row["ap_tokens"])))
    return 0


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

    score = sub.add_parser("score", help="Attention Proximity of texts or token-id sequences",
                           description="Attention Proximity (AP) of texts (through the model file's tokenizer) "
                           "or token-id sequences.")
    score.add_argument("model", help="model file")
    score.add_argument("--text", action="append", help="a text; repeat for several")
    score.add_argument("--file", action="append", help="a UTF-8 text file, scored as one text; repeat for several")
    score.add_argument("--ids", type=_ids, action="append",
                       help="comma-separated token ids; repeat for several sequences")
    score.add_argument("--layer", type=int, default=-1, help="layer (model's own number; negative from the last "
                       "captured; default -1)")
    score.add_argument("--tokens", action="store_true", help="also print per-token AP_i")
    score.add_argument("--json", action="store_true", help="JSON output")
    score.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    score.set_defaults(run=_cmd_score)

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
    except (attnprox.Error, FileNotFoundError, ValueError) as e:
        print(f"attnprox {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
