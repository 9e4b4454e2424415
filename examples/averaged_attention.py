#!/usr/bin/env python3
"""The averaged attention matrix of a prompt for a decoder model: the mean of every layer's every head, the
picture the attention write-ups drew by hand.

    /usr/bin/python3 examples/averaged_attention.py [OUT_DIR]
"""
import os
import sys

import numpy as np

from attnprox import plots
import demo_models


def main(out_dir: str) -> None:
    model = demo_models.load("qwen3", out_dir)
    result = model.run(text="write a story about AI")
    mean = result.average_attention()  # [N, N]: every captured layer × every head
    labels = plots.labels(result)
    for i, row in enumerate(mean):
        print(f"{labels[i]:>8} attends most to {labels[int(np.argmax(row))]!r} ({row.max():.3f})")
    path = plots.save(plots.average_attention(result), os.path.join(out_dir, "averaged_attention.png"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-examples")
