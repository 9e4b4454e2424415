#!/usr/bin/env python3
"""Writes the two model files benchmarks/capture_overhead compares, both from one random-weight GPT-2-small-
shaped model (12 layers, 12 heads, d_model 768; seed 0):

    OUT/capture.apx    attnprox model file, every layer captured (attnprox.export_reference)
    OUT/plain.pt       the same architecture's plain forward, nothing captured: all 12 layers and the final
                       LayerNorm, returning the hidden states (TorchScript)

    PYTHONPATH=build/python python3 benchmarks/make_capture_models.py OUT
"""
import os
import sys

import torch

import attnprox
from attnprox.reference.common import PlainForward
from attnprox.reference.model import load_reference_model
from attnprox.reference.random_model import GPT2_SMALL, write_random_model


def main(out: str) -> None:
    hf_dir = write_random_model(GPT2_SMALL, os.path.join(out, "gpt2-small-random"), seed=0)
    attnprox.export_reference(hf_dir, os.path.join(out, "capture.apx"))
    model, _, _ = load_reference_model(hf_dir, "all", complete=True)
    torch.jit.save(torch.jit.script(PlainForward(model)), os.path.join(out, "plain.pt"))
    print(f"wrote {out}/capture.apx and {out}/plain.pt (torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv[1])
