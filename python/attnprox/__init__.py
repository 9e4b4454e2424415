"""attnprox — what a transformer's attention sees: per-layer, per-head queries and keys, the attention weights
they imply, and Attention Proximity.

    import attnprox
    attnprox.export_reference("path/to/hf-model", "model.apx")   # a Hugging Face directory → model file
    model = attnprox.load("model.apx")
    result = model.run(ids=[464, 3290, 318, 257])
    result.attention(layer=-1, head=0)    # [N, N]
    result.ap()                           # Attention Proximity at the last captured layer
"""
from ._version import TORCH_FROM_PYTHON, __version__

if TORCH_FROM_PYTHON:
    import torch  # noqa: F401  (loads the libtorch the engine links against)
from . import _core
from .errors import (ComputeError, Error, ExportError, InvalidArgumentError, InvalidModelError,
                     ModelNotFoundError, OutOfRangeError, UnsupportedError)
from . import metrics
from .metrics import APE
from .default_model import default_model_path
from .model import Model, Result, load
from .studies import study
from .model_file import set_tokenizer
from .tokenizer import Tokenizer
from .view import Compare, View, compare
from .windows import Windowed


def export_reference(hf_dir: str, out_path: str, layers="all", dtype=None, source=None, progress=None) -> dict:
    """Writes a model file for a Hugging Face model directory (`config.json` + `model.safetensors`) of a family
    attnprox implements itself (GPT-2, BERT, DistilBERT, Llama, Qwen3), without `transformers`. Needs torch.

    layers: "all", "last", a layer number, a list of them or "i,j" (negative: from the end); the file's forward
    stops after the last captured layer. dtype: "float32", "float16", "bfloat16" (default: the weights').
    source: what the manifest records as the model's source (default: the directory's path).
    progress: a function called with the name of each stage as it begins (for progress bars).
    Returns the manifest written.
    """
    from .reference.export import export_reference as _export

    return _export(hf_dir, out_path, layers=layers, dtype=dtype, source=source, progress=progress)


def export(model, out_path: str, layers="all", dtype=None, device: str = "cpu", tokenizer=None, verify_texts=None,
           check: bool = True, progress=None) -> dict:
    """Writes a model file for a Hugging Face model through `transformers` (any model whose attention goes through
    its attention-function registry), and verifies the file against `output_attentions=True` before returning.

    model: a model directory, a hub id in the local cache, or a loaded transformers model. layers: "all", "last",
    a layer number, a list of them or "i,j". dtype: "float32", "float16", "bfloat16" (default: the model's).
    device: where to trace ("cpu", "cuda"). Returns the manifest, with the verification's largest differences.
    Raises attnprox.ExportError naming the reason when the model cannot be captured or does not verify.
    See attnprox/hf_export.py for how it works.
    """
    from .hf_export import export as _export

    return _export(model, out_path, layers=layers, dtype=dtype, device=device, tokenizer=tokenizer,
                   verify_texts=verify_texts, check=check, progress=progress)


def set_log_level(level: str) -> None:
    """Level of the library's log on stderr: trace, debug, info, warn (default), error, off. The environment
    variable ATTNPROX_LOG_LEVEL sets it at start."""
    _core.set_log_level(level)


torch_version = _core.torch_version

__all__ = [
    "APE", "Compare", "ComputeError", "Error", "ExportError", "InvalidArgumentError", "InvalidModelError", "Model",
    "ModelNotFoundError", "OutOfRangeError", "Result", "Tokenizer", "UnsupportedError", "View", "Windowed",
    "__version__", "compare", "default_model_path", "export",
    "export_reference", "load", "set_tokenizer",
    "metrics", "set_log_level", "study", "torch_version",
]
