"""`export_reference`: a Hugging Face model directory of a family the project implements itself → an attnprox
model file (a TorchScript archive with the manifest and, when the directory has one, `tokenizer.json`).

The model-file contract is documented in `docs/model-file.md`.
"""
import json
import os
from typing import Callable, Optional, Union

import torch

from .. import _limits
from .common import ReferenceModelError
from .config import ArchConfig
from .model import Layers, load_reference_model
from .tokenizer_files import tokenizer_json_of

FORMAT = "attnprox-model"
FORMAT_VERSION = 1
MANIFEST_NAME = "attnprox/manifest.json"
TOKENIZER_NAME = "attnprox/tokenizer.json"
# What export_reference does, in order; `progress(stage)` is called as each begins.
STAGES = ("reading the weights", "scripting", "checking the script", "writing the file")

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def parse_dtype(dtype: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    if dtype is None or isinstance(dtype, torch.dtype):
        if dtype is not None and dtype not in _DTYPE_NAMES:
            raise ValueError(f"dtype {dtype} is not supported (float32, float16, bfloat16)")
        return dtype
    if dtype.lower() not in _DTYPES:
        raise ValueError(f"dtype {dtype!r} is not supported (float32, float16, bfloat16)")
    return _DTYPES[dtype.lower()]


def _read_json(path: str) -> Optional[dict]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return _limits.loads(f.read(_limits.MAX_TOKENIZER_BYTES + 1), path, ReferenceModelError)


def tokenizer_facts(model_dir: Optional[str], bos_id: Optional[int], eos_id: Optional[int], pad_id: Optional[int],
                    vocab_size: int) -> dict:
    """The manifest's tokenizer facts: the BOS/EOS/PAD ids of the model's config (an id outside the vocabulary
    becomes None), whether BOS is added, and the special tokens, from `tokenizer_config.json` and `tokenizer.json`
    (or the one built from BERT's vocab.txt) where model_dir has them."""
    tok_cfg = (_read_json(os.path.join(model_dir, "tokenizer_config.json")) if model_dir else None) or {}
    tokenizer = tokenizer_json_of(model_dir) if model_dir and os.path.isdir(model_dir) else None
    tok = _limits.loads(tokenizer[0], "tokenizer.json", ReferenceModelError) if tokenizer else {}
    special = {t["content"]: int(t["id"]) for t in tok.get("added_tokens", []) if t.get("special")}

    def known(token_id):
        return token_id if token_id is not None and token_id < vocab_size else None

    return {
        "bos_id": known(bos_id),
        "eos_id": known(eos_id),
        "pad_id": known(pad_id),
        "add_bos": bool(tok_cfg.get("add_bos_token", False)),
        "special_tokens": special,
    }


def manifest_for(cfg: ArchConfig, captured, dtype: torch.dtype, source: str, tokenizer: dict) -> dict:
    try:
        from .._version import __version__  # the attnprox version that wrote the file
    except ImportError:  # the reference package used on its own, outside attnprox
        __version__ = "unknown"

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": cfg.family,
        "model_type": cfg.model_type,
        "source": source,
        "exporter": {"name": "attnprox.export_reference", "attnprox": __version__, "torch": torch.__version__},
        "num_layers": cfg.num_layers,
        "captured_layers": list(captured),
        "num_heads": cfg.num_heads,
        "num_kv_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "causal": cfg.causal,
        "max_positions": cfg.max_positions,
        "vocab_size": cfg.vocab_size,
        "dtype": _DTYPE_NAMES[dtype],
        "layers": [{"index": i, "scaling": cfg.scalings[i], "sliding_window": cfg.windows[i] or None,
                    "softcap": None, "sinks": None, "cross_attention": False} for i in captured],
        "tokenizer": tokenizer,
        # BERT's forward takes the token type ids (segments) of text pairs; the others, ids and mask.
        "inputs": ["input_ids", "attention_mask"] + (["token_type_ids"] if cfg.family == "bert" else []),
    }


def check_tokenizer(text: str, path: str) -> None:
    """The tokenizer.json must load in attnprox's tokenizer (when the engine is there to check it)."""
    try:
        from .. import _core
    except ImportError:  # the reference package used on its own
        return
    try:
        _core.Tokenizer.from_json(text)
    except Exception as e:  # attnprox errors name the problem
        raise ReferenceModelError(f"{path} cannot be used by attnprox's tokenizer: {e}") from None


def _check_scripted(eager, scripted, cfg: ArchConfig) -> None:
    """The scripted module must compute what the eager one computes (a guard against scripting surprises)."""
    n = min(7, cfg.max_positions)
    ids = torch.arange(n).remainder(cfg.vocab_size).view(1, n)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        want_q, want_k = eager(ids, mask)
        got_q, got_k = scripted(ids, mask)
    for want, got in zip(want_q + want_k, got_q + got_k):
        if want.shape != got.shape or not torch.allclose(want.float(), got.float(), rtol=1e-4, atol=1e-5):
            raise RuntimeError("the TorchScript module disagrees with the eager reference model; "
                               "please report this with the model's config.json")


def export_reference(hf_dir: str, out_path: str, layers: Layers = "all", dtype=None,
                     fused: Optional[bool] = None, source: Optional[str] = None,
                     progress: Optional[Callable[[str], None]] = None) -> dict:
    """Writes an attnprox model file for a Hugging Face model directory, without `transformers`.

    hf_dir: `config.json` + `model.safetensors` (or sharded safetensors) of GPT-2, BERT, DistilBERT, Llama
        (also Mistral, Qwen2) or Qwen3, base or head model (`*ForCausalLM`, `*LMHeadModel`, `*ForMaskedLM`).
    layers: "all", "last", a layer number, a list of them or "i,j"; negative numbers count from the end.
        Computation stops after the last captured layer's queries and keys.
    dtype: "float32", "float16", "bfloat16" (or a torch dtype); default: the dtype of the weights.
    fused: use torch's fused SDPA inside the file (default: when the exporting torch has it, 2.1+).
    source: what the manifest records as the model's source (default: the directory's path).
    progress: called with the name of each stage (STAGES) as it begins.
    Returns the manifest written.
    """
    step = progress or (lambda stage: None)
    if not os.path.isdir(hf_dir):
        raise FileNotFoundError(f"{hf_dir}: not a directory (expected a Hugging Face model directory)")
    step(STAGES[0])
    model, cfg, captured = load_reference_model(hf_dir, layers, parse_dtype(dtype), fused=fused)
    step(STAGES[1])
    scripted = torch.jit.script(model)
    step(STAGES[2])
    _check_scripted(model, scripted, cfg)
    dtype_used = next(model.parameters()).dtype
    manifest = manifest_for(cfg, captured, dtype_used, source or os.path.normpath(hf_dir),
                            tokenizer_facts(hf_dir, cfg.bos_id, cfg.eos_id, cfg.pad_id, cfg.vocab_size))
    extra = {MANIFEST_NAME: json.dumps(manifest, indent=2)}
    tokenizer = tokenizer_json_of(hf_dir)  # tokenizer.json, or built from BERT's vocab.txt
    if tokenizer is not None:
        extra[TOKENIZER_NAME] = tokenizer[0]
        check_tokenizer(*tokenizer)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"{out_path}: the folder {out_dir} does not exist")
    step(STAGES[3])
    torch.jit.save(scripted, out_path, _extra_files=extra)
    return manifest


__all__ = ["export_reference", "ReferenceModelError", "MANIFEST_NAME", "TOKENIZER_NAME"]
