"""Random-weight Hugging Face model directories for tests, demos and benchmarks (no weights can be downloaded):
a `config.json` as transformers writes it and a `model.safetensors` of base-model weights, drawn with a fixed
seed the way `from_config` initialises them (normal(0, 0.02) matrices, unit norms, zero biases)."""
import json
import os
from typing import Optional

import torch

from .config import read_config
from .model import build_model
from .safetensors import save_file


def write_random_model(config: dict, out_dir: str, seed: int = 0, std: float = 0.02,
                       dtype: Optional[torch.dtype] = None) -> str:
    """Writes `out_dir/config.json` (the given HF config; needs `model_type`) and `out_dir/model.safetensors`.
    Returns out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    cfg = read_config(out_dir)
    model = build_model(cfg, list(range(cfg.num_layers)), complete=True, fused=False)
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, p in model.state_dict().items():
        if p.dim() >= 2:
            w = torch.randn(p.shape, generator=generator) * std
        elif name.endswith("weight"):  # norms
            w = torch.ones(p.shape)
        else:
            w = torch.zeros(p.shape)
        weights[name] = w.to(dtype) if dtype is not None else w
    save_file(weights, os.path.join(out_dir, "model.safetensors"), {"format": "pt"})
    return out_dir


GPT2_SMALL = {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
              "n_head": 12, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
              "bos_token_id": 50256, "eos_token_id": 50256}
