"""The attnprox model file's format (docs/model-file.md), in one place for both exporters and the tools that
read or change files:

- the names: `FORMAT`, `FORMAT_VERSION`, the manifest's and the tokenizer's entries (`MANIFEST_NAME` /
  `TOKENIZER_NAME` as `torch.jit.save`'s `_extra_files` keys, `MANIFEST_ENTRY` / `TOKENIZER_ENTRY` as archive
  paths), the dtype names (`DTYPE_NAMES`, `parse_dtype`);
- the manifest's facts that both exporters compute the same way: `tokenizer_facts`, `check_tokenizer`, and the
  rotary embedding record (`rotary_record`, `unavailable_rope`; attnprox.rope);
- changing a file after export: `set_tokenizer` gives a file the tokenizer it was made without.

A model file is a TorchScript archive (a zip file); its tokenizer is the entry
`<archive>/extra/attnprox/tokenizer.json`. `set_tokenizer` rewrites the file entry by entry: every other entry keeps
its bytes and its order, each entry's data starts on a 64-byte boundary as torch writes them, and the new file is
written beside the old one and renamed over it, so that the model file is never half written.
"""
import os
import struct
import zipfile

from . import _limits
from .errors import InvalidArgumentError, InvalidModelError, ModelNotFoundError
from .files import replacing

FORMAT = "attnprox-model"
FORMAT_VERSION = 1
MANIFEST_NAME = "attnprox/manifest.json"  # torch.jit.save's _extra_files key: the entry extra/<name>
TOKENIZER_NAME = "attnprox/tokenizer.json"
TOKENIZER_ENTRY = "extra/" + TOKENIZER_NAME
MANIFEST_ENTRY = "extra/" + MANIFEST_NAME
DTYPE_ALIASES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16",
                 "fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
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
        with replacing(path, "wb") as raw:
            with zipfile.ZipFile(raw, "w") as out:
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


# ---- the manifest's facts, as both exporters write them ----

def dtype_names() -> dict:
    """torch dtype → the manifest's name of it ("float32", "float16", "bfloat16")."""
    import torch

    return {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def parse_dtype(dtype):
    """None, a torch dtype or a name ("float32"/"fp32", "float16"/"fp16", "bfloat16"/"bf16") → a torch dtype or
    None; ValueError for anything else."""
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        if dtype is not None and dtype not in dtype_names():
            raise ValueError(f"dtype {dtype} is not supported (float32, float16, bfloat16)")
        return dtype
    if not isinstance(dtype, str) or dtype.lower() not in DTYPE_ALIASES:
        raise ValueError(f"dtype {dtype!r} is not supported (float32, float16, bfloat16)")
    return getattr(torch, DTYPE_ALIASES[dtype.lower()])


def _read_json(path: str):
    from .reference.common import ReferenceModelError

    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return _limits.loads(f.read(_limits.MAX_TOKENIZER_BYTES + 1), path, ReferenceModelError)


def tokenizer_facts(model_dir, bos_id, eos_id, pad_id, vocab_size: int) -> dict:
    """The manifest's tokenizer facts: the BOS/EOS/PAD ids of the model's config (an id outside the vocabulary
    becomes None), whether BOS is added, and the special tokens, from `tokenizer_config.json` and `tokenizer.json`
    (or the one built from BERT's vocab.txt) where model_dir has them."""
    from .reference.common import ReferenceModelError
    from .reference.tokenizer_files import tokenizer_json_of

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


def check_tokenizer(text: str, path: str) -> None:
    """The tokenizer.json must load in attnprox's tokenizer (when the engine is there to check it)."""
    try:
        from . import _core
    except ImportError:  # the Python part without its compiled engine
        return
    from .reference.common import ReferenceModelError

    try:
        _core.Tokenizer.from_json(text)
    except Exception as e:  # attnprox errors name the problem
        raise ReferenceModelError(f"{path} cannot be used by attnprox's tokenizer: {e}") from None


def rotary_record(inv_freq, rotary_dim=None, layout: str = "rotate_half", attention_scaling: float = 1.0) -> dict:
    """The manifest's "rope" object (attnprox.rope.rotary_record)."""
    from .rope import rotary_record as record

    return record(inv_freq, rotary_dim, layout, attention_scaling)


def unavailable_rope(reason: str) -> dict:
    """The manifest's "rope" for a rotary embedding the file cannot describe."""
    from .rope import unavailable

    return unavailable(reason)
