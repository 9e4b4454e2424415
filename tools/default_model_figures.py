#!/usr/bin/env python3
"""The pictures of the default model's card (models/README.md), drawn with attnprox itself from the installed
default model, and the numbers they show:

    /usr/bin/python3 tools/default_model_figures.py [OUT_DIR]      (default: models/figures)

- training.png: held-out loss and the two head probes over the training steps (models/default/training.json);
- previous-token-head.png: the strongest previous-token head on a sentence (mean weight on i−1 over 10
  OneStopEnglish texts picks the head);
- induction-head.png: the strongest induction head on `<|endoftext|>` + R + R, R 20 random tokens: the stripe one
  step right of the diagonal's echo is the head reading "the token after the earlier occurrence";
- first-token.png: the share of attention every layer's heads put on the first token (the attention sink).

Prints the heads it found and their scores.
"""
import glob
import json
import os
import sys

import numpy as np

import attnprox
from attnprox import plots

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.environ.get("ATTNPROX_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")


def head_scores(model):
    """previous[l, h]: mean P[i, i-1] (i >= 2) over 10 OneStopEnglish texts; induction[l, h] on 20 random repeats."""
    files = sorted(glob.glob(os.path.join(DATA, "onestopenglish", "Int-Txt", "Int-Txt", "*-int.txt")))[:10]
    previous, count = 0.0, 0
    for f in files:
        ids = model.tokenizer.encode(open(f, encoding="utf-8-sig").read(), add_special_tokens=True)
        r = model.run(ids=ids[:model.max_positions])
        rows = np.arange(2, len(r))
        previous = previous + np.stack([r.attention(l)[:, rows, rows - 1].sum(1) for l in model.captured_layers])
        count += len(rows)
    rng = np.random.default_rng(7)
    induction = 0.0
    for _ in range(20):
        repeated = rng.integers(1, model.vocab_size, size=50).tolist()
        r = model.run(ids=[0] + repeated + repeated)
        queries = np.arange(51, 101)
        induction = induction + np.stack([r.attention(l)[:, queries, queries - 49].mean(1)
                                          for l in model.captured_layers])
    return previous / count, induction / 20


def training_figure(record: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = record["runs"][record["chosen"]]
    steps = [e["step"] for e in run["evaluations"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(steps, [e["held_out_loss"] for e in run["evaluations"]], label="held-out")
    left.plot(steps, [e["train_loss"] for e in run["evaluations"]], label="training batch", alpha=0.5)
    left.axvline(run["best_step"], color="grey", ls=":", label=f"kept (step {run['best_step']})")
    left.set_xlabel("step")
    left.set_ylabel("cross-entropy (nats/token)")
    left.set_ylim(2.5, 6)
    left.legend()
    right.plot(steps, [e["best_previous_token"] for e in run["evaluations"]], label="best previous-token head")
    right.plot(steps, [e["best_induction"] for e in run["evaluations"]], label="best induction head")
    right.axhline(0.5, color="C0", ls=":", lw=0.8)
    right.axhline(0.3, color="C1", ls=":", lw=0.8)
    right.set_xlabel("step")
    right.set_ylabel("mean attention weight")
    right.set_ylim(0, 1)
    right.legend()
    fig.suptitle(f"default model, recipe '{record['chosen']}': {run['tokens_seen'] / 1e6:.0f} M tokens, "
                 f"{run['epochs']} epochs, {run['seconds']:.0f} s on one {run['device']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    model = attnprox.load()
    previous, induction = head_scores(model)
    pl, ph = np.unravel_index(previous.argmax(), previous.shape)
    il, ih = np.unravel_index(induction.argmax(), induction.shape)
    print(f"previous-token head: layer {pl} head {ph}, {previous.max():.3f}")
    print(f"induction head: layer {il} head {ih}, {induction.max():.3f}")

    r = model.run(text="The old fisherman rowed his small boat across the quiet bay before the sun rose.")
    plots.save(plots.attention(r, layer=int(pl), head=int(ph),
                               title=f"previous-token head: layer {pl}, head {ph}"),
               os.path.join(out_dir, "previous-token-head.png"))
    rng = np.random.default_rng(3)
    repeated = rng.integers(1, model.vocab_size, size=20).tolist()
    r = model.run(ids=[0] + repeated + repeated)
    plots.save(plots.attention(r, layer=int(il), head=int(ih), title=f"induction head: layer {il}, head {ih} "
                               "(20 random tokens, then the same 20 again)"),
               os.path.join(out_dir, "induction-head.png"))

    files = sorted(glob.glob(os.path.join(DATA, "onestopenglish", "Int-Txt", "Int-Txt", "*-int.txt")))[:10]
    sink = 0.0
    for f in files:
        ids = model.tokenizer.encode(open(f, encoding="utf-8-sig").read(), add_special_tokens=True)
        r = model.run(ids=ids[:model.max_positions])
        sink = sink + np.stack([r.attention(l)[:, 1:, 0].mean(1) for l in model.captured_layers])
    sink /= len(files)
    print("attention on the first token, per layer (mean of heads): " +
          ", ".join(f"{x:.3f}" for x in sink.mean(1)))
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    image = ax.imshow(sink, cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_xticks(range(model.num_heads))
    ax.set_yticks(range(len(model.captured_layers)), [str(l) for l in model.captured_layers])
    for (l, h), value in np.ndenumerate(sink):
        ax.text(h, l, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.5 else "black")
    fig.colorbar(image, ax=ax, label="mean weight on token 0")
    ax.set_title("attention on the first token (<|endoftext|>), 10 texts", fontsize=10)
    fig.tight_layout()
    plots.save(fig, os.path.join(out_dir, "first-token.png"))

    with open(os.path.join(ROOT, "models", "default", "training.json")) as f:
        training_figure(json.load(f), os.path.join(out_dir, "training.png"))
    print(f"wrote {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "figures"))
