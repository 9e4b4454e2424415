#!/usr/bin/env python3
"""attnprox demo: what a trained language model's attention sees in the project's example prompts.

1. The default model (attnprox's own small trained model, models/README.md) on every prompt of the shared
   prompts.txt: a table of N, AP, APE and length-corrected APE, the averaged attention matrix and the interactive
   view of every prompt; then the heads it learned, found from the prompts themselves: its strongest previous-token
   head, its strongest induction head (on a prompt said twice), the grid of every layer × head, the head that links
   "Paris" and "French", the proximity matrix with that pair outlined and the text coloured by AP and by proximity
   to the pair.
2. The same pipeline for GPT-2, BERT and Qwen3 with their real tokenizers, on small random-weight models of each
   family (no weights can be downloaded; examples/demo_models.py): their numbers show the path, not a trained
   model's attention.

    /usr/bin/python3 examples/demo.py [OUT_DIR]      (default ./attnprox-demo)
"""
import os
import sys

import numpy as np

import attnprox
from attnprox import plots
import demo_models


def table(model, prompts, folder):
    """N, AP, APE per prompt; the averaged attention and the view of each. Returns the Results."""
    print(f"  {'N':>3}  {'AP':>8}  {'APE':>7}  {'APE/log(N-1)':>12}  prompt")
    results = model.run(text=prompts)
    for k, (prompt, result) in enumerate(zip(prompts, results), start=1):
        s = result.summary()
        print(f"  {s['n']:>3}  {s['ap']:+8.4f}  {s['ape']:7.4f}  {s['ape_normalized']:12.4f}  {prompt}")
        plots.save(plots.average_attention(result, title=prompt), os.path.join(folder, f"{k:02d}-averaged-attention.png"))
        result.view().save(os.path.join(folder, f"{k:02d}-view.html"))
    return results


def previous_token_scores(model, results):
    """[layers, heads]: mean weight of query i on key i−1 (i ≥ 2) over every prompt."""
    total, count = 0.0, 0
    for r in results:
        rows = np.arange(2, len(r))
        total = total + np.stack([r.attention(l)[:, rows, rows - 1].sum(1) for l in model.captured_layers])
        count += len(rows)
    return total / count


def induction_scores(model, repeated):
    """[layers, heads] on a prompt said twice: mean weight from each token of the second telling to the token that
    followed the same token in the first."""
    n = (len(repeated) - 1) // 2  # <|endoftext|>, then the prompt's n tokens twice
    queries = np.arange(1 + n, 1 + 2 * n - 1)
    keys = queries - n + 1
    return np.stack([repeated.attention(l)[:, queries, keys].mean(1) for l in model.captured_layers])


def default_model_part(prompts, out_dir) -> int:
    model = attnprox.load()
    folder = os.path.join(out_dir, "default")
    os.makedirs(folder, exist_ok=True)
    print(f"The default model: {model}")
    results = table(model, prompts, folder)
    written = 2 * len(results)

    prev = previous_token_scores(model, results)
    pl, ph = (int(x) for x in np.unravel_index(prev.argmax(), prev.shape))
    example = results[1]  # "Emily always wanted to visit Paris so she took some French lessons"
    plots.save(plots.attention(example, layer=pl, head=ph, title=f"previous-token head: layer {pl}, head {ph}"),
               os.path.join(folder, "previous-token-head.png"))
    ids = example.ids
    repeated = model.run(ids=ids + ids[1:])
    ind = induction_scores(model, repeated)
    il, ih = (int(x) for x in np.unravel_index(ind.argmax(), ind.shape))
    plots.save(plots.attention(repeated, layer=il, head=ih, title=f"induction head: layer {il}, head {ih} "
                               "(the prompt said twice)"), os.path.join(folder, "induction-head.png"))
    print(f"\n  previous-token head: layer {pl}, head {ph} (mean weight on the token before: {prev.max():.2f})")
    print(f"  induction head: layer {il}, head {ih} (mean weight on the token after the earlier occurrence, "
          f"prompt said twice: {ind.max():.2f})")

    labels = example.token_labels
    paris = next(i for i, t in enumerate(labels) if t.strip() == "Paris")
    french = next(i for i, t in enumerate(labels) if t.strip() == "French")
    layer, head, score = example.linking_heads(paris, french)[0]
    print(f"  the head that links 'Paris' and 'French': layer {layer}, head {head} ({score:.2f})")
    plots.save(plots.attention(example, layer=layer, head=head,
                               title=f"linking 'Paris' and 'French': layer {layer}, head {head}"),
               os.path.join(folder, "linking-head.png"))
    plots.save(plots.grid(example), os.path.join(folder, "grid.png"))
    plots.save(plots.proximity(example, subset=[paris, french]), os.path.join(folder, "proximity.png"))
    plots.save(plots.ap_text(example), os.path.join(folder, "ap-text.png"))
    plots.save(plots.ap_text(example, subset=[paris, french]), os.path.join(folder, "subset-text.png"))
    return written + 7


def families_part(prompts, out_dir) -> int:
    print("\nThe same path for three families, small random-weight models with the family's real tokenizer "
          "(numbers show the pipeline, not a trained model):")
    written = 0
    for family in demo_models.FAMILIES:
        model = demo_models.load(family, out_dir)
        folder = os.path.join(out_dir, family)
        os.makedirs(folder, exist_ok=True)
        print(model)
        written += 2 * len(table(model, prompts, folder))
    return written


def main(out_dir: str) -> None:
    prompts = demo_models.prompts()
    os.makedirs(out_dir, exist_ok=True)
    print(f"attnprox {attnprox.__version__} on libtorch {attnprox.torch_version()}; {len(prompts)} prompts\n")
    written = default_model_part(prompts, out_dir)
    written += families_part(prompts, out_dir)
    print(f"\nWrote {written} pictures and views to {os.path.abspath(out_dir)}/:")
    print("  default/NN-averaged-attention.png, default/NN-view.html (open in a browser: click, shift-click, "
          "ctrl-click tokens)")
    print("  default/previous-token-head.png, induction-head.png, linking-head.png, grid.png, proximity.png, "
          "ap-text.png, subset-text.png")
    print("  gpt2/, bert/, qwen3/: NN-averaged-attention.png and NN-view.html of the random-weight models")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-demo")
