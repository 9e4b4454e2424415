#!/usr/bin/env python3
"""Builds tiny random-weight Hugging Face models and records their eager attention weights.

These are the fidelity fixtures of the reference architectures: `tests/python/test_fidelity.py` exports each
directory with `attnprox.export_reference` and requires the attention attnprox rebuilds from Q and K to equal the
attention recorded here by Hugging Face `transformers` (`output_attentions=True`, eager attention) to 1e-5.

Needs `transformers` (4.5x or 5.x) and torch; no network, no downloaded weights (`from_config` only).

    python3 tests/gpu/make_hf_fixtures.py OUT_DIR

writes, for every model NAME below,
    OUT_DIR/NAME/config.json, OUT_DIR/NAME/model.safetensors   (save_pretrained)
    OUT_DIR/NAME/attentions.npz                                 (what HF computed; see `record`)
and OUT_DIR/versions.json with the versions of the libraries that made them.
"""
import json
import os
import sys

import numpy as np
import torch
import transformers as tf

VOCAB = 96
SEED = 20261123


def tiny_models():
    """(name, model) pairs: every reference family, base-model and head-model weight names, GQA/MQA,
    learned and rotary positions (plain, llama3-scaled), causal and bidirectional, a sliding window."""
    yield "gpt2", tf.GPT2LMHeadModel(tf.GPT2Config(
        vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=3, n_head=4, activation_function="gelu_new"))
    yield "gpt2-inverse-layer-scaling", tf.GPT2Model(tf.GPT2Config(
        vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=3, n_head=4, scale_attn_by_inverse_layer_idx=True))
    yield "bert", tf.BertForMaskedLM(tf.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=32, type_vocab_size=2))
    yield "distilbert", tf.DistilBertModel(tf.DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=3, n_heads=4, hidden_dim=64, max_position_embeddings=32))
    yield "llama", tf.LlamaForCausalLM(tf.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16}))
    yield "llama-base", tf.LlamaModel(tf.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=64, attention_bias=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}))
    yield "qwen3", tf.Qwen3Model(tf.Qwen3Config(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=64, use_sliding_window=True, sliding_window=4,
        max_window_layers=1, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}))
    yield "qwen3-causal-lm", tf.Qwen3ForCausalLM(tf.Qwen3Config(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}))


def randomize(model, generator):
    """from_config's 0.02-std init makes near-uniform attention, a weak test: use larger weights so that the
    attention patterns are sharp and differ between heads and layers."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm = "norm" in name.lower() or ".ln_" in name or name.startswith("ln_")
            if p.dim() == 1 and is_norm and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))


def eager(model):
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:
        model.config._attn_implementation = "eager"
    return model.eval()


def attentions_of(model, ids, mask):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    att = out.attentions
    if att is None or any(a is None for a in att):
        raise SystemExit(f"{type(model).__name__} returned no attentions")
    return np.stack([a.float().numpy() for a in att])  # [L, B, H, N, N]


def record(model, rng):
    """Single sequences (lengths 1, 6, 17) and one right-padded batch (lengths 9 and 4)."""
    arrays = {}
    for k, n in enumerate([1, 6, 17]):
        ids = rng.integers(0, VOCAB, size=(1, n))
        att = attentions_of(model, torch.tensor(ids), torch.ones(1, n, dtype=torch.long))
        arrays[f"ids_{k}"] = ids[0]
        arrays[f"attention_{k}"] = att[:, 0]  # [L, H, N, N]
    lengths = [9, 4]
    batch = np.zeros((2, max(lengths)), dtype=np.int64)
    mask = np.zeros_like(batch)
    for b, n in enumerate(lengths):
        batch[b, :n] = rng.integers(1, VOCAB, size=n)
        mask[b, :n] = 1
    att = attentions_of(model, torch.tensor(batch), torch.tensor(mask))
    arrays["batch_ids"] = batch
    arrays["batch_mask"] = mask
    arrays["batch_attention"] = att  # [L, B, H, N, N]; rows/cols of padding are not meaningful
    return arrays


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    for k, (name, model) in enumerate(tiny_models()):
        generator = torch.Generator().manual_seed(SEED + k)
        randomize(model, generator)
        eager(model)
        path = os.path.join(out_dir, name)
        model.save_pretrained(path, safe_serialization=True)
        arrays = record(model, np.random.default_rng(SEED + k))
        np.savez_compressed(os.path.join(path, "attentions.npz"), **arrays)
        print(f"{name}: {type(model).__name__}, attention {arrays['attention_2'].shape}, "
              f"max weight {arrays['attention_2'].max():.3f}")
    with open(os.path.join(out_dir, "versions.json"), "w") as f:
        json.dump({"torch": torch.__version__, "transformers": tf.__version__, "numpy": np.__version__,
                   "script": "tests/gpu/make_hf_fixtures.py", "seed": SEED}, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "hf_fixtures")
