#!/usr/bin/env python3
"""Memory and time of a list of texts run in micro-batches, against a plain loop of one-text runs, on the CPU.

A Qwen3-shaped model with random weights (hidden 1024, 16 query heads, 8 key heads, d = 128, MLP 3072: the layer
shape of Qwen3-0.6B; 4 layers by default, every layer captured; the Qwen3 tokenizer and vocabulary of 151,936 ids
from the shared data) at 512 positions; the 189 OneStopEnglish Adv-Txt texts (read as UTF-8 without their byte-order
mark), each truncated to the model's positions (`truncation=True`); with `--unit line`, their paragraphs instead (the
lines of 20 characters or more, as `attnprox score --lines` reads a file: texts of 4 to a few hundred tokens, which
micro-batches pack several to a batch). Every variant runs in its own process, so that
each peak RSS (VmHWM of /proc/self/status) is its own; the time is the wall time of the runs, after loading:

    loop         for t in texts: model.run(text=t).ap()            each Result dropped (the baseline)
    stream       for i, r in model.stream(text=texts): r.ap()      micro-batches, each Result dropped
    loop-keep    [model.run(text=t) for t in texts], then .ap()    every Result kept (what run(list) returns)
    run-list     model.run(text=texts), then .ap()                 micro-batches, every Result kept
    one-batch    model.run(text=texts, token_budget=10**9)          the whole list as one padded batch (as before)
    paired       time only, robust to a busy machine: groups of 8 texts, each run in all four ways above
                 back to back, the order rotating; the median ratios stream / loop and run-list / loop-keep

Every variant runs `--rounds` times, the order reversed every other round; the script prints each run, then per
variant the largest peak RSS, its part above the RSS after loading, and the shortest time, and the ratios
stream / loop and run-list / loop-keep (targets: peak ≤ 1.2×, time ≤ 1×).

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/batching_memory.py [--work DIR] [--layers 4]
        [--positions 512] [--budgets 1024,2048] [--variants loop,stream,loop-keep,run-list,one-batch] [--texts 189]
        [--unit text|line] [--rounds 2]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.environ.get("ATTNPROX_DATA_DIR") or os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def make_model(work: str, layers: int, positions: int) -> str:
    """The model file (made once per shape in `work`)."""
    path = os.path.join(work, f"qwen3-shaped-{layers}x1024-{positions}.apx")
    if os.path.exists(path):
        return path
    import attnprox
    from attnprox.reference.random_model import write_random_model
    from attnprox.reference.tokenizer_files import install_family_tokenizer

    hf_dir = os.path.join(work, f"qwen3-shaped-{layers}x1024-{positions}")
    config = {"model_type": "qwen3", "architectures": ["Qwen3Model"], "vocab_size": 151936, "hidden_size": 1024,
              "intermediate_size": 3072, "num_hidden_layers": layers, "num_attention_heads": 16,
              "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": positions,
              "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu", "tie_word_embeddings": True,
              "bos_token_id": None, "eos_token_id": 151645, "pad_token_id": None}
    write_random_model(config, hf_dir, seed=0, std=0.02)
    install_family_tokenizer("qwen3", os.path.join(DATA, "tokenizers"), hf_dir)
    attnprox.export_reference(hf_dir, path)
    return path


def texts(count: int, unit: str = "text"):
    """The first `count` texts: whole files (unit "text") or their lines of 20 characters or more, the paragraphs
    (unit "line", as `attnprox score --lines` reads a file; shorter lines are titles and bylines)."""
    files = sorted(glob.glob(os.path.join(DATA, "onestopenglish", "Adv-Txt", "*.txt")))
    if not files:
        raise SystemExit(f"no texts in {DATA}/onestopenglish/Adv-Txt (set ATTNPROX_DATA_DIR)")
    out = []
    for name in files:
        with open(name, encoding="utf-8-sig") as f:
            text = f.read()
        out += [text] if unit == "text" else [line.strip() for line in text.splitlines() if len(line.strip()) >= 20]
        if len(out) >= count:
            break
    return out[:count]


def paired_timing(model, corpus, budget: int, group: int = 8) -> dict:
    """Time on a busy machine: the texts in groups of `group`; each group run four ways back to back, in an order
    that rotates from group to group: a loop of one-text runs dropping each Result (loop) against model.stream
    (stream), and a loop keeping every Result (loop-keep) against one model.run(list) (run-list), AP computed for
    each. The medians of the ratios stream / loop and run-list / loop-keep over the groups."""
    import statistics

    def loop(texts):
        return [model.run(text=t, truncation=True).ap() for t in texts]

    def stream(texts):
        return [r.ap() for _, r in model.stream(text=texts, truncation=True, token_budget=budget)]

    def loop_keep(texts):
        kept = [model.run(text=t, truncation=True) for t in texts]
        return [r.ap() for r in kept]

    def run_list(texts):
        return [r.ap() for r in model.run(text=texts, truncation=True, token_budget=budget)]

    ways = [("loop", loop), ("stream", stream), ("loop-keep", loop_keep), ("run-list", run_list)]
    totals = {name: 0.0 for name, _ in ways}
    ratios = {"stream": [], "run-list": []}
    groups = 0
    for k in range(0, len(corpus), group):
        texts = corpus[k:k + group]
        timed = {}
        shift = groups % len(ways)
        for name, fn in ways[shift:] + ways[:shift]:
            start = time.perf_counter()
            fn(texts)
            timed[name] = time.perf_counter() - start
            totals[name] += timed[name]
        ratios["stream"].append(timed["stream"] / timed["loop"])
        ratios["run-list"].append(timed["run-list"] / timed["loop-keep"])
        groups += 1
    return {"variant": "paired", "budget": budget, "pairs": groups,
            "median_stream": statistics.median(ratios["stream"]),
            "median_run_list": statistics.median(ratios["run-list"]), "totals": totals,
            "peak_mib": status_kib("VmHWM") / 1024, "loaded_mib": 0.0, "seconds": sum(totals.values()),
            "ap_sum": 0.0, "texts": len(corpus)}


def variant(name: str, model_path: str, count: int, budget: int, unit: str = "text") -> dict:
    """Runs one variant in this process; its peak RSS, RSS after loading, and seconds."""
    import attnprox

    corpus = texts(count, unit)
    model = attnprox.load(model_path)
    loaded = status_kib("VmRSS")
    start = time.perf_counter()
    aps = []
    if name == "loop":
        for t in corpus:
            aps.append(model.run(text=t, truncation=True).ap())
    elif name == "stream":
        found = {i: r.ap() for i, r in model.stream(text=corpus, truncation=True, token_budget=budget)}
        aps = [found[i] for i in range(len(corpus))]
    elif name == "loop-keep":
        kept = [model.run(text=t, truncation=True) for t in corpus]
        aps = [r.ap() for r in kept]
    elif name == "run-list":
        kept = model.run(text=corpus, truncation=True, token_budget=budget)
        aps = [r.ap() for r in kept]
    elif name == "paired":
        return paired_timing(model, corpus, budget)
    elif name == "one-batch":
        kept = model.run(text=corpus, truncation=True, token_budget=10**9)
        aps = [r.ap() for r in kept]
    else:
        raise SystemExit(f"unknown variant {name}")
    seconds = time.perf_counter() - start
    return {"variant": name, "budget": budget, "peak_mib": status_kib("VmHWM") / 1024,
            "loaded_mib": loaded / 1024, "seconds": seconds, "texts": len(corpus), "ap_sum": float(sum(aps))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench-batching"))
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--positions", type=int, default=512)
    parser.add_argument("--budgets", default="1024,2048", help="token budgets of stream and run-list, comma-separated")
    parser.add_argument("--variants", default="loop,stream,loop-keep,run-list,one-batch")
    parser.add_argument("--texts", type=int, default=189)
    parser.add_argument("--unit", choices=["text", "line"], default="text",
                        help="a text is a whole file, or one of its lines of 20 characters or more (paragraphs)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of every variant, in alternating order")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant, print its JSON
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, default=1024, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(variant(args.one, args.model, args.texts, args.budget, args.unit)))
        return
    os.makedirs(args.work, exist_ok=True)
    model_path = make_model(args.work, args.layers, args.positions)
    plan = []
    for name in args.variants.split(","):
        for budget in ([int(b) for b in args.budgets.split(",")] if name in ("stream", "run-list", "paired")
                       else [0]):
            plan.append((name, budget))
    runs = {key: [] for key in plan}
    for round_ in range(args.rounds):  # alternate the order, so that a busy spell of the machine hits all variants
        for name, budget in (plan if round_ % 2 == 0 else plan[::-1]):
            done = subprocess.run([sys.executable, __file__, "--one", name, "--model", model_path, "--texts",
                                   str(args.texts), "--unit", args.unit, "--budget", str(budget or 1024)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stderr}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            runs[(name, budget)].append(row)
            print(f"round {round_ + 1} {name:>10} budget {budget or '-':>6}: peak {row['peak_mib']:7.0f} MiB "
                  f"({row['peak_mib'] - row['loaded_mib']:6.0f} above the {row['loaded_mib']:.0f} after loading), "
                  f"{row['seconds']:7.1f} s, AP sum {row['ap_sum']:.6f}", flush=True)
    # Per variant: the largest peak and the shortest time over the rounds.
    best = {key: {"peak": max(r["peak_mib"] for r in rows), "above": max(r["peak_mib"] - r["loaded_mib"] for r in rows),
                  "seconds": min(r["seconds"] for r in rows)} for key, rows in runs.items()}
    print()
    for (name, budget), b in best.items():
        print(f"{name:>10} budget {budget or '-':>6}: peak {b['peak']:7.0f} MiB ({b['above']:6.0f} above load), "
              f"best time {b['seconds']:7.1f} s")
    for key, rows in runs.items():
        for row in rows if key[0] == "paired" else []:
            t = row["totals"]
            print(f"paired timing (budget {row['budget']}, {row['pairs']} groups of 8 texts): stream / loop median "
                  f"{row['median_stream']:.3f} (totals {t['stream']:.1f} s / {t['loop']:.1f} s), run-list / "
                  f"loop-keep median {row['median_run_list']:.3f} (totals {t['run-list']:.1f} s / "
                  f"{t['loop-keep']:.1f} s)")
    for (name, budget), b in best.items():
        base_name = {"stream": "loop", "run-list": "loop-keep", "one-batch": "loop"}.get(name)
        base = best.get((base_name, 0))
        if base:
            print(f"{name} (budget {budget or '-'}) / {base_name}: peak {b['peak'] / base['peak']:.3f} "
                  f"(above load {b['above'] / base['above']:.3f}), time {b['seconds'] / base['seconds']:.3f}")


if __name__ == "__main__":
    main()
