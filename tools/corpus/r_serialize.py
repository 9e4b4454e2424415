"""Read R's serialization format (XDR, versions 2 and 3) and R's lazy-load databases (`.rdx` + `.rdb`) in Python.

An R package's lazily loaded data lives in `data/Rdata.rdb` (the values) and `data/Rdata.rdx` (the index). The
index is a gzip'd serialized list `list(variables = list(NAME = c(offset, length)), references = ..., compressed =
TRUE | 2 | 3)`. Each value is a record in the .rdb at that offset: a 4-byte big-endian uncompressed length, for
`compressed` 2 or 3 a one-byte method (`Z` zlib, `2` bzip2, `X` xz, `0` none), then the compressed serialized
object. This module reads both without R.

The serialization stream ("R Internals", section "Serialization Formats"): the magic `X\n`, then big-endian int32s
`version`, `writer R version`, `minimal reader version`, and (version 3) the native encoding as a length and bytes.
Each item starts with an int32 `flags`: bits 0-7 the SEXP type, bit 8 is-object, bit 9 has-attributes, bit 10
has-tag, bits 12-27 the `levels` (for a CHARSXP, its encoding). Vectors follow with an int32 length (-1 means a
64-bit length in two int32s) and their elements; then, if flagged, the attributes as a pairlist. Symbols and
environments enter a reference table that `REFSXP` items point back into (index = flags >> 8, or a following int32
when that is 0).

Values come back as Python objects: a character vector as `RVector("character", [str | None, ...], attributes)`,
NULL as None, a pairlist as `RPairList([(tag, value), ...])`, and so on.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

# SEXP types (Rinternals.h)
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
SPECIALSXP, BUILTINSXP, CHARSXP, LGLSXP = 7, 8, 9, 10
INTSXP, REALSXP, CPLXSXP, STRSXP, DOTSXP = 13, 14, 15, 16, 17
VECSXP, EXPRSXP, BCODESXP, EXTPTRSXP, WEAKREFSXP, RAWSXP, S4SXP = 19, 20, 21, 22, 23, 24, 25
# Pseudo-types of the serialization stream (serialize.c)
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP = 255, 254, 253, 252
MISSINGARG_SXP, BASENAMESPACE_SXP, NAMESPACESXP, PACKAGESXP = 251, 250, 249, 248
PERSISTSXP, EMPTYENV_SXP, BASEENV_SXP, ATTRLANGSXP, ATTRLISTSXP, ALTREP_SXP = 247, 242, 241, 240, 239, 238

IS_OBJECT_BIT, HAS_ATTR_BIT, HAS_TAG_BIT = 1 << 8, 1 << 9, 1 << 10
# CHARSXP encoding bits in `levels`
BYTES_MASK, LATIN1_MASK, UTF8_MASK, ASCII_MASK = 1 << 1, 1 << 2, 1 << 3, 1 << 6
NA_INTEGER = -(2 ** 31)

VECTOR_TYPE_NAMES = {LGLSXP: "logical", INTSXP: "integer", REALSXP: "double", CPLXSXP: "complex",
                     STRSXP: "character", VECSXP: "list", EXPRSXP: "expression", RAWSXP: "raw"}


@dataclass
class RVector:
    """An atomic vector or list; `values` holds Python values, None for NA."""
    type: str
    values: List[Any]
    attributes: Dict[str, Any] = field(default_factory=dict)

    def names(self) -> Optional[List[str]]:
        names = self.attributes.get("names")
        return names.values if isinstance(names, RVector) else None


@dataclass
class RPairList:
    """A pairlist (or language object, closure, ...): (tag, value) cells in order; `kind` says which SEXP type."""
    cells: List[Tuple[Optional[str], Any]]
    kind: str = "pairlist"
    attributes: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RSymbol:
    name: str


@dataclass
class REnvironment:
    frame: Any = None
    enclosure: Any = None
    hash_table: Any = None
    attributes: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RSpecial:
    """A well-known singleton (the global environment, the empty environment, ...) or a persistent reference."""
    name: str


class RFormatError(ValueError):
    pass


class _XdrReader:
    def __init__(self, data: bytes):
        self.data = data
        self.position = 0
        self.references: List[Any] = []

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise RFormatError(f"serialized stream ends at byte {len(self.data)}, expected {count} more bytes at "
                               f"byte {self.position}")
        chunk = self.data[self.position:self.position + count]
        self.position += count
        return chunk

    def int32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int32()
        if n == -1:  # long vector: upper and lower 32 bits
            upper, lower = struct.unpack(">II", self.take(8))
            return (upper << 32) + lower
        if n < 0:
            raise RFormatError(f"vector length {n} at byte {self.position - 4}: expected >= 0")
        return n

    def string_bytes(self) -> Optional[bytes]:
        n = self.int32()
        return None if n == -1 else self.take(n)


def _decode_charsxp(raw: Optional[bytes], levels: int) -> Optional[str]:
    if raw is None:
        return None
    if levels & LATIN1_MASK:
        return raw.decode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RFormatError(f"string flagged UTF-8/native is not valid UTF-8: {error}") from None


def _attributes_dict(pairlist: Any) -> Dict[str, Any]:
    if isinstance(pairlist, RPairList):
        return {tag: value for tag, value in pairlist.cells}
    return {}


def _read_item(reader: _XdrReader) -> Any:
    flags = reader.int32()
    sexp_type = flags & 0xFF
    levels = flags >> 12
    has_attr = bool(flags & HAS_ATTR_BIT)
    has_tag = bool(flags & HAS_TAG_BIT)

    if sexp_type == NILVALUE_SXP:
        return None
    if sexp_type in (GLOBALENV_SXP, EMPTYENV_SXP, BASEENV_SXP, BASENAMESPACE_SXP, UNBOUNDVALUE_SXP,
                     MISSINGARG_SXP):
        return RSpecial({GLOBALENV_SXP: "globalenv", EMPTYENV_SXP: "emptyenv", BASEENV_SXP: "baseenv",
                         BASENAMESPACE_SXP: "basenamespace", UNBOUNDVALUE_SXP: "unbound",
                         MISSINGARG_SXP: "missingarg"}[sexp_type])
    if sexp_type == REFSXP:
        index = flags >> 8
        if index == 0:
            index = reader.int32()
        if not 1 <= index <= len(reader.references):
            raise RFormatError(f"reference {index} at byte {reader.position}: the table holds "
                               f"{len(reader.references)} entries")
        return reader.references[index - 1]
    if sexp_type in (PERSISTSXP, NAMESPACESXP, PACKAGESXP):
        # InStringVec: an int32 0, the count, then CHARSXP items
        if reader.int32() != 0:
            raise RFormatError("persistent string vector: expected a leading 0")
        names = [_read_item(reader) for _ in range(reader.int32())]
        kind = {PERSISTSXP: "persistent", NAMESPACESXP: "namespace", PACKAGESXP: "package"}[sexp_type]
        special = RSpecial(kind + ":" + ":".join(str(n) for n in names))
        reader.references.append(special)
        return special
    if sexp_type == SYMSXP:
        symbol = RSymbol(_read_item(reader))
        reader.references.append(symbol)
        return symbol
    if sexp_type == ENVSXP:
        environment = REnvironment()
        reader.references.append(environment)
        reader.int32()  # locked
        environment.enclosure = _read_item(reader)
        environment.frame = _read_item(reader)
        environment.hash_table = _read_item(reader)
        environment.attributes = _attributes_dict(_read_item(reader))
        return environment
    if sexp_type in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLANGSXP, ATTRLISTSXP):
        return _read_pairlist(reader, sexp_type, has_attr, has_tag)
    if sexp_type == CHARSXP:
        return _decode_charsxp(reader.string_bytes(), levels)
    if sexp_type in (SPECIALSXP, BUILTINSXP):
        return RSpecial("builtin:" + reader.take(reader.int32()).decode("ascii"))
    if sexp_type == ALTREP_SXP:
        return _read_altrep(reader)
    if sexp_type in VECTOR_TYPE_NAMES:
        vector = RVector(VECTOR_TYPE_NAMES[sexp_type], _read_vector_values(reader, sexp_type))
    elif sexp_type == S4SXP:
        vector = RVector("S4", [])
    else:
        raise RFormatError(f"SEXP type {sexp_type} at byte {reader.position - 4} is not supported here "
                           f"(expected data: vectors, lists, pairlists, symbols, environments)")
    if has_attr:
        vector.attributes = _attributes_dict(_read_item(reader))
    return vector


def _read_vector_values(reader: _XdrReader, sexp_type: int) -> List[Any]:
    n = reader.length()
    if sexp_type in (LGLSXP, INTSXP):
        values = list(struct.unpack(f">{n}i", reader.take(4 * n)))
        values = [None if v == NA_INTEGER else v for v in values]
        return [None if v is None else bool(v) for v in values] if sexp_type == LGLSXP else values
    if sexp_type == REALSXP:
        return list(struct.unpack(f">{n}d", reader.take(8 * n)))
    if sexp_type == CPLXSXP:
        parts = struct.unpack(f">{2 * n}d", reader.take(16 * n))
        return [complex(parts[2 * i], parts[2 * i + 1]) for i in range(n)]
    if sexp_type == RAWSXP:
        return list(reader.take(n))
    return [_read_item(reader) for _ in range(n)]  # STRSXP, VECSXP, EXPRSXP


def _read_pairlist(reader: _XdrReader, sexp_type: int, has_attr: bool, has_tag: bool) -> RPairList:
    kind = {LISTSXP: "pairlist", LANGSXP: "language", CLOSXP: "closure", PROMSXP: "promise", DOTSXP: "dots",
            ATTRLANGSXP: "language", ATTRLISTSXP: "pairlist"}[sexp_type]
    result = RPairList([], kind)
    # Cells are read iteratively along the CDR chain, so long pairlists do not recurse deeply.
    while True:
        attributes = _attributes_dict(_read_item(reader)) if has_attr else {}
        if not result.cells:
            result.attributes = attributes
        tag = _read_item(reader) if has_tag else None
        value = _read_item(reader)
        result.cells.append((tag.name if isinstance(tag, RSymbol) else tag, value))
        flags = reader.int32()
        if flags & 0xFF != LISTSXP:  # the CDR is NULL or not a plain pairlist cell: it ends the chain
            reader.position -= 4
            tail = _read_item(reader)
            if tail is not None:
                result.cells.append((None, tail))
            return result
        has_attr = bool(flags & HAS_ATTR_BIT)
        has_tag = bool(flags & HAS_TAG_BIT)


def _read_altrep(reader: _XdrReader) -> Any:
    """ALTREP objects R writes in compact form: integer/real sequences, wrappers and deferred strings."""
    info = _read_item(reader)
    state = _read_item(reader)
    attributes = _attributes_dict(_read_item(reader))
    class_name = info.cells[0][1].name if isinstance(info, RPairList) and info.cells else "?"
    if class_name in ("compact_intseq", "compact_realseq"):
        length, first, step = state.values[:3]
        values = [first + step * i for i in range(int(length))]
        result = RVector("integer" if class_name == "compact_intseq" else "double",
                         [int(v) for v in values] if class_name == "compact_intseq" else values)
    elif class_name.startswith("wrap_"):
        result = state.values[0]
    elif class_name == "deferred_string":
        source = state.cells[0][1] if isinstance(state, RPairList) else state
        result = RVector("character", [None if v is None else (str(int(v)) if float(v).is_integer() else repr(v))
                                       for v in source.values])
    else:
        raise RFormatError(f"ALTREP class {class_name!r} is not supported here (expected compact_intseq, "
                           f"compact_realseq, wrap_* or deferred_string)")
    if attributes and isinstance(result, RVector):
        result.attributes = attributes
    return result


def unserialize(data: bytes) -> Any:
    """The object in one serialized stream (`X\\n` XDR format; a gzip'd stream is unwrapped first)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:2] != b"X\n":
        raise RFormatError(f"expected R's XDR serialization magic b'X\\n', found {data[:2]!r} (the ASCII and "
                           f"native-binary formats are not supported)")
    reader = _XdrReader(data)
    reader.position = 2
    version = reader.int32()
    reader.int32()  # R version that wrote it
    reader.int32()  # minimal R version that can read it
    if version == 3:
        reader.take(reader.int32())  # native encoding name
    elif version != 2:
        raise RFormatError(f"serialization version {version}: expected 2 or 3")
    return _read_item(reader)


def _decompress_record(record: bytes, compressed: int, name: str) -> bytes:
    if len(record) < 4:
        raise RFormatError(f"lazy-load record {name!r} is {len(record)} bytes: expected at least 4")
    expected = struct.unpack(">I", record[:4])[0]
    if compressed in (2, 3):
        method, body = record[4:5], record[5:]
    else:
        method, body = b"Z", record[4:]
    decompress = {b"Z": zlib.decompress, b"2": bz2.decompress, b"X": lzma.decompress, b"0": bytes}.get(method)
    if decompress is None:
        raise RFormatError(f"lazy-load record {name!r}: unknown compression method {method!r}")
    data = decompress(body)
    if len(data) != expected:
        raise RFormatError(f"lazy-load record {name!r}: header says {expected} bytes, found {len(data)}")
    return data


def read_lazyload_db(rdx: bytes, rdb: bytes) -> Dict[str, Any]:
    """Every variable of a lazy-load database, by name, unserialized."""
    index = unserialize(rdx)
    if not isinstance(index, RVector) or index.names() is None:
        raise RFormatError("lazy-load index: expected a named list (variables, references, compressed)")
    parts = dict(zip(index.names(), index.values))
    variables = parts.get("variables")
    if not isinstance(variables, RVector) or variables.names() is None:
        raise RFormatError("lazy-load index: expected a named list 'variables'")
    compressed_value = parts.get("compressed")
    compressed = int(compressed_value.values[0]) if isinstance(compressed_value, RVector) else 1
    values = {}
    for name, position in zip(variables.names(), variables.values):
        offset, length = (int(v) for v in position.values)
        values[name] = unserialize(_decompress_record(rdb[offset:offset + length], compressed, name))
    return values
