"""What a study needs to know about its model file before any worker loads it: the file's SHA-256 (the run's
identity), its manifest (layers, positions) and its tokenizer (to count each text's tokens for quality control
and batching). Read from the TorchScript archive directly, so that the process that plans a study never loads the
model (it may run on a GPU the planner must not take)."""
import hashlib
import os
import zipfile
from dataclasses import dataclass
from typing import List, Optional

from .. import _limits
from ..errors import InvalidArgumentError, InvalidModelError, ModelNotFoundError
from ..layers import resolve_layers
from ..tokenizer import Tokenizer

_MANIFEST = "extra/attnprox/manifest.json"
_TOKENIZER = "extra/attnprox/tokenizer.json"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ModelFile:
    """A model file as a study plans with it."""

    path: str          # absolute: what workers load
    given: str         # as the caller named it: what reports show
    sha256: str
    manifest: dict
    tokenizer: Optional[Tokenizer]

    @classmethod
    def read(cls, path: str) -> "ModelFile":
        _limits.check_regular_file(path, "model file")
        try:
            with zipfile.ZipFile(path) as archive:
                names = {name.split("/", 1)[-1]: name for name in archive.namelist()}
                if _MANIFEST not in names:
                    raise InvalidModelError(f"'{path}' has no attnprox manifest: not an attnprox model file")
                manifest = _limits.loads(
                    _limits.read_entry(archive, archive.getinfo(names[_MANIFEST]), _limits.MAX_MANIFEST_BYTES,
                                       f"model file '{path}': its manifest", InvalidModelError),
                    f"model file '{path}': manifest", InvalidModelError)
                if not isinstance(manifest, dict):
                    raise InvalidModelError(f"model file '{path}': manifest: the top level must be a JSON object")
                tokenizer_json = ""
                if _TOKENIZER in names:
                    data = _limits.read_entry(archive, archive.getinfo(names[_TOKENIZER]),
                                              _limits.MAX_TOKENIZER_BYTES, f"model file '{path}': its tokenizer.json",
                                              InvalidModelError)
                    try:
                        tokenizer_json = data.decode("utf-8")
                    except UnicodeDecodeError:
                        raise InvalidModelError(f"model file '{path}': its tokenizer.json is not UTF-8") from None
        except zipfile.BadZipFile:
            raise InvalidModelError(f"'{path}' is not a TorchScript archive (not a zip file)") from None
        tokenizer = Tokenizer.from_json(tokenizer_json) if tokenizer_json.strip() else None
        return cls(os.path.abspath(path), str(path), sha256_of(path), manifest, tokenizer)

    @property
    def captured_layers(self) -> List[int]:
        return list(self.manifest["captured_layers"])

    @property
    def max_positions(self) -> int:
        return int(self.manifest["max_positions"])

    def count_tokens(self, text: str) -> int:
        """The number of tokens `Model.run(text=text)` runs, as the engine encodes a text for the model: one leading
        byte-order mark left out, the tokenizer's encoding with its special tokens, and the manifest's BOS in front
        when the model adds one the tokenizer does not."""
        if self.tokenizer is None:
            raise InvalidArgumentError(f"model file '{self.path}' has no tokenizer.json, so it cannot read texts")
        ids = self.tokenizer.encode(text[1:] if text.startswith("\ufeff") else text, add_special_tokens=True)
        facts = self.manifest.get("tokenizer") or {}
        bos = facts.get("bos_id")
        if facts.get("add_bos") and bos is not None and (not ids or ids[0] != bos):
            return len(ids) + 1
        return len(ids)

    def resolve_layers(self, layers) -> List[int]:
        """The model's own numbers of the layers asked for: None or "last" (the last captured layer), "all", a
        number or a list of them, or "i,j" (negative numbers count back from the last captured layer)."""
        return resolve_layers("last" if layers is None else layers, self.captured_layers,
                              int(self.manifest["num_layers"]))
