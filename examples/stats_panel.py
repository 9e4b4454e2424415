#!/usr/bin/env python3
"""The stats panel with a temperature: the same text's attention statistics at temperatures 0.5, 1 and 2 (a higher
temperature flattens attention), and the interactive view at temperature 2.

    /usr/bin/python3 examples/stats_panel.py [OUT_DIR]
"""
import os
import sys

import attnprox


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    model = attnprox.load()  # the default model
    result = model.run(text="Tell me a very simple short story.")
    for temperature in (0.5, 1.0, 2.0):
        s = result.attention_stats(temperature=temperature)
        print(f"T={temperature}: mean entropy {s.mean_entropy:.4f} (normalised {s.mean_normalized_entropy:.4f}), "
              f"max weight {s.max_weight:.4f}, most attended token {s.most_attended}")
    path = result.view(temperature=2.0).save(os.path.join(out_dir, "stats_panel.html"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-examples")
