#!/usr/bin/env python3
"""attnprox against the plain forward of the same model, same process, same weights: a Qwen3-8B-shaped model (36
layers, hidden 4096, MLP 12288, 32 heads, 8 KV heads, d = 128; random bfloat16 weights; a 4,096-token vocabulary,
which changes nothing in attention), exported once with every layer captured.

Stages, each timed after a warm-up at that length (`--reps` timed runs, median), peak memory = growth of the CUDA
caching allocator's peak (which libtorch and PyTorch share here) over the memory held before the run:

- long context, for every size in `--sizes` (then, after the corpus, `--later-sizes`) and capture in `--capture`
  (`last`: the last layer's queries and keys are kept, `all`: every layer's; chosen at run time from the one file,
  `run(layers=...)`), the seed workload: forward, then AP, AP_i and APE (default policy) at the last layer; against
  the plain SDPA forward. Also, apart: the forward alone, AP, AP_i and APE alone on its result (APE also on the
  queries and keys after RoPE, which undoes no rotation, and through ATen operations instead of the fused CUDA
  kernel, ATTNPROX_CUDA_KERNELS=0), and one bfloat16 GEMM of APE's shape ([N, H·d] × [H·d, N], in row tiles of at
  most `--gemm-rows` where the N × N result would not fit).
- corpus (`--corpus-texts`, default 1,000 texts of 200–2,000 random tokens): texts per second of attnprox (the seed
  workload per text, last-layer capture) against the plain forward, both in the same batches: texts sorted by
  length and grouped so that a padded batch holds at most `--token-budget` tokens (the batching is this script's).

`--budget-s` bounds the whole run: a stage whose estimated time (from the plain forward's measured speed) does not
fit in what is left is skipped and says so; results are written to OUT.json after every measurement, and the end
prints the rows of benchmarks/RESULTS.md's tables (also in OUT.md).

    python3 benchmarks/gpu_qwen3_8b.py OUT.json [--sizes 32768,131072,262144] [--later-sizes 65536]
        [--capture last,all] [--all-sizes 32768] [--budget-s 420] [--corpus-texts 1000]
    python3 benchmarks/gpu_qwen3_8b.py OUT.json --device cpu --backend reference --tiny     (a dry run, no GPU,
        no transformers: attnprox's own Qwen3 as the plain forward, tiny sizes)
"""
import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from unittest import mock

import torch

import attnprox

QWEN3_8B = dict(hidden=4096, intermediate=12288, heads=32, kv_heads=8, head_dim=128, vocab=4096)
TINY = dict(hidden=64, intermediate=128, heads=4, kv_heads=2, head_dim=16, vocab=256)


# --- the device: synchronising, peak memory ----------------------------------------------------------------------

class Device:
    def __init__(self, name: str):
        self.name = name
        self.cuda = name.startswith("cuda")

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self) -> int:
        """Resets the allocator's peak; returns the bytes held now."""
        if not self.cuda:
            return 0
        self.sync()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()

    def peak_since(self, base: int):
        if not self.cuda:
            return None
        self.sync()
        return (torch.cuda.max_memory_allocated() - base) / 2**30

    def free(self):
        if self.cuda:
            torch.cuda.empty_cache()

    def describe(self) -> str:
        return torch.cuda.get_device_name(0) if self.cuda else "CPU"


def timed(device: Device, fn, reps: int, warmup: bool = True) -> dict:
    """{"seconds": median of reps, "peak_gib": growth of the peak over the runs, "first_s": the warm-up}."""
    out = {}
    if warmup:
        device.sync()
        t0 = time.perf_counter()
        fn()
        device.sync()
        out["first_s"] = time.perf_counter() - t0
    base = device.reset_peak()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        device.sync()
        times.append(time.perf_counter() - t0)
    out["seconds"] = statistics.median(times)
    out["peak_gib"] = device.peak_since(base)
    return out


# --- the model: transformers' Qwen3 (the GPU machine) or attnprox's own (a dry run anywhere) ---------------------

def qwen3_config(shape: dict, layers: int) -> dict:
    return {"model_type": "qwen3", "vocab_size": shape["vocab"], "hidden_size": shape["hidden"],
            "intermediate_size": shape["intermediate"], "num_hidden_layers": layers,
            "num_attention_heads": shape["heads"], "num_key_value_heads": shape["kv_heads"],
            "head_dim": shape["head_dim"], "max_position_embeddings": 1 << 20, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "hidden_act": "silu", "tie_word_embeddings": False}


class TransformersBackend:
    """transformers' Qwen3 with random weights (normal(0, 0.02) matrices); the plain forward is its own with SDPA;
    the model file comes from attnprox.export (traced, verified)."""

    def __init__(self, shape, layers, device, dtype):
        import transformers

        self.version = transformers.__version__
        # Positions for the longest text; RoPE as Qwen3-8B's (transformers' default theta for Qwen3).
        config = transformers.Qwen3Config(vocab_size=shape["vocab"], hidden_size=shape["hidden"],
                                          intermediate_size=shape["intermediate"], num_hidden_layers=layers,
                                          num_attention_heads=shape["heads"], num_key_value_heads=shape["kv_heads"],
                                          head_dim=shape["head_dim"], max_position_embeddings=1 << 20,
                                          rms_norm_eps=1e-6, tie_word_embeddings=False)
        torch.manual_seed(0)
        with torch.device(device.name):
            self.model = transformers.AutoModel.from_config(config, attn_implementation="eager", dtype=dtype)
        self.model.eval()
        with torch.no_grad():
            for p in self.model.parameters():
                if p.dim() >= 2:
                    p.normal_(0.0, 0.02)
        self.device = device

    def export(self, path) -> dict:
        from attnprox.hf_export import export

        return export(self.model, path, device=self.device.name)

    def plain(self, ids, mask=None):
        self.model.set_attn_implementation("sdpa")
        with torch.no_grad():
            return self.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state

    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


class ReferenceBackend:
    """attnprox's own Qwen3 (attnprox.reference) with random weights: the plain forward is its scripted forward of
    every layer and the final norm; the model file comes from export_reference. For dry runs without transformers."""

    def __init__(self, shape, layers, device, dtype, tmp):
        from attnprox.reference.common import PlainForward
        from attnprox.reference.model import load_reference_model
        from attnprox.reference.random_model import write_random_model

        self.version = "attnprox.reference"
        self.dir = write_random_model(qwen3_config(shape, layers), os.path.join(tmp, "qwen3-random"))
        model, _, _ = load_reference_model(self.dir, dtype=dtype, complete=True)
        self.count = sum(p.numel() for p in model.parameters())
        self.module = torch.jit.script(PlainForward(model.to(device.name)))
        self.dtype = dtype

    def export(self, path) -> dict:
        return attnprox.export_reference(self.dir, path, dtype=self.dtype)

    def plain(self, ids, mask=None):
        with torch.no_grad():
            return self.module(ids, torch.ones_like(ids) if mask is None else mask)

    def parameters(self) -> int:
        return self.count


# --- the stages --------------------------------------------------------------------------------------------------

class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def kept_qk_gib(shape, n, layers_kept) -> float:
    """The queries and keys kept: layers × (H + Hkv) × N × d in bfloat16."""
    return layers_kept * (shape["heads"] + shape["kv_heads"]) * n * shape["head_dim"] * 2 / 2**30


def estimate_plain(report, n) -> float:
    """Seconds of one plain forward at n, from the longest measured (quadratic beyond it: attention dominates)."""
    measured = [(r["n"], r["plain_sdpa"]["seconds"]) for r in report["long_context"]
                if "seconds" in r.get("plain_sdpa", {})]
    if not measured:
        return 0.0
    m, t = max(measured)
    return t * (n / m) ** 2 if n > m else t * n / m


def run_long_context(args, sizes, shape, device, backend, engine, report, write, budget):
    g = torch.Generator().manual_seed(len(report["long_context"]) + 1)
    last = engine.captured_layers[-1]
    hd = shape["heads"] * shape["head_dim"]
    for n in sizes:
        captures = [c for c in args.capture if c == "last" or n in args.all_sizes]
        row = {"n": n}
        # From --cold-from on: one run each without a warm-up (the warm-ups at shorter lengths loaded every kernel;
        # an unoptimized graph compiles nothing per length), and no parts (they cost one more forward).
        cold = n >= args.cold_from
        reps = 1 if cold else args.reps
        runs = (1 if cold else 1 + reps) * (1 + len(captures)) + (0 if cold else 1.2)
        need = estimate_plain(report, n) * runs * 1.15
        if need > budget.left():
            row["skipped"] = f"needs about {need:.0f} s, {budget.left():.0f} s left"
            print(f"N={n}: skipped ({row['skipped']})", flush=True)
            report["long_context"].append(row)
            write()
            continue
        ids = torch.randint(0, shape["vocab"], (n,), generator=g)
        ids_list = ids.tolist()
        ids_device = ids.view(1, n).to(device.name)
        row["warm_up"] = not cold
        report["long_context"].append(row)

        def measure(name, fn, **kw):
            try:
                row[name] = timed(device, fn, reps, warmup=not cold, **kw)
            except (torch.cuda.OutOfMemoryError if device.cuda else MemoryError) as e:
                row[name] = {"oom": str(e).split("\n")[0]}
            except RuntimeError as e:  # the engine's out-of-memory arrives as attnprox.ComputeError
                row[name] = {"error": str(e).split("\n")[0][:300]}
            device.free()
            print(f"N={n} {name}: {json.dumps(row[name])}", flush=True)
            write()

        measure("plain_sdpa", lambda: backend.plain(ids_device))
        for capture in captures:
            layers = [last] if capture == "last" else "all"

            def seed_workload():
                r = engine.run(ids=ids_list, layers=layers)
                r.ap(last)
                r.ap_tokens(last)
                r.ape(last)

            measure(f"attnprox_{capture}", seed_workload)
            entry = row[f"attnprox_{capture}"]
            entry["kept_qk_gib"] = kept_qk_gib(shape, n, 1 if capture == "last" else len(engine.captured_layers))
            if "seconds" in entry and "seconds" in row["plain_sdpa"]:
                entry["ratio"] = entry["seconds"] / row["plain_sdpa"]["seconds"]
                if entry.get("peak_gib") is not None and row["plain_sdpa"].get("peak_gib") is not None:
                    entry["peak_over_plain_minus_kept_gib"] = (entry["peak_gib"] - row["plain_sdpa"]["peak_gib"]
                                                               - entry["kept_qk_gib"])
        # The parts, on one result: the forward alone (one run, its result kept), AP, AP_i, APE, and APE's GEMM.
        if cold or budget.left() < estimate_plain(report, n) * 1.5:
            row["parts_skipped"] = "one run per measurement at this length" if cold else "no time left"
            write()
            continue
        device.sync()
        t0 = time.perf_counter()
        result = engine.run(ids=ids_list, layers=[last])
        device.sync()
        row["attnprox_forward_last"] = {"seconds": time.perf_counter() - t0}
        measure("ap", lambda: result.ap(last))
        measure("ap_tokens", lambda: result.ap_tokens(last))
        measure("ape", lambda: result.ape(last))
        # APE's parts: on the queries and keys after RoPE (no rotation undone), and through ATen operations
        # instead of the fused CUDA kernel (ATTNPROX_CUDA_KERNELS=0; the same where the library has no kernels).
        measure("ape_after_rope", lambda: result.ape(last, rope=True))

        def ape_aten():
            with mock.patch.dict(os.environ, {"ATTNPROX_CUDA_KERNELS": "0"}):  # restores the variable after
                result.ape(last)

        measure("ape_aten", ape_aten)
        del result
        device.free()
        gemm_rows = n if n <= args.gemm_rows else args.gemm_rows
        a = torch.randn(n, hd, generator=g).to(device.name, torch.bfloat16)
        b = torch.randn(hd, n, generator=g).to(device.name, torch.bfloat16)

        def gemm():
            for first in range(0, n, gemm_rows):
                torch.matmul(a[first:first + gemm_rows], b)

        measure("gemm_bf16", gemm)
        row["gemm_bf16"]["shape"] = f"[{n}, {hd}] x [{hd}, {n}]" + (
            f" in tiles of {gemm_rows} rows" if gemm_rows < n else "")
        del a, b
        device.free()
        if "seconds" in row.get("ape", {}) and "seconds" in row.get("gemm_bf16", {}):
            row["ape_over_gemm"] = row["ape"]["seconds"] / row["gemm_bf16"]["seconds"]
        write()


def corpus_batches(lengths, token_budget):
    """Indices of the texts in batches: by length, longest first, each batch as long as its padded size
    (count × its longest) stays within token_budget."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * longest > token_budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def run_corpus(args, shape, device, backend, engine, report, write, budget):
    g = torch.Generator().manual_seed(2)
    count = args.corpus_texts
    lengths = torch.randint(args.corpus_min, args.corpus_max + 1, (count,), generator=g).tolist()
    texts = [torch.randint(0, shape["vocab"], (n,), generator=g).tolist() for n in lengths]
    last = engine.captured_layers[-1]
    batches = corpus_batches(lengths, args.token_budget)
    entry = report["corpus"] = {"texts": count, "tokens": sum(lengths), "batches": len(batches),
                                "token_budget": args.token_budget, "lengths": [args.corpus_min, args.corpus_max]}

    def padded(batch):
        longest = max(lengths[i] for i in batch)
        ids = torch.zeros(len(batch), longest, dtype=torch.long)
        mask = torch.zeros(len(batch), longest, dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, :lengths[i]] = torch.tensor(texts[i])
            mask[row, :lengths[i]] = 1
        return ids.to(device.name), mask.to(device.name)

    tensors = [padded(b) for b in batches]

    def plain_pass(which):
        for k in which:
            backend.plain(*tensors[k])

    def attnprox_pass(which):
        for k in which:
            # the batch as formed above, in one forward (token_budget: run's micro-batches would split it)
            for r in engine.run(ids=[texts[i] for i in batches[k]], layers=[last], token_budget=args.token_budget):
                r.ap(last)
                r.ap_tokens(last)
                r.ape(last)

    # Warm-up on the first (longest) batch; then the plain forward over every batch, estimating as it goes.
    plain_pass([0])
    attnprox_pass([0])
    device.sync()
    t0 = time.perf_counter()
    done = []
    for k in range(len(batches)):
        plain_pass([k])
        done.append(k)
        device.sync()
        spent = time.perf_counter() - t0
        # attnprox takes about as long again: stop adding batches when both would not fit
        if spent * 2.2 > budget.left() and k + 1 < len(batches):
            entry["cut"] = f"{len(done)} of {len(batches)} batches: the budget"
            break
    plain_s = time.perf_counter() - t0
    device.sync()
    t0 = time.perf_counter()
    attnprox_pass(done)
    device.sync()
    attnprox_s = time.perf_counter() - t0
    timed_texts = sum(len(batches[k]) for k in done)
    entry.update({"timed_texts": timed_texts, "timed_tokens": sum(lengths[i] for k in done for i in batches[k]),
                  "plain_s": plain_s, "attnprox_s": attnprox_s, "plain_texts_per_s": timed_texts / plain_s,
                  "attnprox_texts_per_s": timed_texts / attnprox_s, "ratio": plain_s / attnprox_s})
    print(f"corpus: {json.dumps(entry)}", flush=True)
    write()


# --- the tables --------------------------------------------------------------------------------------------------

def fmt_s(entry):
    return f"{entry['seconds']:.3g} s" if "seconds" in entry else entry.get("oom", entry.get("error", "—"))[:40]


def fmt_gib(entry):
    return f"{entry['peak_gib']:.2f} GiB" if entry.get("peak_gib") is not None else "—"


def table_rows(report) -> str:
    out = ["| N | capture | attnprox | plain SDPA forward | ratio | target | attnprox peak | plain peak | "
           "kept Q/K | peak − plain − kept (target ≤ 1 GiB) |", "|" + " --- |" * 10]
    targets = {("last", 32768): 1.10, ("last", 131072): 1.15, ("all", 32768): 1.15}
    for row in report["long_context"]:
        n = row["n"]
        if "skipped" in row:
            out.append(f"| {n:,} | — | skipped: {row['skipped']} | | | | | | | |")
            continue
        plain = row.get("plain_sdpa", {})
        for capture in ("last", "all"):
            entry = row.get(f"attnprox_{capture}")
            if entry is None:
                continue
            ratio = f"{entry['ratio']:.2f}" if "ratio" in entry else "—"
            target = targets.get((capture, n))
            extra = entry.get("peak_over_plain_minus_kept_gib")
            out.append(f"| {n:,} | {'last layer' if capture == 'last' else 'all layers'} | {fmt_s(entry)} | "
                       f"{fmt_s(plain)} | {ratio} | {'≤ %.2f' % target if target else 'reported'} | "
                       f"{fmt_gib(entry)} | {fmt_gib(plain)} | {entry['kept_qk_gib']:.2f} GiB | "
                       f"{'%.2f GiB' % extra if extra is not None else '—'} |")
    out += ["", "| N | forward alone (last layer) | AP | AP_i | APE | APE after RoPE | APE through ATen | "
            "bf16 GEMM N × N × H·d | APE / GEMM (target ≤ 3) |", "|" + " --- |" * 9]

    def ms(e):
        return f"{e['seconds'] * 1e3:.1f} ms" if "seconds" in e else e.get("oom", e.get("error", "—"))[:30]

    for row in report["long_context"]:
        if "ape" not in row:
            continue
        ratio = f"{row['ape_over_gemm']:.2f}" if "ape_over_gemm" in row else "—"
        out.append(f"| {row['n']:,} | {ms(row['attnprox_forward_last'])} | {ms(row['ap'])} | {ms(row['ap_tokens'])} | "
                   f"{ms(row['ape'])} | {ms(row.get('ape_after_rope', {}))} | {ms(row.get('ape_aten', {}))} | "
                   f"{ms(row['gemm_bf16'])} | {ratio} |")
    c = report.get("corpus")
    if c and "ratio" in c:
        out += ["", "| texts (timed) | tokens | batches (≤ tokens each) | attnprox | plain forward | ratio "
                "(target ≥ 0.9) |", "| --- | --- | --- | --- | --- | --- |",
                f"| {c['timed_texts']:,} of {c['texts']:,} | {c['timed_tokens']:,} | {c['batches']} "
                f"({c['token_budget']:,}) | {c['attnprox_texts_per_s']:.1f} texts/s | "
                f"{c['plain_texts_per_s']:.1f} texts/s | {c['ratio']:.2f} |"]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--sizes", default="32768,131072,262144",
                        help="lengths, in the order they run (the budget skips what does not fit)")
    parser.add_argument("--later-sizes", default="65536", help="lengths that run after the corpus")
    parser.add_argument("--capture", default="last,all", help="last, all or both")
    parser.add_argument("--all-sizes", default="32768", help="lengths at which 'all' capture also runs")
    parser.add_argument("--cold-from", type=int, default=262144,
                        help="from this length on, one run without a warm-up")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--layers", type=int, default=36)
    parser.add_argument("--gemm-rows", type=int, default=65536, help="row tiles of the GEMM beyond this length")
    parser.add_argument("--corpus-texts", type=int, default=1000)
    parser.add_argument("--corpus-min", type=int, default=200)
    parser.add_argument("--corpus-max", type=int, default=2000)
    parser.add_argument("--token-budget", type=int, default=32768, help="padded tokens per corpus batch")
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds for the whole run")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backend", choices=["transformers", "reference"], default="transformers")
    parser.add_argument("--tiny", action="store_true", help="a tiny model (dry runs)")
    parser.add_argument("--tmp", default=os.environ.get("ATTNPROX_BENCH_TMP"), help="where the model file goes")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.later_sizes = [int(s) for s in args.later_sizes.split(",") if s]
    args.capture = [c for c in args.capture.split(",") if c]
    args.all_sizes = {int(s) for s in args.all_sizes.split(",") if s}
    budget = Budget(args.budget_s)
    device = Device(args.device)
    shape = TINY if args.tiny else QWEN3_8B
    dtype = torch.bfloat16 if device.cuda else torch.float32
    report = {"device": device.describe(), "torch": torch.__version__, "attnprox": attnprox.__version__,
              "layers": args.layers, "shape": shape, "dtype": str(dtype).replace("torch.", ""),
              "args": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
              "long_context": []}

    def write():
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)

    try:
        run(args, shape, device, dtype, report, write, budget)
    except KeyboardInterrupt:  # the caller's deadline: keep what was measured
        report["interrupted"] = True
        print("interrupted: writing what was measured", flush=True)
    write()
    tables = table_rows(report)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(tables + "\n")
    print("\n" + tables)


def run(args, shape, device, dtype, report, write, budget):
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        t0 = time.perf_counter()
        if args.backend == "transformers":
            backend = TransformersBackend(shape, args.layers, device, dtype)
        else:
            backend = ReferenceBackend(shape, args.layers, device, dtype, tmp)
        report["backend"] = backend.version
        report["params"] = backend.parameters()
        print(f"model: {report['params'] / 1e9:.3f} B parameters in {time.perf_counter() - t0:.1f} s", flush=True)
        path = os.path.join(tmp, "qwen3.apx")
        t0 = time.perf_counter()
        manifest = backend.export(path)
        report["export_s"] = time.perf_counter() - t0
        if "verification" in manifest:
            v = manifest["verification"]
            report["export_verification"] = {"reference": v["reference"],
                                             "max_abs_diff": max(v["max_abs_diff"].values()),
                                             "allowed_min": min(v["allowed"].values())}
        print(f"export: {report['export_s']:.1f} s {json.dumps(report.get('export_verification', {}))}", flush=True)
        t0 = time.perf_counter()
        engine = attnprox.load(path, device=device.name)
        report["load_s"] = time.perf_counter() - t0
        write()
        run_long_context(args, args.sizes, shape, device, backend, engine, report, write, budget)
        if args.corpus_texts > 0:
            if budget.left() < 20:  # (run_corpus itself times as many batches as the budget allows)
                report["corpus"] = {"skipped": f"{budget.left():.0f} s left"}
            else:
                run_corpus(args, shape, device, backend, engine, report, write, budget)
        run_long_context(args, args.later_sizes, shape, device, backend, engine, report, write, budget)


if __name__ == "__main__":
    sys.exit(main())
