#!/usr/bin/env python3
"""attnprox demo: the prompts of the project's prompts.txt through three model families with their real tokenizers
(GPT-2, BERT, Qwen3): a table of N, AP and APE per prompt, and for every prompt the averaged attention matrix and
the interactive HTML view, plus a grid of every layer × head, a proximity matrix with a subset and the text coloured
by AP for one prompt.

The models are small random-weight models of each family (no weights can be downloaded here; see
examples/demo_models.py), so the numbers show the pipeline, not a trained model's attention.

    /usr/bin/python3 examples/demo.py [OUT_DIR]      (default ./attnprox-demo)
"""
import os
import sys

import attnprox
from attnprox import plots
import demo_models


def main(out_dir: str) -> None:
    prompts = demo_models.prompts()
    os.makedirs(out_dir, exist_ok=True)
    print(f"attnprox {attnprox.__version__} on libtorch {attnprox.torch_version()}")
    print(f"{len(prompts)} prompts; small random-weight models of each family with the family's real tokenizer\n")
    written = 0
    for family in demo_models.FAMILIES:
        model = demo_models.load(family, out_dir)
        folder = os.path.join(out_dir, family)
        os.makedirs(folder, exist_ok=True)
        print(model)
        print(f"  {'N':>3}  {'AP':>8}  {'APE':>7}  {'APE/log(N-1)':>12}  prompt")
        results = model.run(text=prompts)
        for k, (prompt, result) in enumerate(zip(prompts, results), start=1):
            s = result.summary()
            print(f"  {s['n']:>3}  {s['ap']:+8.4f}  {s['ape']:7.4f}  {s['ape_normalized']:12.4f}  {prompt}")
            plots.save(plots.average_attention(result, title=f"{family}: {prompt}"),
                       os.path.join(folder, f"{k:02d}-averaged-attention.png"))
            result.view().save(os.path.join(folder, f"{k:02d}-view.html"))
            written += 2
        example = results[1]  # "Emily always wanted to visit Paris ..."
        labels = plots.labels(example)
        subset = [i for i, t in enumerate(labels) if t.lower() in ("paris", "french")]
        plots.save(plots.attention(example, layer=-1, head=0), os.path.join(folder, "head.png"))
        plots.save(plots.heads(example, heads=list(range(example.model.num_heads))), os.path.join(folder, "heads.png"))
        plots.save(plots.grid(example), os.path.join(folder, "grid.png"))
        plots.save(plots.proximity(example, subset=subset), os.path.join(folder, "proximity.png"))
        plots.save(plots.ap_text(example), os.path.join(folder, "ap-text.png"))
        plots.save(plots.ap_text(example, subset=subset), os.path.join(folder, "subset-text.png"))
        written += 6
        print()
    print(f"Wrote {written} pictures and views to {os.path.abspath(out_dir)}/<family>/:")
    print("  NN-averaged-attention.png  NN-view.html (open in a browser: click, shift-click, ctrl-click tokens)")
    print("  for the second prompt: head.png  heads.png  grid.png  proximity.png  ap-text.png  subset-text.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-demo")
