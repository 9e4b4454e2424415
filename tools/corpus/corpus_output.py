"""The corpus's output format: documents in one UTF-8 file per source, de-duplication, the manifest and the
reproducible tarball.

Document format. A source file is a sequence of documents; each document is its paragraphs joined by one blank
line, then a blank line, then a line holding exactly `<|endoftext|>`; the next document starts after one more
blank line:

    first paragraph of document 1

    second paragraph of document 1

    <|endoftext|>

    first paragraph of document 2

    <|endoftext|>

`read_documents` splits such a text back into documents. No document contains a line `<|endoftext|>` (the
string is removed from the text where a source has it).
"""
from __future__ import annotations

import hashlib
import io
import json
import lzma
import re
import tarfile
from typing import Dict, Iterable, List, Sequence

SEPARATOR = "<|endoftext|>"
SEPARATOR_LINE = re.compile(r"^" + re.escape(SEPARATOR) + r"$", re.MULTILINE)


def format_documents(documents: Iterable[str]) -> str:
    """The text of a source file: each document followed by a blank line and the separator line."""
    parts = []
    for document in documents:
        if not document or document != document.strip("\n"):
            raise ValueError("documents must be non-empty and must not start or end with a newline")
        parts.append(document + "\n\n" + SEPARATOR + "\n")
    return "\n".join(parts)


def read_documents(text: str) -> List[str]:
    """The documents of a source file's text (the inverse of format_documents)."""
    return [piece.strip("\n") for piece in SEPARATOR_LINE.split(text) if piece.strip("\n")]


def remove_separator(document: str) -> str:
    return document.replace(SEPARATOR, "")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def comparison_key(text: str) -> str:
    """Text reduced for duplicate detection: lower case letters and digits only."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


class Deduplicator:
    """Drops a document seen before, exactly or nearly.

    Exact: the same comparison key (case, spacing and punctuation ignored). Near: at least half of the
    document's long paragraphs (of `LONG_PARAGRAPH` or more key characters, at least `MIN_LONG_PARAGRAPHS` of
    them) already appeared in kept documents, as happens with one book in two packages wrapped differently.
    The first copy, in source order, is kept."""
    LONG_PARAGRAPH = 200
    MIN_LONG_PARAGRAPHS = 3

    def __init__(self) -> None:
        self.document_keys: set = set()
        self.paragraph_keys: set = set()

    def is_duplicate(self, document: str) -> bool:
        key = sha256_hex(comparison_key(document).encode())
        if key in self.document_keys:
            return True
        paragraph_keys = [sha256_hex(k.encode()) for k in (comparison_key(p) for p in document.split("\n\n"))
                          if len(k) >= self.LONG_PARAGRAPH]
        if len(paragraph_keys) >= self.MIN_LONG_PARAGRAPHS:
            seen = sum(k in self.paragraph_keys for k in paragraph_keys)
            if 2 * seen >= len(paragraph_keys):
                return True
        self.document_keys.add(key)
        self.paragraph_keys.update(paragraph_keys)
        return False


def manifest_json(manifest: Dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def write_tarball(path: str, members: Sequence[tuple]) -> None:
    """An xz-compressed tar of (name, bytes) members, byte-identical for identical members: fixed order,
    times, owners and modes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    compressed = lzma.compress(buffer.getvalue(), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                               preset=9 | lzma.PRESET_EXTREME)
    with open(path, "wb") as f:
        f.write(compressed)
