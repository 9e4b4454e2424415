"""The project's default model: the small language model attnprox trains and ships (the model card is
`models/README.md` in the repository), used wherever no model is named: `attnprox.load()`, `attnprox.load("default")`
and every command of the command line without `-m/--model`.

The repository keeps it as a Hugging Face directory (`models/default/`: `config.json`, `model.safetensors`,
`tokenizer.json`); the build turns that directory into a model file with `export_reference`, the same path a
user's own Hugging Face model takes, and installs the file inside the package as `attnprox/models/default.apx`.
The environment variable ATTNPROX_DEFAULT_MODEL names another model file to use instead.
"""
import os

from .errors import ModelNotFoundError

DEFAULT_NAME = "default"
ENVIRONMENT_VARIABLE = "ATTNPROX_DEFAULT_MODEL"


def default_model_path() -> str:
    """The default model file: ATTNPROX_DEFAULT_MODEL when set, else the file installed with the package."""
    chosen = os.environ.get(ENVIRONMENT_VARIABLE)
    if chosen:
        if not os.path.isfile(chosen):
            raise ModelNotFoundError(f"{ENVIRONMENT_VARIABLE}={chosen}: no such model file")
        return chosen
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", DEFAULT_NAME + ".apx")
    if not os.path.isfile(path):
        raise ModelNotFoundError(
            f"the default model file {path} is missing: the build writes it from the repository's models/default "
            "(attnprox export-reference models/default ...); name a model file instead, or rebuild attnprox")
    return path


def resolve(path) -> str:
    """A model path as `load` takes it: None or "default" → the default model file; anything else unchanged."""
    if path is None or (isinstance(path, str) and path == DEFAULT_NAME and not os.path.exists(path)):
        return default_model_path()
    return os.fspath(path)
