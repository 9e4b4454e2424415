"""Building a reference model for a config and loading a Hugging Face directory's weights into it."""
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .bert import Bert, DistilBert
from .common import ReferenceModelError
from .config import ArchConfig, read_config
from .gpt2 import GPT2
from .llama import Llama
from .safetensors import load_model_dir

_CLASSES = {"gpt2": GPT2, "bert": Bert, "distilbert": DistilBert, "llama": Llama, "qwen3": Llama}
# Prefixes under which head models (`GPT2LMHeadModel`, `BertForMaskedLM`, `LlamaForCausalLM`, ...) store the
# base model's weights.
_PREFIXES = ("", "model.", "transformer.", "bert.", "distilbert.")

Layers = Union[str, int, Sequence[int]]


def parse_layers(layers: Layers, num_layers: int) -> List[int]:
    """`"all"`, `"last"`, an index, a list of indices or a string `"i,j"`; negative indices count back from the
    last layer. Returns sorted, distinct, non-negative layer numbers."""
    if isinstance(layers, str):
        text = layers.strip().lower()
        if text == "all":
            return list(range(num_layers))
        if text == "last":
            return [num_layers - 1]
        if not re.fullmatch(r"\s*-?\d+\s*(,\s*-?\d+\s*)*", text):
            raise ValueError(f"layers {layers!r}: expected 'all', 'last' or comma-separated layer numbers")
        chosen = [int(part) for part in text.split(",")]
    elif isinstance(layers, int):
        chosen = [layers]
    else:
        chosen = list(layers)
        if not chosen or not all(isinstance(i, int) for i in chosen):
            raise ValueError(f"layers {layers!r}: expected a non-empty list of layer numbers")
    out = set()
    for i in chosen:
        if not -num_layers <= i < num_layers:
            raise ValueError(f"layer {i} requested, the model has {num_layers} layers "
                             f"(0..{num_layers - 1}, or -{num_layers}..-1 from the end)")
        out.add(i % num_layers)
    return sorted(out)


def build_model(cfg: ArchConfig, captured: List[int], complete: bool = False,
                fused: Optional[bool] = None) -> nn.Module:
    """An uninitialised reference model holding the layers up to the last captured one (all, when
    `complete`). `fused` chooses SDPA (True) or eager attention (False); None: SDPA when torch has it."""
    return _CLASSES[cfg.family](cfg, captured, complete, fused)


def _normalise_names(weights: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Old BERT checkpoints name LayerNorm parameters gamma/beta."""
    out = {}
    for name, t in weights.items():
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
        name = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
        out[name] = t
    return out


def load_weights(model: nn.Module, weights: Dict[str, torch.Tensor], source: str) -> None:
    """Copies the base-model weights into `model`: every parameter it holds must be there with its shape;
    weights it does not hold (heads, layers after the last captured one) are ignored."""
    weights = _normalise_names(weights)
    expected = list(model.state_dict().keys())
    prefix = next((p for p in _PREFIXES if all(p + k in weights for k in expected[:1])), None)
    if prefix is None:
        raise ReferenceModelError(f"{source}: no weight named '{expected[0]}' under any of the prefixes "
                             f"{[p for p in _PREFIXES if p]} or none; is this the right model family?")
    missing = [k for k in expected if prefix + k not in weights]
    if missing:
        raise ReferenceModelError(f"{source}: missing weights {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    state = {}
    for key, target in model.state_dict().items():
        t = weights[prefix + key]
        if tuple(t.shape) != tuple(target.shape):
            raise ReferenceModelError(f"{source}: weight '{prefix + key}' has shape {list(t.shape)}, the config "
                                 f"implies {list(target.shape)}")
        state[key] = t
    model.load_state_dict(state, strict=True)


def weights_dtype(weights: Dict[str, torch.Tensor]) -> torch.dtype:
    """The floating dtype most of the weights have."""
    counts: Dict[torch.dtype, int] = {}
    for t in weights.values():
        if t.is_floating_point():
            counts[t.dtype] = counts.get(t.dtype, 0) + t.numel()
    return max(counts, key=counts.get) if counts else torch.float32


def load_reference_model(model_dir: str, layers: Layers = "all", dtype: Optional[torch.dtype] = None,
                         complete: bool = False, fused: Optional[bool] = None
                         ) -> Tuple[nn.Module, ArchConfig, List[int]]:
    """(model in eval mode, its config, the captured layers) for a Hugging Face model directory."""
    cfg = read_config(model_dir)
    captured = parse_layers(layers, cfg.num_layers)
    weights = load_model_dir(model_dir)
    model = build_model(cfg, captured, complete, fused)
    load_weights(model, weights, model_dir)
    model.to(dtype or weights_dtype(weights))
    return model.eval(), cfg, captured
