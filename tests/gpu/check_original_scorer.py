#!/usr/bin/env python3
"""attnprox's defaults against the original Attention Proximity scorer on Hugging Face models (the GPU machine,
with transformers 5.x and torch 2.x): random-weight `from_config` Qwen3 and Llama models (no weights can be
downloaded), the original's logic (github wilestk/attention-proximity-app, `proximity-score-app/backend/scorer.py`)
re-implemented here in NumPy on the queries and keys its forward hooks take — the last layer's `q_norm` / `k_norm`
outputs (Qwen3) or `q_proj` / `k_proj` outputs (Llama, which has no q/k norm), i.e. before RoPE — and the same
model exported with `attnprox.export` and run by the engine with its defaults. AP_i, AP and iAPE_i / APE must agree
to float rounding; the queries and keys before RoPE must equal the hooks'; the post-RoPE measurements
(`rope=True`) are reported beside them.

    PYTHONPATH=<build>/python python3 tests/gpu/check_original_scorer.py OUT_DIR [--device cuda|cpu]

Writes OUT_DIR/original_scorer.json (one entry per model and dtype: the largest differences and the bounds they
were held to) and exits 1 on any mismatch or failure (2 for bad usage). The original divides by
sqrt(hidden_size / num_heads); attnprox by sqrt(head size): the models here have hidden_size = heads · head size,
and one model where they differ is checked against the ratio of the two.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import traceback

import numpy as np

CONFIGS = {
    # Qwen3-style: q/k RMSNorm before RoPE, grouped-query attention.
    "qwen3": dict(model_type="qwen3", vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=3,
                  num_attention_heads=8, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, tie_word_embeddings=False),
    # Llama-3-style: no q/k norm (hooks on the projections), llama3 rope scaling.
    "llama": dict(model_type="llama", vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=512,
                  tie_word_embeddings=False,
                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 64}),
    # Qwen3 with head_dim ≠ hidden_size / heads (as Qwen3-0.6B): the original's scale differs from attnprox's.
    "qwen3-wide-heads": dict(model_type="qwen3", vocab_size=512, hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                             max_position_embeddings=512, tie_word_embeddings=False,
                             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
}
SEQUENCE_LENGTHS = (37, 300)
# Bounds, relative to the largest |A| entry (AP) and absolute in nats (APE), per dtype: float32 the original's
# float32 products and means against attnprox's float64 sums; float16/bfloat16 also the rounding of the
# post-RoPE values the engine un-rotates (one unit in the last place of each rotated value).
BOUNDS = {"float32": {"ap": 1e-5, "ape": 1e-4, "qk": 1e-5},
          "float16": {"ap": 5e-3, "ape": 5e-3, "qk": 2e-3},
          "bfloat16": {"ap": 4e-2, "ape": 4e-2, "qk": 1.6e-2}}


def original_row_entropy(row):
    shifted = row - row.min() + 1e-8
    probs = shifted / shifted.sum()
    return float(-np.sum(probs * np.log(probs + 1e-10)))


def original_scores(q, k, scale_dim):
    """The original's score_text after its forward: q [1, H, N, d], k [1, Hkv, N, d] as its hooks store them."""
    q = q.astype(np.float32)
    k = np.repeat(k.astype(np.float32), q.shape[1] // k.shape[1], axis=1)
    scores = np.matmul(q[0], np.transpose(k[0], (0, 2, 1))) / np.float32(scale_dim ** 0.5)
    a = scores.mean(axis=0)
    proximity = (a + a.T) / 2
    n = proximity.shape[0]
    off = ~np.eye(n, dtype=bool)
    ap = np.array([proximity[i][off[i]].mean() for i in range(n)], dtype=np.float64)
    ape = np.array([original_row_entropy(proximity[i][off[i]]) for i in range(n)])
    return {"ap": ap, "ape": ape, "scalar_ap": float(ap.mean()), "scalar_ape": float(ape.mean()),
            "scale": float(np.abs(proximity).max())}


def hooked(model, ids):
    """The last layer's queries and keys where the original hooks them, [1, heads, N, d] float32 NumPy arrays."""
    import torch

    base = getattr(model, "model", model)
    attention = base.layers[len(base.layers) - 1].self_attn
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    has_norm = hasattr(attention, "q_norm") and not isinstance(attention.q_norm, torch.nn.Identity)
    cache = {}

    def hook(name):
        def record(module, inputs, output):
            b, n = output.shape[0], output.shape[1]
            cache[name] = output.reshape(b, n, -1, head_dim).transpose(1, 2).detach().float().cpu().numpy()
        return record

    handles = [(attention.q_norm if has_norm else attention.q_proj).register_forward_hook(hook("q")),
               (attention.k_norm if has_norm else attention.k_proj).register_forward_hook(hook("k"))]
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return cache["q"], cache["k"], has_norm, head_dim


def check_model(name, config_kwargs, dtype_name, device, work):
    import torch
    import transformers

    import attnprox
    from attnprox.hf_export import export

    dtype = getattr(torch, dtype_name)
    torch.manual_seed(1234)
    kwargs = dict(config_kwargs)
    config = transformers.AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
    model = transformers.AutoModel.from_config(config, attn_implementation="eager")
    with torch.no_grad():  # weights large enough for varied attention (from_config's are 0.02)
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(10.0)
    model = model.to(dtype).to(device).eval()
    path = os.path.join(work, f"{name}-{dtype_name}.apx")
    manifest = export(model, path, layers="last", device=device)
    entry = {"model": name, "dtype": dtype_name, "rope": manifest.get("rope"), "lengths": {}}
    if not isinstance(manifest.get("rope"), dict) or "inv_freq" not in manifest["rope"]:
        entry["error"] = f"the manifest does not record the rotation: {manifest.get('rope')!r}"
        return entry, False
    engine = attnprox.load(path, device=device)
    bounds = BOUNDS[dtype_name]
    ok = True
    for n in SEQUENCE_LENGTHS:
        ids = (torch.arange(n) * 37 + 11).remainder(config.vocab_size).view(1, n).to(device)
        q, k, has_norm, head_dim = hooked(model, ids)
        result = engine.run(ids=ids[0].tolist())
        want = original_scores(q, k, head_dim)
        scale = want["scale"]
        got_ap = result.ap_tokens()
        got_ape = result.ape()
        q_engine, k_engine = result.queries(rope=False), result.keys(rope=False)
        row = {
            "hook": "q_norm/k_norm" if has_norm else "q_proj/k_proj",
            "ap_max_abs_diff": float(np.abs(got_ap - want["ap"]).max()),
            "ap_allowed": bounds["ap"] * scale,
            "scalar_ap": [float(result.ap()), want["scalar_ap"]],
            "ape_max_abs_diff": float(np.nanmax(np.abs(got_ape.tokens - want["ape"]))),
            "ape_allowed": bounds["ape"],
            "scalar_ape": [float(got_ape), want["scalar_ape"]],
            "undefined_rows": got_ape.undefined_rows,
            "queries_max_rel_diff": float(np.abs(q_engine - q[0]).max() / (np.abs(q).max() + 1e-30)),
            "keys_max_rel_diff": float(np.abs(k_engine - k[0]).max() / (np.abs(k).max() + 1e-30)),
            "qk_allowed": bounds["qk"],
            "post_rope_scalar_ap": float(result.ap(rope=True)),
            "post_rope_scalar_ape": float(result.ape(rope=True)),
        }
        config_hidden_heads = config.hidden_size // config.num_attention_heads
        if config_hidden_heads != head_dim:  # the original's own scale, against attnprox's true head size
            as_original = original_scores(q, k, config_hidden_heads)
            factor = math.sqrt(config_hidden_heads / head_dim)
            row["hidden_over_heads_scale_max_abs_diff"] = float(np.abs(got_ap - as_original["ap"] * factor).max())
            row["hidden_over_heads_scalar_ap"] = as_original["scalar_ap"]
            ok_scale = row["hidden_over_heads_scale_max_abs_diff"] <= bounds["ap"] * scale
            ok = ok and ok_scale
        passed = (row["ap_max_abs_diff"] <= row["ap_allowed"] and row["ape_max_abs_diff"] <= row["ape_allowed"]
                  and row["undefined_rows"] == 0 and row["queries_max_rel_diff"] <= bounds["qk"]
                  and row["keys_max_rel_diff"] <= bounds["qk"])
        row["passed"] = passed
        ok = ok and passed
        entry["lengths"][str(n)] = row
    entry["passed"] = ok
    return entry, ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for original_scorer.json")
    parser.add_argument("--device", default=None, help="cuda (default where available) or cpu")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated (default float32,bfloat16)")
    args = parser.parse_args(argv)
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        print(f"check_original_scorer: needs torch and transformers: {e}", file=sys.stderr)
        return 1
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in dtypes if d not in BOUNDS]
    if unknown:
        print(f"check_original_scorer: unknown dtype(s) {unknown}; expected {sorted(BOUNDS)}", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    os.makedirs(args.out, exist_ok=True)
    summary = {"device": device, "torch": torch.__version__, "transformers": transformers.__version__,
               "models": [], "passed": True}
    with tempfile.TemporaryDirectory() as work:
        for name, config_kwargs in CONFIGS.items():
            for dtype_name in dtypes:
                print(f"==> {name} {dtype_name} on {device}", flush=True)
                try:
                    entry, ok = check_model(name, config_kwargs, dtype_name, device, work)
                except Exception as e:  # noqa: BLE001  (reported, and the run fails)
                    entry, ok = {"model": name, "dtype": dtype_name, "error": f"{type(e).__name__}: {e}",
                                 "traceback": traceback.format_exc()}, False
                summary["models"].append(entry)
                summary["passed"] = summary["passed"] and ok
                print(json.dumps({k: v for k, v in entry.items() if k not in ("rope", "traceback")}, indent=1),
                      flush=True)
    with open(os.path.join(args.out, "original_scorer.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print("check_original_scorer: " + ("all agree" if summary["passed"] else "MISMATCH (see original_scorer.json)"))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
