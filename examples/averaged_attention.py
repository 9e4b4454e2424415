#!/usr/bin/env python3
"""The averaged attention matrix of a prompt in the default model (a trained decoder): the mean of every layer's
every head, the picture the attention write-ups drew by hand.

    /usr/bin/python3 examples/averaged_attention.py [OUT_DIR]
"""
import os
import sys

import numpy as np

import attnprox
from attnprox import plots


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    model = attnprox.load()  # the default model
    result = model.run(text="write a story about AI")
    mean = result.average_attention()  # [N, N]: every captured layer × every head
    labels = plots.labels(result)
    for i, row in enumerate(mean):
        print(f"{labels[i]:>8} attends most to {labels[int(np.argmax(row))]!r} ({row.max():.3f})")
    path = plots.save(plots.average_attention(result), os.path.join(out_dir, "averaged_attention.png"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-examples")
