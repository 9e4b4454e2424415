"""Small random-weight models of three families with their real tokenizers, for the demo and the examples.

No weights can be downloaded here, so each model is a random-weight model of its family (4 layers, fixed seed) in
a Hugging Face directory beside the family's real tokenizer from the project's shared data; attnprox exports it with
its own reference architecture. With a real checkpoint directory the same calls apply unchanged.
"""
import hashlib
import json
import os

import attnprox
from attnprox.reference.random_model import write_random_model
from attnprox.reference.tokenizer_files import install_family_tokenizer

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


def data_file(*parts: str) -> str:
    path = os.path.join(DATA, *parts)
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: the examples read the project's shared data folder beside the "
                         "repository (../shared/data), or set ATTNPROX_DATA_DIR")
    return path


def prompts():
    """The example prompts of the shared prompts.txt."""
    with open(data_file("prompts.txt"), encoding="utf-8-sig") as f:
        return [line.strip() for line in f if line.strip()]


def _stamp(family: str) -> dict:
    """What a demo model file was made from: reused only while this matches (same recipe, same attnprox)."""
    with open(os.path.abspath(__file__), "rb") as f:
        recipe = hashlib.sha256(f.read()).hexdigest()
    return {"family": family, "attnprox": attnprox.__version__, "recipe": recipe}


def model_file(family: str, out_dir: str) -> str:
    """The model file of a family's demo model in out_dir (made once, then reused while its recipe is the same)."""
    path = os.path.join(out_dir, f"{family}.apx")
    stamp_path = path + ".stamp.json"
    stamp = _stamp(family)
    if os.path.exists(path) and os.path.exists(stamp_path):
        with open(stamp_path, encoding="utf-8") as f:
            if json.load(f) == stamp:
                return path
    os.makedirs(out_dir, exist_ok=True)
    hf_dir = write_random_model(FAMILIES[family], os.path.join(out_dir, f"{family}-hf"), seed=0, std=0.08)
    install_family_tokenizer(family, data_file("tokenizers"), hf_dir)
    attnprox.export_reference(hf_dir, path)
    with open(stamp_path, "w", encoding="utf-8") as f:
        json.dump(stamp, f)
    return path


def load(family: str, out_dir: str) -> "attnprox.Model":
    return attnprox.load(model_file(family, out_dir))
