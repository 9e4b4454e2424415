#!/usr/bin/env python3
"""attnprox on CUDA (run by tests/gpu/run.sh on the GPU machine): the fixture models of tests/fixtures/hf exported
with the reference exporter, loaded on the GPU in float32, float16 and bfloat16, against what Hugging Face
transformers recorded (tests/gpu/make_hf_fixtures.py); and every measurement computed on the GPU against the
float64 NumPy reference (attnprox.metrics) on the same queries and keys.

    python3 tests/gpu/check_cuda.py OUT.json        (PYTHONPATH=<gpu build>/python)

Bounds: float32 1e-5 (docs/measurements.md §2); float16 and bfloat16 are recorded, with loose bounds (their Q/K are
rounded). Also APE (every policy) and AP on 10,000 tokens (several tiles and chunks) in float32 and bfloat16
against the Eigen reference on the same queries and keys, and APE's fused CUDA kernel against the same tiles
through ATen operations (ATTNPROX_CUDA_KERNELS=0), within 1e-4.
"""
import json
import os
import sys
import tempfile
from unittest import mock

import numpy as np
import torch

import attnprox
from attnprox import metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "hf")
BOUNDS = {"float32": 1e-5, "float16": 5e-3, "bfloat16": 3e-2}


def attention_diffs(model, recorded):
    worst = 0.0
    for k in range(3):
        ids = recorded[f"ids_{k}"]
        result = model.run(ids=ids)
        want = recorded[f"attention_{k}"]
        for layer in model.captured_layers:
            worst = max(worst, float(np.abs(result.attention(layer) - want[layer]).max()))
    mask = recorded["batch_mask"]
    sequences = [list(row[: int(m.sum())]) for row, m in zip(recorded["batch_ids"], mask)]
    for b, result in enumerate(model.run(ids=sequences)):
        n = len(sequences[b])
        for layer in model.captured_layers:
            want = recorded["batch_attention"][layer, b, :, :n, :n]
            worst = max(worst, float(np.abs(result.attention(layer) - want).max()))
    return worst


def measurement_diffs(model, ids):
    """Every measurement on the GPU against brute-force float64 NumPy on the same Q/K (APE: attnprox.metrics,
    the Eigen reference, on that NumPy proximity matrix)."""
    r = model.run(ids=ids)
    worst = {}

    def note(name, got, want):
        got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        worst[name] = max(worst.get(name, 0.0), float(np.abs(got - want).max()) if got.size else 0.0)

    for layer in model.captured_layers:
        # The proximity family: by default on the queries and keys before RoPE, with rope=True on those after.
        for rope in (False, True):
            suffix = "_after_rope" if rope else ""
            q = r.queries(layer, rope=rope).astype(np.float64)
            k = r.keys(layer, rope=rope).astype(np.float64)
            h, n, d = q.shape
            groups = np.arange(h) // (h // k.shape[0])
            a_raw = np.einsum("hnd,hmd->hnm", q, k[groups]).mean(0) / np.sqrt(d)
            a = (a_raw + a_raw.T) / 2
            ap_tokens = (a.sum(1) - np.diag(a)) / (n - 1)
            note("proximity" + suffix, r.proximity(layer, rope=rope), a)
            note("ap_tokens" + suffix, r.ap_tokens(layer, rope=rope), ap_tokens)
            note("ap" + suffix, r.ap(layer, rope=rope), ap_tokens.mean())
            note("subset_proximity" + suffix, r.subset_proximity([0, 2], layer, rope=rope), a[[0, 2]].mean(0))
            for policy in ("literal", "shift", "clamp", "softmax"):
                got = np.asarray(r.ape_tokens(layer, policy=policy, rope=rope))
                want = np.asarray(metrics.ape(proximity=a, policy=policy).tokens)
                if not np.array_equal(np.isnan(got), np.isnan(want)):
                    worst[f"ape_{policy}_undefined_rows_differ{suffix}"] = 1.0
                both = ~(np.isnan(got) | np.isnan(want))
                note(f"ape_tokens_{policy}{suffix}", got[both], want[both])
        p = r.attention(layer).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            want = -(np.where(p > 0, p * np.log(p), 0.0)).sum(-1)
        note("attention_entropy", r.attention_entropy(layer), want)
    return worst


def long_measurements(tmp):
    """APE over several tiles of rows and AP over several chunks of tokens on the GPU, in float32 and bfloat16 (where
    APE's products run in bfloat16 with a float32 result and the grouped queries go as two bfloat16 parts), against
    the Eigen reference (float64) on the same queries and keys: 10,000 tokens of a random Llama with grouped-query
    heads, exported with attnprox's reference architecture."""
    from attnprox.reference.random_model import write_random_model

    config = {"model_type": "llama", "vocab_size": 64, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 1, "num_attention_heads": 8, "num_key_value_heads": 2,
              "max_position_embeddings": 10000, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu"}
    hf_dir = write_random_model(config, os.path.join(tmp, "long-llama"), std=0.3)
    path = os.path.join(tmp, "long-llama.apx")
    attnprox.export_reference(hf_dir, path)
    ids = np.random.default_rng(0).integers(0, 64, 10000).tolist()
    worst = {}
    for dtype in ("float32", "bfloat16"):
        r = attnprox.load(path, device="cuda", dtype=dtype).run(ids=ids)
        # the default: queries and keys before RoPE
        q, k = r.queries(rope=False).astype(np.float64), r.keys(rope=False).astype(np.float64)
        for policy in ("shift", "literal", "clamp", "softmax"):
            got = np.asarray(r.ape(policy=policy).tokens)
            want = np.asarray(metrics.ape(q, k, policy=policy).tokens)
            # The same tiles through ATen operations instead of the fused kernel (where the library has it).
            with mock.patch.dict(os.environ, {"ATTNPROX_CUDA_KERNELS": "0"}):  # restores the variable after
                aten = np.asarray(r.ape(policy=policy).tokens)
            for name, other in (("", want), ("_kernel_vs_aten", aten)):
                both = ~(np.isnan(got) | np.isnan(other))  # literal: rows with a negative entry are undefined
                worst[f"ape_tokens_10000_{dtype}_{policy}{name}"] = (
                    float(np.abs(got[both] - other[both]).max()) if both.any() else 0.0)
                if not np.array_equal(np.isnan(got), np.isnan(other)):
                    worst[f"ape_10000_{dtype}_{policy}{name}_undefined_rows_differ"] = 1.0
        worst[f"ap_tokens_10000_{dtype}"] = float(np.abs(np.asarray(r.ap_tokens()) - metrics.ap_tokens(q, k)).max())
    return worst


def main(out_path):
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    report = {"torch": torch.__version__, "attnprox": attnprox.__version__, "device": torch.cuda.get_device_name(0),
              "families": {}, "failures": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(os.listdir(FIXTURES)):
            if not os.path.isdir(os.path.join(FIXTURES, name)):
                continue
            path = os.path.join(tmp, f"{name}.apx")
            attnprox.export_reference(os.path.join(FIXTURES, name), path)
            recorded = np.load(os.path.join(FIXTURES, name, "attentions.npz"))
            entry = {}
            for dtype, bound in BOUNDS.items():
                model = attnprox.load(path, device="cuda", dtype=dtype)
                diff = attention_diffs(model, recorded)
                entry[f"attention_{dtype}"] = diff
                if not diff <= bound:
                    report["failures"].append(f"{name} {dtype}: attention differs by {diff:.3g} > {bound:g}")
            model = attnprox.load(path, device="cuda")
            ids = [int(i) for i in recorded["ids_2"]]
            entry["measurements_float32"] = m = measurement_diffs(model, ids)
            for key, value in m.items():
                if not value <= 1e-5:
                    report["failures"].append(f"{name}: {key} differs by {value:.3g} on the GPU")
            report["families"][name] = entry
            print(f"{name}: " + ", ".join(f"{k} {v:.2e}" for k, v in entry.items() if not isinstance(v, dict))
                  + f"; measurements max {max(m.values()):.2e}", flush=True)
        long = report["long_measurements"] = long_measurements(tmp)
        print("long texts: " + ", ".join(f"{k} {v:.2e}" for k, v in long.items()), flush=True)
        for key, value in long.items():  # float32 accumulation over 10,000 terms of the rows' sums
            if not value <= 1e-4:
                report["failures"].append(f"{key} differs by {value:.3g} on the GPU")
    with open(out_path, "w") as f:
        json.dump(report, f, indent=2)
    if report["failures"]:
        print("FAILED:\n  " + "\n  ".join(report["failures"]))
        return 1
    print("check_cuda: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "check_cuda.json"))
