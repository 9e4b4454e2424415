#!/usr/bin/env python3
"""attnprox demo: export reference models from Hugging Face directories, then read their attention for token-id
sequences — the attention weights one head gives, and the Attention Proximity (AP) of each sequence.

The models are the small random-weight Hugging Face models in tests/fixtures/hf (no weights can be downloaded
here); any GPT-2, BERT, DistilBERT, Llama or Qwen3 directory works the same way.

    /usr/bin/python3 examples/demo.py [OUT_DIR]      (model files go to OUT_DIR, default ./attnprox-demo)
"""
import os
import sys

import numpy as np

import attnprox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "hf")
SEQUENCES = [[12, 7, 33, 7, 59, 2], [45, 45, 45, 45, 45, 45], [3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26]]


def entropy(row: np.ndarray) -> float:
    """-Σ p log p of one attention row (0·log 0 = 0)."""
    p = row[row > 0].astype(np.float64)
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    print(f"attnprox {attnprox.__version__} on libtorch {attnprox.torch_version()}\n")
    for name in ["gpt2", "bert", "llama", "qwen3"]:
        path = os.path.join(out_dir, f"{name}.apx")
        attnprox.export_reference(os.path.join(FIXTURES, name), path)
        model = attnprox.load(path)
        print(model)
        for ids in SEQUENCES:
            result = model.run(ids=ids)
            ap_tokens = result.ap_tokens()
            print(f"  ids {ids}")
            print(f"    AP (last layer) {result.ap():+.4f}   per token: " +
                  " ".join(f"{x:+.3f}" for x in ap_tokens))
        result = model.run(ids=SEQUENCES[0])
        head0 = result.attention(layer=-1, head=0)
        last = len(SEQUENCES[0]) - 1
        print(f"  last layer, head 0: token {last} attends most to token {int(np.argmax(head0[last]))} "
              f"(weight {head0[last].max():.3f}); entropy of the averaged attention rows: " +
              " ".join(f"{entropy(row):.2f}" for row in result.average_attention()))
        print()
    print(f"model files written to {os.path.abspath(out_dir)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-demo")
