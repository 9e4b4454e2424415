"""Reading a Hugging Face `config.json` into the facts the reference architectures need.

Both transformers 4.x configs (`rope_theta`, `rope_scaling`) and 5.x configs (`rope_parameters`) are read.
"""
import json
import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

from .common import ReferenceModelError

FAMILIES = {
    "gpt2": "gpt2",
    "bert": "bert",
    "distilbert": "distilbert",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "qwen3",
}


@dataclass
class ArchConfig:
    """One model's architecture, the same fields for every family."""

    model_type: str
    family: str  # gpt2 | bert | distilbert | llama | qwen3
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    max_positions: int
    activation: str
    norm_eps: float
    causal: bool
    scalings: List[float]  # per layer: the factor of Q·Kᵀ in the attention logits
    windows: List[int]  # per layer: sliding window, 0 for none
    rope: Optional[dict] = None
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    type_vocab_size: int = 0
    bos_id: Optional[int] = None
    eos_id: Optional[int] = None
    pad_id: Optional[int] = None
    raw: dict = field(default_factory=dict, repr=False)


def _first_id(value) -> Optional[int]:
    if isinstance(value, list):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def _rope(cfg: dict) -> dict:
    """The rope parameters of a 5.x (`rope_parameters`) or 4.x (`rope_theta` + `rope_scaling`) config."""
    params = cfg.get("rope_parameters")
    if isinstance(params, dict) and "rope_theta" in params:
        if "full_attention" in params or "sliding_attention" in params:
            raise ReferenceModelError("per-layer-type rope parameters are not supported by the reference architectures")
        return dict(params)
    rope = {"rope_type": "default", "rope_theta": float(cfg.get("rope_theta", 10000.0))}
    scaling = cfg.get("rope_scaling")
    if isinstance(scaling, dict):
        rope.update(scaling)
        rope["rope_type"] = scaling.get("rope_type", scaling.get("type", "default"))
    return rope


def read_config(model_dir: str) -> ArchConfig:
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model_dir}: no config.json (expected a Hugging Face model directory)")
    with open(path) as f:
        try:
            cfg = json.load(f)
        except json.JSONDecodeError as e:
            raise ReferenceModelError(f"{path}: not valid JSON ({e})") from None
    model_type = cfg.get("model_type")
    if model_type not in FAMILIES:
        raise ReferenceModelError(f"{path}: model_type {model_type!r} has no reference architecture "
                             f"(supported: {', '.join(sorted(FAMILIES))}); use attnprox.export, which goes "
                             "through transformers")
    return _READERS[FAMILIES[model_type]](cfg)


def _gpt2(cfg: dict) -> ArchConfig:
    hidden, heads, layers = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    head_dim = hidden // heads
    scalings = []
    for i in range(layers):
        s = 1.0 / math.sqrt(head_dim) if cfg.get("scale_attn_weights", True) else 1.0
        if cfg.get("scale_attn_by_inverse_layer_idx", False):
            s /= float(i + 1)
        scalings.append(s)
    if cfg.get("add_cross_attention", False):
        raise ReferenceModelError("GPT-2 with cross-attention is not supported by the reference architectures")
    return ArchConfig(
        model_type="gpt2", family="gpt2", vocab_size=cfg["vocab_size"], hidden_size=hidden, num_layers=layers,
        num_heads=heads, num_kv_heads=heads, head_dim=head_dim,
        intermediate_size=cfg.get("n_inner") or 4 * hidden, max_positions=cfg["n_positions"],
        activation=cfg.get("activation_function", "gelu_new"), norm_eps=cfg.get("layer_norm_epsilon", 1e-5),
        causal=True, scalings=scalings, windows=[0] * layers, qkv_bias=True, o_bias=True, mlp_bias=True,
        bos_id=_first_id(cfg.get("bos_token_id")), eos_id=_first_id(cfg.get("eos_token_id")),
        pad_id=_first_id(cfg.get("pad_token_id")), raw=cfg)


def _bert(cfg: dict) -> ArchConfig:
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ReferenceModelError(f"BERT position_embedding_type {cfg['position_embedding_type']!r} is not supported "
                             "by the reference architectures (absolute only)")
    if cfg.get("is_decoder", False):
        raise ReferenceModelError("BERT as a decoder is not supported by the reference architectures")
    hidden, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    head_dim = hidden // heads
    return ArchConfig(
        model_type="bert", family="bert", vocab_size=cfg["vocab_size"], hidden_size=hidden, num_layers=layers,
        num_heads=heads, num_kv_heads=heads, head_dim=head_dim, intermediate_size=cfg["intermediate_size"],
        max_positions=cfg["max_position_embeddings"], activation=cfg.get("hidden_act", "gelu"),
        norm_eps=cfg.get("layer_norm_eps", 1e-12), causal=False, scalings=[1.0 / math.sqrt(head_dim)] * layers,
        windows=[0] * layers, qkv_bias=True, o_bias=True, mlp_bias=True,
        type_vocab_size=cfg.get("type_vocab_size", 2), bos_id=_first_id(cfg.get("bos_token_id")),
        eos_id=_first_id(cfg.get("eos_token_id")), pad_id=_first_id(cfg.get("pad_token_id", 0)), raw=cfg)


def _distilbert(cfg: dict) -> ArchConfig:
    hidden, heads, layers = cfg["dim"], cfg["n_heads"], cfg["n_layers"]
    head_dim = hidden // heads
    return ArchConfig(
        model_type="distilbert", family="distilbert", vocab_size=cfg["vocab_size"], hidden_size=hidden,
        num_layers=layers, num_heads=heads, num_kv_heads=heads, head_dim=head_dim,
        intermediate_size=cfg["hidden_dim"], max_positions=cfg["max_position_embeddings"],
        activation=cfg.get("activation", "gelu"), norm_eps=1e-12, causal=False,
        scalings=[1.0 / math.sqrt(head_dim)] * layers, windows=[0] * layers, qkv_bias=True, o_bias=True,
        mlp_bias=True, bos_id=_first_id(cfg.get("bos_token_id")), eos_id=_first_id(cfg.get("eos_token_id")),
        pad_id=_first_id(cfg.get("pad_token_id", 0)), raw=cfg)


def _layer_windows(cfg: dict, layers: int) -> List[int]:
    """Sliding windows per layer: `layer_types` where the config has it (5.x, Qwen), else Mistral's one window for
    every layer, else Qwen2/3's `use_sliding_window` + `max_window_layers` rule."""
    window = cfg.get("sliding_window")
    types = cfg.get("layer_types")
    if types is not None:
        if len(types) != layers:
            raise ReferenceModelError(f"config.json: layer_types has {len(types)} entries for {layers} layers")
        unknown = set(types) - {"full_attention", "sliding_attention"}
        if unknown:
            raise ReferenceModelError(f"config.json: layer types {sorted(unknown)} are not supported by the reference "
                                 "architectures")
        if "sliding_attention" in types and not window:
            raise ReferenceModelError("config.json: sliding_attention layers without a sliding_window")
        return [int(window) if t == "sliding_attention" else 0 for t in types]
    if not window:
        return [0] * layers
    if cfg["model_type"] == "mistral":
        return [int(window)] * layers
    if not cfg.get("use_sliding_window", False):
        return [0] * layers
    first = cfg.get("max_window_layers", layers)
    return [int(window) if i >= first else 0 for i in range(layers)]


def _llama(cfg: dict) -> ArchConfig:
    hidden, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    head_dim = cfg.get("head_dim") or hidden // heads
    qwen3 = cfg["model_type"] == "qwen3"
    qwen2 = cfg["model_type"] == "qwen2"
    return ArchConfig(
        model_type=cfg["model_type"], family="qwen3" if qwen3 else "llama", vocab_size=cfg["vocab_size"],
        hidden_size=hidden, num_layers=layers, num_heads=heads,
        num_kv_heads=cfg.get("num_key_value_heads") or heads, head_dim=head_dim,
        intermediate_size=cfg["intermediate_size"], max_positions=cfg["max_position_embeddings"],
        activation=cfg.get("hidden_act", "silu"), norm_eps=cfg.get("rms_norm_eps", 1e-6), causal=True,
        scalings=[head_dim ** -0.5] * layers, windows=_layer_windows(cfg, layers), rope=_rope(cfg),
        qkv_bias=qwen2 or bool(cfg.get("attention_bias", False)),
        o_bias=(not qwen2) and bool(cfg.get("attention_bias", False)), mlp_bias=bool(cfg.get("mlp_bias", False)),
        qk_norm=qwen3, bos_id=_first_id(cfg.get("bos_token_id")), eos_id=_first_id(cfg.get("eos_token_id")),
        pad_id=_first_id(cfg.get("pad_token_id")), raw=cfg)


_READERS = {"gpt2": _gpt2, "bert": _bert, "distilbert": _distilbert, "llama": _llama, "qwen3": _llama}
