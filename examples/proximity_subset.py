#!/usr/bin/env python3
"""The proximity matrix A of a prompt with a subset S of tokens outlined, and the text coloured by AP^(S): how
close every token is to the selected ones.

    /usr/bin/python3 examples/proximity_subset.py [OUT_DIR]
"""
import os
import sys

import attnprox
from attnprox import plots

TEXT = "Emily always wanted to visit Paris and she took some French lessons in high school"


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    model = attnprox.load()  # the default model
    result = model.run(text=TEXT)
    labels = plots.labels(result)
    subset = [labels.index("Paris"), labels.index("French")]  # the labels show tokens without their spaces
    values = result.subset_proximity(subset)
    print(f"AP = {result.ap():.4f}; S = {[labels[i] for i in subset]}")
    for label, value in sorted(zip(labels, values), key=lambda t: -t[1])[:5]:
        print(f"  closest to S: {label!r} {value:+.4f}")
    plots.save(plots.proximity(result, subset=subset), os.path.join(out_dir, "proximity_subset.png"))
    plots.save(plots.ap_text(result, subset=subset), os.path.join(out_dir, "subset_text.png"))
    print(f"wrote {out_dir}/proximity_subset.png and {out_dir}/subset_text.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-examples")
