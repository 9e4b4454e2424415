"""Read a dictionary in the dictd format: `NAME.index` (one line per headword: `headword TAB offset TAB length`,
offset and length in dictd's base64 digits) and `NAME.dict.dz` (dictzip, a gzip file readable as plain gzip).

Entries come back once each, in the order they have in the .dict file, with every headword that points at them;
the database's own `00-database-*` entries (name, URL, licence notice) are left out.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Dict, List, Tuple

BASE64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
DIGIT_VALUE = {c: i for i, c in enumerate(BASE64_DIGITS)}


@dataclass(frozen=True)
class DictdEntry:
    headwords: Tuple[str, ...]
    text: str


def decode_number(digits: str) -> int:
    """A dictd index number: base-64 digits, most significant first ("BdqM" -> 95884)."""
    value = 0
    for c in digits:
        if c not in DIGIT_VALUE:
            raise ValueError(f"dictd index number {digits!r}: {c!r} is not a base64 digit")
        value = value * 64 + DIGIT_VALUE[c]
    return value


def is_database_entry(headword: str) -> bool:
    """dictd's own entries: `00-database-info`, `00databaseurl`, `00-gcide-long`, ..."""
    return headword.startswith("00-") or headword.replace("-", "").startswith("00database")


def read_dictd(index_text: str, dictionary: bytes) -> List[DictdEntry]:
    if dictionary[:2] == b"\x1f\x8b":
        dictionary = gzip.decompress(dictionary)
    headwords: Dict[Tuple[int, int], List[str]] = {}
    for number, line in enumerate(index_text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise ValueError(f"dictd index line {number}: expected 'headword<TAB>offset<TAB>length', "
                             f"found {line[:80]!r}")
        if is_database_entry(fields[0]):
            continue
        span = (decode_number(fields[1]), decode_number(fields[2]))
        if span[0] + span[1] > len(dictionary):
            raise ValueError(f"dictd index line {number}: entry ends at byte {span[0] + span[1]}, the dictionary "
                             f"has {len(dictionary)} bytes")
        headwords.setdefault(span, []).append(fields[0])
    return [DictdEntry(tuple(headwords[span]), decode_entry(dictionary[span[0]:span[0] + span[1]]))
            for span in sorted(headwords)]


def decode_entry(raw: bytes) -> str:
    """UTF-8, or, for the few entries of older dictionaries typed in Windows-1252, that code page."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
