#!/usr/bin/env python3
"""attnprox demo: the Attention Proximity of the prompts in the project's prompts.txt, as text, through three model
families with their real tokenizers (GPT-2, BERT, Qwen3).

No weights can be downloaded here, so each model is a small random-weight model of its family (4 layers, built
with a fixed seed) in a Hugging Face directory beside the family's real tokenizer; attnprox exports it with its own
reference architecture, then loads the model file and runs the text. With a real checkpoint directory the same
three calls (export_reference, load, run) apply unchanged.

    /usr/bin/python3 examples/demo.py [OUT_DIR]     (default ./attnprox-demo; the shared data folder is found
                                                    beside the repository, or through ATTNPROX_DATA_DIR)
"""
import os
import shutil
import sys

import attnprox
from attnprox.reference.random_model import write_random_model
from attnprox.reference.tokenizer_files import write_tokenizer_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("ATTNPROX_DATA_DIR") or os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))

FAMILIES = {
    "gpt2": {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 128, "n_layer": 4,
             "n_head": 4, "activation_function": "gelu_new", "bos_token_id": 50256, "eos_token_id": 50256},
    "bert": {"model_type": "bert", "vocab_size": 30522, "hidden_size": 128, "num_hidden_layers": 4,
             "num_attention_heads": 4, "intermediate_size": 256, "max_position_embeddings": 512,
             "type_vocab_size": 2, "pad_token_id": 0, "hidden_act": "gelu"},
    "qwen3": {"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
              "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "hidden_act": "silu",
              "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}, "eos_token_id": 151645},
}


def add_tokenizer(family: str, model_dir: str) -> None:
    tokenizers = os.path.join(DATA, "tokenizers")
    if family == "gpt2":
        write_tokenizer_json("gpt2", os.path.join(tokenizers, "gpt2"), model_dir)
    elif family == "bert":
        write_tokenizer_json("bert", os.path.join(tokenizers, "bert-base-uncased"), model_dir)
    else:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(tokenizers, family, name), model_dir)


def main(out_dir: str) -> None:
    prompts_file = os.path.join(DATA, "prompts.txt")
    if not os.path.isfile(prompts_file):
        sys.exit(f"demo: {prompts_file} not found; the demo reads the project's shared data folder beside the "
                 "repository, or set ATTNPROX_DATA_DIR")
    prompts = [line.strip() for line in open(prompts_file, encoding="utf-8") if line.strip()]
    os.makedirs(out_dir, exist_ok=True)
    print(f"attnprox {attnprox.__version__} on libtorch {attnprox.torch_version()}")
    print(f"Attention Proximity (AP) at the last layer of the {len(prompts)} prompts of {prompts_file}")
    print("Models: small random-weight models of each family with the family's real tokenizer.\n")
    for family, config in FAMILIES.items():
        hf_dir = write_random_model(config, os.path.join(out_dir, f"{family}-hf"), seed=0, std=0.08)
        add_tokenizer(family, hf_dir)
        model_file = os.path.join(out_dir, f"{family}.apx")
        attnprox.export_reference(hf_dir, model_file)
        model = attnprox.load(model_file)
        print(model)
        print(f"  {'N':>3}  {'AP':>8}  prompt")
        results = model.run(text=prompts)
        for prompt, result in zip(prompts, results):
            print(f"  {len(result):>3}  {result.ap():+8.4f}  {prompt}")
        example = results[1]
        pieces = " ".join(f"{t.strip()}:{ap:+.3f}" for t, ap in zip(example.token_texts, example.ap_tokens()))
        print(f"  per token: {pieces}\n")
    print(f"Model files and their Hugging Face directories are in {os.path.abspath(out_dir)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "attnprox-demo")
