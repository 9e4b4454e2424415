#!/usr/bin/env python3
"""`attnprox.export` (through transformers) on every family the README names, with random-weight `from_config` models
(no weights can be downloaded): GPT-2, BERT, DistilBERT, Llama 3, Qwen3 (with sliding-window layers), gpt-oss
(sinks, sliding window, mixture of experts), and BART (encoder–decoder, cross-attention marked); T5 must be
refused with its reason. Run by tests/gpu/run.sh on the machine with transformers:

    python3 tests/gpu/check_exporter.py OUT_DIR        (PYTHONPATH=<build>/python, ATTNPROX_DATA_DIR for tokenizers)

export() itself verifies every file against output_attentions=True (the largest difference per layer is in the
manifest it returns; in float16/bfloat16 against transformers' eager weights computed in float32 from the same
forward's queries and keys, held to a bound computed from them) and that forward_layers gives what forward gives;
this script also checks the manifests' facts, --layers, the dtypes, CUDA, that no traced forward of one sequence
builds an N × N mask for a layer that needs none (families without sliding windows or sinks), and writes
OUT_DIR/exporter.json and OUT_DIR/gpt2-foreign-torch.apx (a small file for the CPU tests' version check).
"""
import json
import os
import sys
import tempfile
import traceback

import torch
import transformers

import attnprox
from attnprox import ExportError
from attnprox.hf_export import export
from attnprox.reference.tokenizer_files import install_family_tokenizer

DATA = os.environ.get("ATTNPROX_DATA_DIR", "")
CUDA_FAMILIES = ("llama3", "gpt_oss", "bart")
PROMPTS = ["Emily always wanted to visit Paris so she took some French lessons",
           "The bank by the river was steep.", "write a story about AI"]


def tokenizer_into(kind, out_dir):
    """The family's real tokenizer from the shared data into out_dir; False when there is no shared data (the model
    then verifies on random ids)."""
    t = os.path.join(DATA, "tokenizers")
    if not os.path.isdir(t):
        return False
    install_family_tokenizer(kind, t, out_dir)
    return True


def families():
    c = transformers
    return {
        "gpt2": (c.GPT2Config(vocab_size=50257, n_positions=128, n_embd=32, n_layer=3, n_head=4), "gpt2"),
        "bert": (c.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=128), "bert"),
        "distilbert": (c.DistilBertConfig(vocab_size=30522, dim=32, n_layers=3, n_heads=4, hidden_dim=64,
                                          max_position_embeddings=128), "bert"),
        "llama3": (c.LlamaConfig(vocab_size=128256, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                 rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                  "original_max_position_embeddings": 64}), "llama3"),
        "qwen3": (c.Qwen3Config(vocab_size=151936, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                max_position_embeddings=256, use_sliding_window=True, sliding_window=5,
                                max_window_layers=2,
                                layer_types=["full_attention", "full_attention", "sliding_attention",
                                             "sliding_attention"]), "qwen3"),
        "gpt_oss": (c.GptOssConfig(vocab_size=201088, hidden_size=32, intermediate_size=32, num_hidden_layers=4,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_local_experts=4,
                                   num_experts_per_tok=2, sliding_window=5, max_position_embeddings=256,
                                   layer_types=["sliding_attention", "full_attention"] * 2), "gpt-oss"),
        "bart": (c.BartConfig(vocab_size=1000, d_model=32, encoder_layers=2, decoder_layers=2,
                              encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                              decoder_ffn_dim=64, max_position_embeddings=128), None),
    }


# Families whose every layer is plain causal or bidirectional attention: their traced forward of one sequence holds
# no N × N tensor outside torch's fused attention kernels.
NO_MASK_FAMILIES = ("gpt2", "bert", "distilbert", "llama3", "bart")


def square_tensors(path, device, n):
    """(operator, shape) of every operator input with two dimensions of size n in one forward of n tokens of the
    model file, outside torch's scaled_dot_product_attention (whose kernels choose their own work space)."""
    module = torch.jit.load(path, map_location=device)
    ids = torch.randint(0, 100, (1, n), device=device)

    def inside_sdpa(event):
        parent = event.cpu_parent
        while parent is not None:
            if "scaled_dot_product" in parent.name:
                return True
            parent = parent.cpu_parent
        return False

    with torch.no_grad(), torch.autograd.profiler.profile(record_shapes=True) as prof:
        module(ids, torch.ones_like(ids))
    return sorted({(e.name, tuple(shape)) for e in prof.function_events for shape in e.input_shapes
                   if isinstance(shape, (list, tuple)) and sum(1 for x in shape if x == n) >= 2
                   and not inside_sdpa(e)})


def make_model(config, out_dir, seed=0):
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config, attn_implementation="eager")
    with torch.no_grad():  # larger than the default init, so that attention is far from uniform
        for name, p in model.named_parameters():
            if p.dim() >= 2 or name.endswith("sinks"):
                p.normal_(0.0, 0.3 if name.endswith("sinks") else 0.08)
    model.save_pretrained(out_dir)
    return model


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    report = {"torch": torch.__version__, "transformers": transformers.__version__,
              "attnprox": attnprox.__version__, "families": {}, "failures": []}
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, tok) in families().items():
            hf_dir = os.path.join(tmp, name)
            entry = report["families"][name] = {}
            try:
                make_model(config, hf_dir)
                texts = PROMPTS if tok and tokenizer_into(tok, hf_dir) else None
                out = os.path.join(tmp, f"{name}.apx")
                manifest = export(hf_dir, out, verify_texts=texts)
                diffs = manifest["verification"]["max_abs_diff"]
                entry["float32_cpu_max_diff"] = max(diffs.values())
                entry["layers"] = [{k: v for k, v in layer.items() if k != "sinks"} | {
                    "sinks": layer["sinks"] is not None} for layer in manifest["layers"]]
                entry["verified_on"] = manifest["verification"]["inputs"]
                entry["tokenizer"] = texts is not None
                if not entry["float32_cpu_max_diff"] <= 1e-5:
                    report["failures"].append(f"{name}: {entry['float32_cpu_max_diff']:.3g} > 1e-5")
                # Facts the manifest must carry.
                layers = manifest["layers"]
                if name == "gpt_oss":
                    assert all(l["sinks"] is not None and len(l["sinks"]) == 4 for l in layers), "sinks missing"
                    assert [l["sliding_window"] for l in layers] == [5, None, 5, None], "windows"
                if name == "qwen3":
                    assert [l["sliding_window"] for l in layers] == [None, None, 5, 5], "qwen3 windows"
                if name == "bart":
                    assert [l["cross_attention"] for l in layers] == [False, False, False, True, False, True]
                    assert [l.get("causal", manifest["causal"]) for l in layers][:4] == [False, False, True, False]
                # No N × N mask where no layer needs one (n = 120 tokens, within every family's positions).
                found = square_tensors(out, "cpu", 120)
                entry["square_tensors_in_forward"] = [f"{name_} {list(shape)}" for name_, shape in found][:6]
                if name in NO_MASK_FAMILIES and found:
                    report["failures"].append(f"{name}: N x N tensors in the traced forward: {found[:3]}")
                # A part of the layers, the model's own file then being shorter to run.
                part = export(hf_dir, os.path.join(tmp, f"{name}-last.apx"), layers="last")
                entry["last_layer_max_diff"] = max(part["verification"]["max_abs_diff"].values())
                if cuda:
                    # Traced on the GPU in each dtype (three families, to keep the run short).
                    for dtype in (("float32", "bfloat16", "float16") if name in CUDA_FAMILIES else ()):
                        try:
                            m = export(hf_dir, os.path.join(tmp, f"{name}-{dtype}-cuda.apx"), dtype=dtype,
                                       device="cuda", verify_texts=texts)
                            entry[f"{dtype}_cuda_max_diff"] = max(m["verification"]["max_abs_diff"].values())
                            entry[f"{dtype}_cuda_allowed"] = min(m["verification"]["allowed"].values())
                            entry[f"{dtype}_cuda_reference"] = m["verification"]["reference"]
                            if "eager_rounding" in m["verification"]:
                                entry[f"{dtype}_cuda_eager_rounding"] = max(
                                    m["verification"]["eager_rounding"].values())
                            if name in NO_MASK_FAMILIES:
                                found = square_tensors(os.path.join(tmp, f"{name}-{dtype}-cuda.apx"), "cuda", 120)
                                if found:
                                    report["failures"].append(f"{name} {dtype} cuda: N x N tensors {found[:3]}")
                        except ExportError as e:
                            entry[f"{dtype}_cuda_error"] = str(e)
                            report["failures"].append(f"{name} {dtype} cuda: {e}")
                    # A file traced on the CPU, loaded on the GPU.
                    try:
                        r = attnprox.load(out, device="cuda").run(ids=[1, 2, 3, 4, 5, 6, 7])
                        cpu = attnprox.load(out).run(ids=[1, 2, 3, 4, 5, 6, 7])
                        entry["cpu_traced_on_cuda_max_diff"] = float(abs(r.attention(-1) - cpu.attention(-1)).max())
                    except Exception as e:  # noqa: BLE001
                        entry["cpu_traced_on_cuda_error"] = f"{type(e).__name__}: {e}"
                if name == "gpt2":
                    small = os.path.join(tmp, "gpt2-small")
                    make_model(transformers.GPT2Config(vocab_size=512, n_positions=64, n_embd=16, n_layer=2,
                                                       n_head=2), small)
                    export(small, os.path.join(out_dir, "gpt2-foreign-torch.apx"))
            except Exception as e:  # noqa: BLE001
                entry["error"] = f"{type(e).__name__}: {e}"
                entry["traceback"] = traceback.format_exc()[-3000:]
                report["failures"].append(f"{name}: {type(e).__name__}: {e}")
            print(name, json.dumps({k: v for k, v in entry.items() if k not in ("layers", "traceback")}),
                  flush=True)
            with open(os.path.join(out_dir, "exporter.json"), "w") as f:  # as far as it got
                json.dump(report, f, indent=2)
        # A model whose attention the file cannot express must be refused with the reason.
        t5_dir = os.path.join(tmp, "t5")
        make_model(transformers.T5Config(vocab_size=1000, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4),
                   t5_dir)
        try:
            export(t5_dir, os.path.join(tmp, "t5.apx"))
            report["t5"] = "exported (unexpected)"
            report["failures"].append("t5 was exported, it should have been refused")
        except ExportError as e:
            report["t5"] = f"refused: {e}"
        except Exception as e:  # noqa: BLE001
            report["t5"] = f"{type(e).__name__}: {e}"
            report["failures"].append(f"t5 failed without a clear ExportError: {type(e).__name__}: {e}")
        print("t5", report["t5"], flush=True)
    with open(os.path.join(out_dir, "exporter.json"), "w") as f:
        json.dump(report, f, indent=2)
    print("FAILURES:\n  " + "\n  ".join(report["failures"]) if report["failures"] else "check_exporter: all passed")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "exporter-out"))
