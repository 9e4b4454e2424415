#!/usr/bin/env python3
"""Model files for benchmarks/measurements_cost:

    OUT/gpt2-small-8k.apx   GPT-2-small shape (12 layers, 12 heads, d_model 768, random weights, seed 0) with 8,192
                            positions, every layer captured
    OUT/qk-16k.apx          a forward that only returns GPT-2-small-shaped queries and keys (12 layers of
                            [B, 12, N, 64], deterministic values) for up to 16,384 tokens: for measuring the memory
                            of the measurements at a length where the real forward's eager attention would not fit

    PYTHONPATH=build/python python3 benchmarks/make_measurement_models.py OUT
"""
import json
import os
import sys
from typing import List, Tuple

import torch
from torch import Tensor

import attnprox
from attnprox.reference.export import MANIFEST_NAME
from attnprox.reference.random_model import GPT2_SMALL, write_random_model


class SyntheticQK(torch.nn.Module):
    """Queries and keys that vary with token and position (sin/cos of id·position products)."""

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        b, n = input_ids.shape[0], input_ids.shape[1]
        position = torch.arange(n, dtype=torch.float32).view(1, 1, n, 1)
        feature = torch.arange(64, dtype=torch.float32).view(1, 1, 1, 64)
        head = torch.arange(12, dtype=torch.float32).view(1, 12, 1, 1)
        ids = input_ids.to(torch.float32).view(b, 1, n, 1)
        queries: List[Tensor] = []
        keys: List[Tensor] = []
        for layer in range(12):
            queries.append(torch.sin(0.01 * (position + 1.0) * (feature + 1.0) + ids * 0.001 + head + layer))
            keys.append(torch.cos(0.013 * (position + 2.0) * (feature + 1.0) + ids * 0.002 - head + layer))
        return queries, keys


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    config = dict(GPT2_SMALL, n_positions=8192)
    hf_dir = write_random_model(config, os.path.join(out, "gpt2-small-8k-hf"), seed=0)
    attnprox.export_reference(hf_dir, os.path.join(out, "gpt2-small-8k.apx"))
    manifest = {"format": "attnprox-model", "format_version": 1, "family": "synthetic", "num_layers": 12,
                "captured_layers": list(range(12)), "num_heads": 12, "num_kv_heads": 12, "head_dim": 64,
                "causal": True, "max_positions": 16384, "vocab_size": 50257, "dtype": "float32",
                "layers": [{"index": i, "scaling": 0.125} for i in range(12)]}
    torch.jit.save(torch.jit.script(SyntheticQK()), os.path.join(out, "qk-16k.apx"),
                   _extra_files={MANIFEST_NAME: json.dumps(manifest)})
    print(f"wrote {out}/gpt2-small-8k.apx and {out}/qk-16k.apx")


if __name__ == "__main__":
    main(sys.argv[1])
