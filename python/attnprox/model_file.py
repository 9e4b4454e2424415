"""Changing a model file after export: `set_tokenizer` gives a file the tokenizer it was made without.

A model file is a TorchScript archive (a zip file, docs/model-file.md); its tokenizer is the entry
`<archive>/extra/attnprox/tokenizer.json`. The file is rewritten entry by entry: every other entry keeps its bytes
and its order, each entry's data starts on a 64-byte boundary as torch writes them, and the new file is written
beside the old one and renamed over it, so that the model file is never half written.
"""
import os
import struct
import tempfile
import zipfile

from . import _limits
from .errors import InvalidArgumentError, InvalidModelError, ModelNotFoundError

TOKENIZER_ENTRY = "extra/attnprox/tokenizer.json"
MANIFEST_ENTRY = "extra/attnprox/manifest.json"
_ALIGNMENT = 64  # torch's zip writer starts every entry's data at a multiple of 64 bytes
_LOCAL_HEADER = 30  # bytes of a zip local file header before the name


def _aligned(info: zipfile.ZipInfo, offset: int) -> zipfile.ZipInfo:
    """A copy of `info` for an entry whose local header goes at `offset`, with torch's padding ("FB" extra field)
    so that its data starts on the alignment."""
    out = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    out.compress_type = zipfile.ZIP_STORED
    out.external_attr = info.external_attr
    out.create_system = info.create_system
    start = offset + _LOCAL_HEADER + len(info.filename.encode("utf-8")) + 4
    padding = (-start) % _ALIGNMENT
    out.extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
    return out


def _largest_id(tokenizer: dict) -> int:
    """The largest token id of a tokenizer.json (its model's vocabulary and its added tokens)."""
    vocab = tokenizer.get("model", {}).get("vocab", {})
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))
    ids += [token["id"] for token in tokenizer.get("added_tokens") or []]
    return max(ids, default=-1)


def set_tokenizer(path: str, tokenizer_json: str) -> None:
    """Puts the Hugging Face tokenizer.json at `tokenizer_json` into the model file at `path`, replacing the one it
    has, if any. The tokenizer must load in attnprox's tokenizer and fit the model's vocabulary; the manifest's
    tokenizer facts (BOS, padding) are kept as exported. The other entries of the file are kept byte for byte."""
    from .tokenizer import Tokenizer

    path, tokenizer_json = os.fspath(path), os.fspath(tokenizer_json)
    _limits.check_regular_file(path, "model file")
    _limits.check_regular_file(tokenizer_json, "tokenizer file")
    if os.path.getsize(tokenizer_json) > _limits.MAX_TOKENIZER_BYTES:
        raise InvalidArgumentError(f"tokenizer file '{tokenizer_json}' is more than the "
                                   f"{_limits.MAX_TOKENIZER_BYTES} bytes attnprox reads")
    with open(tokenizer_json, "rb") as f:
        data = f.read(_limits.MAX_TOKENIZER_BYTES + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(f"{tokenizer_json} is not UTF-8 text: {e}") from None
    Tokenizer.from_json(text)  # raises naming what is wrong
    if not zipfile.is_zipfile(path):
        raise InvalidModelError(f"model file '{path}': not a TorchScript archive (a zip archive written by "
                                f"`attnprox export`)")
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        manifests = [e for e in entries if e.filename.endswith("/" + MANIFEST_ENTRY)]
        if len(manifests) != 1:
            raise InvalidModelError(f"model file '{path}': a TorchScript archive without an attnprox manifest")
        manifest = _limits.loads(
            _limits.read_entry(archive, manifests[0], _limits.MAX_MANIFEST_BYTES, f"model file '{path}': its manifest",
                               InvalidModelError),
            f"model file '{path}': manifest", InvalidModelError)
        if not isinstance(manifest, dict):
            raise InvalidModelError(f"model file '{path}': manifest: the top level must be a JSON object")
        vocabulary = int(manifest.get("vocab_size", 0))
        largest = _largest_id(_limits.loads(text, tokenizer_json, InvalidArgumentError))
        if largest >= vocabulary:
            raise InvalidArgumentError(f"{tokenizer_json} has token ids up to {largest}, the model has {vocabulary} "
                                       f"(0..{vocabulary - 1}): it is not this model's tokenizer")
        prefix = manifests[0].filename[: -len(MANIFEST_ENTRY)]
        name = prefix + TOKENIZER_ENTRY
        folder = os.path.dirname(os.path.abspath(path))
        handle, temporary = tempfile.mkstemp(prefix=".attnprox-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w") as out:
                def put(info, content):
                    out.writestr(_aligned(info, raw.tell()), content)

                had_one = any(e.filename == name for e in entries)
                for entry in entries:
                    if entry.filename == name:
                        put(entry, data)
                        continue
                    try:
                        content = archive.read(entry)  # zipfile checks its CRC-32
                    except zipfile.BadZipFile as e:
                        raise InvalidModelError(f"model file '{path}': entry '{entry.filename}' is corrupt: {e}") \
                            from None
                    put(entry, content)
                    if entry is manifests[0] and not had_one:  # a new entry, beside the manifest
                        put(zipfile.ZipInfo(name, date_time=entry.date_time), data)
            os.chmod(temporary, os.stat(path).st_mode & 0o777)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise
