"""The project's own reference architectures in plain torch (no `transformers`), reading Hugging Face model
directories (`config.json` + `model.safetensors`), and the exporter that turns them into attnprox model files.

This subpackage needs `torch`; the rest of attnprox does not import it.
"""
from .common import ReferenceError, ReferenceModelError
from .config import ArchConfig, read_config
from .model import build_model, load_reference_model

__all__ = ["ArchConfig", "ReferenceError", "ReferenceModelError", "build_model", "load_reference_model",
           "read_config"]
