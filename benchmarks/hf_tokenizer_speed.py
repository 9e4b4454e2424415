#!/usr/bin/env python3
"""Hugging Face `tokenizers` speed on the same corpus and tokenizers as benchmarks/tokenizer_speed (one thread, best
of 4 passes, loading not timed), for same-machine comparison. Needs the `tokenizers` package.

    RAYON_NUM_THREADS=1 python3 benchmarks/hf_tokenizer_speed.py DATA_DIR
"""
import glob
import os
import sys
import time

from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer


def main(data):
    files = sorted(glob.glob(os.path.join(data, "onestopenglish", "*", "*.txt")))
    texts = [open(f, encoding="utf-8").read() for f in files]
    size = sum(len(t.encode()) for t in texts)
    tokenizers = {
        "qwen3": lambda: Tokenizer.from_file(os.path.join(data, "tokenizers", "qwen3", "tokenizer.json")),
        "bert": lambda: BertWordPieceTokenizer(os.path.join(data, "tokenizers", "bert-base-uncased", "vocab.txt"),
                                               lowercase=True)._tokenizer,
    }
    for name, make in tokenizers.items():
        tok = make()
        best = None
        for _ in range(4):
            start = time.perf_counter()
            count = sum(len(tok.encode(text, add_special_tokens=False).ids) for text in texts)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        print(f"HF {name:6s} {count:9d} tokens {size:9d} bytes  best {best:.3f} s  {count / best:10.0f} tokens/s")


if __name__ == "__main__":
    main(sys.argv[1])
