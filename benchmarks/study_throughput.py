#!/usr/bin/env python3
"""Throughput of `attnprox study`: texts scored per second on the OneStopEnglish triplets with 1, 2 and 4 Dask
workers (and in-process), printed as ratios to the 1-worker figure measured in the same run.

    /usr/bin/python3 benchmarks/study_throughput.py [--model FILE] [--workers 1,2,4] [--triplets N] [--out F.json]
    python3 benchmarks/study_throughput.py --device cuda --workers 1,2,4      # GPU machine: one worker per GPU
    python3 benchmarks/study_throughput.py --device cuda --workers-per-gpu 2  # two workers sharing each GPU

Each configuration is a fresh study (its own store) of the same texts through `attnprox.study`: a local cluster is
started, every worker loads the model once, the texts are scored in batches within the token budget and every
batch's rows are written to the store as they come back. "starting" is the cluster's start and the model loads;
texts/s counts the scoring alone (first batch submitted to last row stored); the wall time is the whole call.
Workers get cores / workers libtorch threads each (at least 1), so more workers than cores oversubscribe. The
load average before and after is printed: on a shared machine other work competes for the cores.

Without --model the script builds a random-weight Qwen3-shaped model (6 layers, hidden 48, 8 query heads of d = 32
sharing 2 key heads, 4,096 positions: about 7.7 M parameters, most of them the 151,936-entry embedding) with the
Qwen3 tokenizer of the project's shared data, in a temporary folder. With the default model: --model PATH.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("ATTNPROX_BUILD_DIR", os.path.join(ROOT, "build"))
if os.path.isdir(os.path.join(BUILD, "python", "attnprox")):
    sys.path.insert(0, os.path.join(BUILD, "python"))
DATA = os.environ.get("ATTNPROX_DATA_DIR") or os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))

import attnprox  # noqa: E402
from attnprox import studies  # noqa: E402

QWEN3_SHAPE = {"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 48, "intermediate_size": 192,
               "num_hidden_layers": 6, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32,
               "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "hidden_act": "silu",
               "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}, "tie_word_embeddings": True}


def reference_model(folder: str) -> str:
    from attnprox.reference.random_model import write_random_model
    from attnprox.reference.tokenizer_files import install_family_tokenizer

    hf = write_random_model(QWEN3_SHAPE, os.path.join(folder, "qwen3-hf"), seed=0, std=0.08)
    install_family_tokenizer("qwen3", os.path.join(DATA, "tokenizers"), hf)
    path = os.path.join(folder, "qwen3-7m.apx")
    attnprox.export_reference(hf, path)
    return path


def parameters(hf_dir: str) -> int:
    from attnprox.reference.safetensors import load_file

    return sum(t.numel() for t in load_file(os.path.join(hf_dir, "model.safetensors")).values())


def subset(root: str, triplets: int, folder: str) -> str:
    """The first `triplets` OneStopEnglish articles, copied in the corpus layout (all of them: the corpus itself)."""
    if triplets <= 0:
        return root
    names = sorted(f[:-len("-ele.txt")] for f in os.listdir(os.path.join(root, "Ele-Txt")) if f.endswith("-ele.txt"))
    for level, suffix in (("Ele-Txt", "ele"), ("Int-Txt/Int-Txt", "int"), ("Adv-Txt", "adv")):
        os.makedirs(os.path.join(folder, level), exist_ok=True)
        for name in names[:triplets]:
            shutil.copy(os.path.join(root, level, f"{name}-{suffix}.txt"), os.path.join(folder, level))
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: a random-weight Qwen3-shaped model, built here)")
    parser.add_argument("--corpus", default=os.path.join(DATA, "onestopenglish"), help="OneStopEnglish folder")
    parser.add_argument("--triplets", type=int, default=0, help="the first N articles only (default: all)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure (default 1,2,4)")
    parser.add_argument("--in-process", action="store_true",
                        help="also measure --workers 0 (no Dask; libtorch's default threads)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (one worker per GPU)")
    parser.add_argument("--workers-per-gpu", type=int, default=1, help="with --device cuda: workers sharing a GPU")
    parser.add_argument("--token-budget", type=int, default=studies.run.DEFAULT_TOKEN_BUDGET)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    if args.device == "cuda":
        counts = [c * args.workers_per_gpu for c in counts]   # the list counts GPUs: workers_per_gpu on each
    baseline = args.workers_per_gpu if args.device == "cuda" else 1   # one worker (on one GPU)
    if baseline not in counts:
        parser.error("the ratios are to the 1-worker (1-GPU) figure: --workers must include 1")
    with tempfile.TemporaryDirectory(prefix="attnprox-study-bench-") as tmp:
        model = args.model or reference_model(tmp)
        corpus = subset(args.corpus, args.triplets, os.path.join(tmp, "corpus"))
        about = {"model": os.path.basename(model) if args.model else "random-weight Qwen3 shape, "
                 f"{parameters(os.path.join(tmp, 'qwen3-hf')) / 1e6:.2f} M parameters, Qwen3 tokenizer",
                 "device": args.device, "token_budget": args.token_budget, "machine": platform.node(),
                 "cpus": os.cpu_count(), "load_average_before": os.getloadavg(), "attnprox": attnprox.__version__,
                 "runs": []}
        plans = ([0] if args.in_process else []) + counts
        for workers in plans:
            started = time.perf_counter()
            result = studies.study(["onestopenglish", corpus], model=model, out=os.path.join(tmp, f"w{workers}"),
                                   device=args.device, workers=workers, token_budget=args.token_budget,
                                   workers_per_gpu=args.workers_per_gpu if args.device == "cuda" and workers else 1,
                                   progress=False)
            wall = time.perf_counter() - started
            timing = result.timing
            run = {"workers": workers, "texts": timing.texts, "start_seconds": timing.start_seconds,
                   "scoring_seconds": timing.scoring_seconds, "texts_per_second": timing.texts_per_second,
                   "wall_seconds": wall, "plan": studies.Store(result.store).sessions(1)[0]["workers"]}
            about["runs"].append(run)
            print(f"{run['plan']:>48}: {timing.texts} texts, starting {timing.start_seconds:5.1f} s, scoring "
                  f"{timing.scoring_seconds:6.1f} s = {timing.texts_per_second:6.2f} texts/s (wall {wall:5.1f} s)",
                  flush=True)
        about["load_average_after"] = os.getloadavg()
    one = next(r for r in about["runs"] if r["workers"] == baseline)
    print()
    print("| workers | threads each | texts/s | ratio to 1 worker | starting (s) | scoring (s) | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for run in about["runs"]:
        ratio = run["texts_per_second"] / one["texts_per_second"]
        run["ratio_to_one_worker"] = ratio
        threads = run["plan"].split("× ")[1].split(" ")[0] if "×" in run["plan"] else "libtorch's default"
        print(f"| {run['workers'] or 'in-process'} | {threads} | {run['texts_per_second']:.2f} | {ratio:.2f} | "
              f"{run['start_seconds']:.1f} | {run['scoring_seconds']:.1f} | {run['wall_seconds']:.1f} |")
    print(f"\nload average before {about['load_average_before']}, after {about['load_average_after']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(about, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
