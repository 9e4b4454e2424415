#!/usr/bin/env python3
"""Every layer × every head of a prompt in one picture, each labelled with its layer, head and the key/value group
it reads (grouped-query attention).

    /usr/bin/python3 examples/grid.py [OUT_DIR]
"""
import os
import sys

import attnprox
from attnprox import plots


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    model = attnprox.load()  # the default model: 6 layers × 8 heads, 2 key heads
    result = model.run(text="The bank by the river was steep.")
    for ext in ("png", "svg"):
        print("wrote", plots.save(plots.grid(result), os.path.join(out_dir, f"grid.{ext}")))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-examples")
