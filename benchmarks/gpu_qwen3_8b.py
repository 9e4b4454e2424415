#!/usr/bin/env python3
"""First GPU figures: a Qwen3-8B-shaped model (36 layers, 32 heads, 8 KV heads, d=128, hidden 4096, MLP 12288;
random bfloat16 weights; a small vocabulary, which changes nothing in attention) at N = 2,048, 8,192 and 32,768.

Same process, same weights, each timed after a warm-up (median of `--reps`), peak GPU memory from the CUDA
caching allocator that libtorch and PyTorch share here:

- attnprox: the model exported with `attnprox.export` (through transformers), run by the C++ engine: forward with
  Q/K capture of every layer, then AP, AP_i and APE (default policy) at the last layer.
- plain: the same transformers model's forward with PyTorch SDPA (`attn_implementation="sdpa"`), no capture.
- HF eager `output_attentions=True`, where it fits in memory (its attention maps alone are 36·32·N²·2 bytes).

attnprox's time is also split into the forward with capture (`engine.run`) and the measurements on its result,
and each row keeps the first call at that length (the warm-up) apart. For the sizes in `--jit-sizes`, a second
engine loaded with ATTNPROX_JIT_OPTIMIZE=1 (TorchScript's profiling executor, which specializes and fuses per
input shape; the engine runs the unoptimized plan by default) shows what that executor costs.

    python3 benchmarks/gpu_qwen3_8b.py OUT.json [--sizes 2048,8192,32768] [--reps 3] [--jit-sizes 2048,8192]
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import torch
import transformers

import attnprox
from attnprox.hf_export import export


def timed(fn, reps):
    """(median seconds, peak bytes, first-call seconds) of fn after one warm-up call."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()  # warm-up
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    times = []
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() - base
    return statistics.median(times), peak, first


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--sizes", default="2048,8192,32768")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--layers", type=int, default=36)
    parser.add_argument("--jit-sizes", default="2048,8192",
                        help="sizes at which to also time the forward under TorchScript's profiling executor")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    jit_sizes = [int(s) for s in args.jit_sizes.split(",") if s]
    config = transformers.Qwen3Config(vocab_size=4096, hidden_size=4096, intermediate_size=12288,
                                      num_hidden_layers=args.layers, num_attention_heads=32, num_key_value_heads=8,
                                      head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6,
                                      tie_word_embeddings=False)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = transformers.AutoModel.from_config(config, attn_implementation="eager", dtype=torch.bfloat16)
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "transformers": transformers.__version__, "attnprox": attnprox.__version__,
              "params": sum(p.numel() for p in model.parameters()), "layers": args.layers, "rows": []}
    print(f"model: {report['params'] / 1e9:.2f} B parameters in {time.perf_counter() - t0:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("ATTNPROX_BENCH_TMP")) as tmp:
        path = os.path.join(tmp, "qwen3-8b-shape.apx")
        t0 = time.perf_counter()
        manifest = export(model, path, device="cuda")
        report["export_s"] = time.perf_counter() - t0
        v = manifest["verification"]
        report["export_max_diff"] = max(v["max_abs_diff"].values())
        report["export_diff_and_allowed_per_layer"] = {i: [v["max_abs_diff"][i], v["allowed"][i]]
                                                       for i in v["max_abs_diff"]}
        print(f"export + verification: {report['export_s']:.1f} s, max diff {report['export_max_diff']:.2e}",
              flush=True)
        write(report, args.out)
        t0 = time.perf_counter()
        engine = attnprox.load(path, device="cuda")
        report["load_s"] = time.perf_counter() - t0
        jit_engine = None
        if jit_sizes:
            os.environ["ATTNPROX_JIT_OPTIMIZE"] = "1"
            jit_engine = attnprox.load(path, device="cuda")
            del os.environ["ATTNPROX_JIT_OPTIMIZE"]
        g = torch.Generator().manual_seed(1)
        for n in sizes:
            ids = torch.randint(0, config.vocab_size, (n,), generator=g)
            row = {"n": n}

            def run_attnprox():
                r = engine.run(ids=ids.tolist())
                r.ap()
                r.ap_tokens()
                r.ape()

            held = {}  # the result the measurements are timed on, alive only while they are

            def run_forward():
                engine.run(ids=ids.tolist())

            def run_measurements():
                held["result"].ap()
                held["result"].ap_tokens()
                held["result"].ape()

            def run_jit_forward():
                jit_engine.run(ids=ids.tolist())

            def run_plain():
                with torch.no_grad():
                    model(input_ids=ids.view(1, n).cuda(), use_cache=False)

            def run_eager():
                with torch.no_grad():
                    out = model(input_ids=ids.view(1, n).cuda(), use_cache=False, output_attentions=True)
                del out

            variants = [("attnprox", run_attnprox, None), ("attnprox_forward", run_forward, None),
                        ("attnprox_measurements", run_measurements, None)]
            if jit_engine is not None and n in jit_sizes:
                variants.append(("attnprox_forward_jit_optimize", run_jit_forward, None))
            variants += [("plain_sdpa", run_plain, "sdpa"), ("hf_eager_output_attentions", run_eager, "eager")]
            for name, fn, impl in variants:
                if impl:
                    model.set_attn_implementation(impl)
                need = args.layers * 32 * n * n * 2
                if name.startswith("hf_eager") and need > 0.8 * torch.cuda.mem_get_info()[0]:
                    row[name] = {"skipped": f"its attention maps alone need {need / 2**30:.0f} GiB"}
                    continue
                if name == "attnprox_measurements":
                    held["result"] = engine.run(ids=ids.tolist())
                try:
                    seconds, peak, first = timed(fn, args.reps)
                    row[name] = {"seconds": seconds, "peak_gib": peak / 2**30, "first_call_s": first}
                except torch.cuda.OutOfMemoryError as e:
                    row[name] = {"oom": str(e).split("\n")[0]}
                except RuntimeError as e:  # the engine's out-of-memory arrives as attnprox.ComputeError
                    row[name] = {"error": str(e).split("\n")[0][:300]}
                held.clear()
                torch.cuda.empty_cache()
            if jit_engine is not None and n >= max(jit_sizes):
                jit_engine = None  # its weights' memory back for the longer inputs
                torch.cuda.empty_cache()
            if "seconds" in row.get("attnprox", {}) and "seconds" in row.get("plain_sdpa", {}):
                row["ratio_attnprox_over_plain"] = row["attnprox"]["seconds"] / row["plain_sdpa"]["seconds"]
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
            write(report, args.out)  # after each length, so that a run cut short keeps what it measured
    write(report, args.out)


def write(report, path):
    with open(path, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
