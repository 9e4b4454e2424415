"""Writing files so that a failure never leaves a damaged one: every file attnprox writes (model files, pictures,
HTML pages, JSON, CSV, study reports) goes through `replacing`, which writes a temporary file in the same folder
and renames it over the destination only once it is complete and flushed to disk. A full disk, an error while
writing or a crash leaves the file that was there before (or none), never a truncated one.

`check_output` refuses an output path that is one of the command's inputs (the same file, also through a symbolic
or hard link): writing there would destroy the input before it is read."""
import contextlib
import os
import tempfile
from typing import Iterable, Iterator, Optional, Union

from .errors import InvalidArgumentError

PathLike = Union[str, "os.PathLike[str]"]


def _same_file(a: PathLike, b: PathLike) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_output(path: PathLike, inputs: Iterable[Optional[PathLike]] = (), what: str = "output") -> str:
    """`path` as a str, or InvalidArgumentError when it names the same file as one of `inputs` (None entries are
    skipped), a folder, or holds a NUL character."""
    path = os.fspath(path)
    if "\0" in path:
        raise InvalidArgumentError(f"{what} path {path!r} holds a NUL character")
    if path == "" or os.path.isdir(path):
        raise InvalidArgumentError(f"{what} path {path!r} is a folder, not a file")
    for source in inputs:
        if source is not None and _same_file(path, source):
            raise InvalidArgumentError(f"{what} {path} is the same file as the input {os.fspath(source)}: writing it "
                                       f"would destroy the input; choose another path")
    return path


def _mode_for(path: str) -> int:
    """The permissions the file gets: those of the file it replaces, else what open() would give a new file."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def replacing(path: PathLike, mode: str = "wb", encoding: Optional[str] = None, newline: Optional[str] = None,
              inputs: Iterable[Optional[PathLike]] = ()) -> Iterator:
    """`with replacing(path, "w", encoding="utf-8") as f: f.write(...)`: a file object on a temporary file beside
    `path`, renamed to `path` when the block ends without an error (after flush and fsync); on an error the
    temporary file is removed and `path` is left as it was. `inputs`: paths `path` must not be (check_output)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"replacing opens files for writing ('w' or 'wb'), not {mode!r}")
    with _beside(path, inputs, ".tmp") as temporary:
        with open(temporary, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def replacing_path(path: PathLike, inputs: Iterable[Optional[PathLike]] = ()) -> Iterator[str]:
    """For writers that take a path (matplotlib's savefig): `with replacing_path(out) as temporary:` gives the
    path of a new empty temporary file beside `path` (with `path`'s extension) to write; it is renamed to `path`
    when the block ends without an error, and removed otherwise."""
    with _beside(path, inputs, ".tmp" + os.path.splitext(os.fspath(path))[1]) as temporary:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())


@contextlib.contextmanager
def _beside(path: PathLike, inputs: Iterable[Optional[PathLike]], suffix: str) -> Iterator[str]:
    """The one mechanism of `replacing` and `replacing_path`: a new empty temporary file beside `path` (checked by
    check_output), whose path the block fills (and syncs); renamed to `path`, with `path`'s permissions, when the
    block ends without an error, and removed otherwise."""
    path = check_output(path, inputs)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_bytes(path: PathLike, data: bytes, inputs: Iterable[Optional[PathLike]] = ()) -> str:
    """Writes `data` to `path` through `replacing`; returns the path."""
    with replacing(path, "wb", inputs=inputs) as f:
        f.write(data)
    return os.fspath(path)


def write_text(path: PathLike, text: str, encoding: str = "utf-8", inputs: Iterable[Optional[PathLike]] = ()) -> str:
    """Writes `text` to `path` through `replacing`; returns the path."""
    with replacing(path, "w", encoding=encoding, inputs=inputs) as f:
        f.write(text)
    return os.fspath(path)


def folder_files(folder: Optional[PathLike]) -> list:
    """The files directly inside `folder` (the inputs of an exporter that reads a model folder); [] for None or a
    path that is not a folder."""
    if folder is None or not os.path.isdir(folder):
        return []
    return [os.path.join(folder, name) for name in os.listdir(folder)]


def save_module(module, path: PathLike, extra_files: Optional[dict] = None,
                inputs: Iterable[Optional[PathLike]] = ()) -> str:
    """torch.jit.save of a TorchScript module through `replacing`: the archive is serialized in memory first and
    written by Python, so that a write error (a full disk) is an OSError and the file that was at `path` stays."""
    import torch

    with replacing(path, "wb", inputs=inputs) as f:
        torch.jit.save(module, f, _extra_files=extra_files or {})
    return os.fspath(path)
