#!/usr/bin/env python3
"""What measuring the queries and keys before RoPE costs (docs/model-file.md, "rope"): the time to undo the
rotation of one layer's queries and keys, against AP and APE of that layer, on the CPU.

The model: the default model's shape (Qwen3-style, 8 query heads, 2 key heads, d = 32) with random weights and
8,192 positions, so that N = 4,096 fits, exported with export_reference; one layer captured.

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/rope_cost.py [N ...]     (default 1024 4096)
"""
import json
import os
import sys
import tempfile
import time

import attnprox
from attnprox.reference.random_model import write_random_model

CONFIG = {"model_type": "qwen3", "vocab_size": 8192, "hidden_size": 256, "intermediate_size": 768,
          "num_hidden_layers": 1, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32,
          "max_position_embeddings": 8192, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu",
          "tie_word_embeddings": False}


def best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(lengths):
    with tempfile.TemporaryDirectory() as work:
        directory = write_random_model(CONFIG, os.path.join(work, "model"), seed=3, std=0.2)
        path = os.path.join(work, "model.apx")
        attnprox.export_reference(directory, path)
        model = attnprox.load(path)
        rows = []
        for n in lengths:
            result = model.run(ids=[(7 * i + 3) % CONFIG["vocab_size"] for i in range(n)])
            row = {"n": n, "threads": __import__("torch").get_num_threads(),
                   "unrotate_queries_and_keys_s": best(lambda: (result.queries(rope=False),
                                                                result.keys(rope=False))),
                   "ap_after_rope_s": best(lambda: result.ap(rope=True)),
                   "ap_before_rope_s": best(lambda: result.ap()),
                   "ape_after_rope_s": best(lambda: result.ape(rope=True), repeat=2),
                   "ape_before_rope_s": best(lambda: result.ape(), repeat=2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1:]] or [1024, 4096])
