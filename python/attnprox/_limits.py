"""The bounds attnprox puts on what it reads (docs/limits.md), for the places where Python reads a model file or a
JSON file itself (the engine checks the same bounds in C++): JSON nesting, entry sizes, regular files only."""
import json
import os
import stat
import zipfile

MAX_JSON_DEPTH = 100
MAX_MANIFEST_BYTES = 16 << 20
MAX_TOKENIZER_BYTES = 128 << 20


def check_regular_file(path: str, what: str, error=None) -> None:
    """Refuses a directory, FIFO, socket or device before it is opened (opening a FIFO blocks)."""
    from .errors import InvalidArgumentError, ModelNotFoundError
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ModelNotFoundError(f"{what} '{path}' does not exist") from None
    except OSError as e:
        raise (error or InvalidArgumentError)(f"{what} '{path}' cannot be read: {e.strerror}") from None
    if stat.S_ISDIR(mode):
        raise (error or InvalidArgumentError)(f"{what} '{path}' is a directory")
    if not stat.S_ISREG(mode):
        raise (error or InvalidArgumentError)(f"{what} '{path}' is not a regular file (a FIFO, socket or device); "
                                              f"attnprox reads files only")


def _depth(value) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def loads(data, what: str, error):
    """json.loads with the engine's bounds: nesting deeper than MAX_JSON_DEPTH is `error(...)`, never a
    RecursionError; invalid JSON is `error(...)` too."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise error(f"{what}: JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"{what}: not valid JSON ({str(e)[:200]})") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise error(f"{what}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, what: str, error) -> bytes:
    """An archive entry's bytes, refused when its declared size or what it inflates to exceeds `limit` (read no
    further than that); zipfile checks its CRC-32."""
    if info.file_size > limit:
        raise error(f"{what} is {info.file_size} bytes, more than the {limit} attnprox reads")
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except zipfile.BadZipFile as e:
        raise error(f"{what} is corrupt: {e}") from None
    if len(data) > limit:
        raise error(f"{what} is more than the {limit} bytes attnprox reads")
    return data
