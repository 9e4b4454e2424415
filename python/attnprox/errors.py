"""The exceptions attnprox raises. Each is an `attnprox.Error` and also the built-in exception a caller would
catch for that kind of problem (ValueError, IndexError, FileNotFoundError, RuntimeError)."""


class Error(Exception):
    """Base class of every error attnprox raises."""


class InvalidArgumentError(Error, ValueError):
    """A value passed in is not acceptable (empty input, an id outside the vocabulary, a bad option)."""


class OutOfRangeError(Error, IndexError):
    """A layer, head or token index outside what the model or text has."""


class ModelNotFoundError(Error, FileNotFoundError):
    """The model file does not exist."""


class InvalidModelError(Error, ValueError):
    """A file that breaks the model-file contract (not a TorchScript archive, no or bad manifest, a forward
    that disagrees with its manifest)."""


class UnsupportedError(Error, RuntimeError):
    """A valid request this build cannot serve (CUDA on a CPU-only build, a dtype the device cannot run)."""


class ComputeError(Error, RuntimeError):
    """A failure while computing (a libtorch error, non-finite values)."""


class ExportError(Error, RuntimeError):
    """`attnprox.export` cannot capture a model (the message names the reason) or the file it wrote did not verify
    against transformers' output_attentions=True."""
