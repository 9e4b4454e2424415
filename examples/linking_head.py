#!/usr/bin/env python3
"""Which head links "Paris" and "French" in the default model? Every (layer, head) ranked by max(P[a, b], P[b, a]);
the strongest one's heatmap, and it beside the next two.

    /usr/bin/python3 examples/linking_head.py [OUT_DIR]
"""
import os
import sys

import attnprox
from attnprox import plots

TEXT = "Emily always wanted to visit Paris so she took some French lessons"


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    model = attnprox.load()  # the default model
    result = model.run(text=TEXT)
    labels = [t.strip() for t in result.token_labels]
    a, b = labels.index("Paris"), labels.index("French")
    links = result.linking_heads(a, b)
    for layer, head, score in links[:3]:
        print(f"layer {layer} head {head}: max(P[Paris, French], P[French, Paris]) = {score:.4f}")
    layer, head, _ = links[0]
    plots.save(plots.attention(result, layer, head=head), os.path.join(out_dir, "linking_head.png"))
    pairs = [(l, h) for l, h, _ in links[:3]]
    titles = [f"layer {l}, head {h} ({s:.3f})" for l, h, s in links[:3]]
    plots.save(plots.head_panels(result, pairs, titles=titles), os.path.join(out_dir, "linking_heads_side_by_side.png"))
    print(f"wrote {out_dir}/linking_head.png and {out_dir}/linking_heads_side_by_side.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-examples")
