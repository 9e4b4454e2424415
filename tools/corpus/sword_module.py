"""Read SWORD Bible and commentary modules (zText / zCom drivers) and turn their OSIS markup into paragraphs.

A compressed SWORD module keeps each testament in three files, named by its block type letter `b` (book),
`c` (chapter) or `v` (verse):
  - `ot.bzs` block index: per block, little-endian uint32 (offset into .bzz, compressed size, uncompressed size);
  - `ot.bzz` the blocks, each a zlib stream holding consecutive entries;
  - `ot.bzv` entry index, one record per versification slot in canonical order (module heading, testament
    heading, then per book its heading, per chapter its heading and its verses): uint32 block number,
    uint32 start inside the decompressed block, and the entry size as uint16 (zText, zCom: 10-byte records)
    or uint32 (zText4, zCom4: 12-byte records).
A commentary entry that covers several verses is stored once and linked from each of them (same block, start,
size); such links are read once.

The OSIS markup carries `<chapter sID=.../>` and `<div type="book" sID=.../>` milestones, so a module can be split
into chapters or books without a versification table.
"""
from __future__ import annotations

import html
import re
import struct
import zlib
from typing import Dict, Iterator, List, Sequence

from package_archives import PackageFiles


def parse_conf(text: str) -> Dict[str, str]:
    """A module's .conf file: `[ModuleName]` then `Key=Value` lines (the first value of a repeated key wins)."""
    conf: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]") and "module" not in conf:
            conf["module"] = line[1:-1]
        elif "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            conf.setdefault(key.strip(), value.strip())
    return conf


def decompress_blocks(block_index: bytes, block_data: bytes, description: str) -> List[bytes]:
    if len(block_index) % 12:
        raise ValueError(f"{description}: block index is {len(block_index)} bytes, expected a multiple of 12")
    blocks = []
    for number, (offset, compressed, uncompressed) in enumerate(struct.iter_unpack("<III", block_index)):
        block = zlib.decompress(block_data[offset:offset + compressed])
        if len(block) != uncompressed:
            raise ValueError(f"{description}: block {number} decompresses to {len(block)} bytes, "
                             f"the index says {uncompressed}")
        blocks.append(block)
    return blocks


def _entry_records(entry_index: bytes, width: int) -> List[tuple]:
    layout = "<IIH" if width == 10 else "<III"
    return list(struct.iter_unpack(layout, entry_index))


def _records_fit(records: Sequence[tuple], blocks: Sequence[bytes]) -> bool:
    return all(size == 0 or (block < len(blocks) and start + size <= len(blocks[block]))
               for block, start, size in records)


def read_entries(entry_index: bytes, blocks: Sequence[bytes], driver: str, description: str) -> List[str]:
    """The module's entries in canonical order, empty slots and repeated links left out.

    The record width follows the driver (12 bytes for zText4/zCom4, else 10) when the records fit the blocks;
    some packaged modules name a 4-byte driver over a 10-byte index, so the other width is tried next."""
    widths = (12, 10) if driver.endswith("4") else (10, 12)
    for width in widths:
        if len(entry_index) % width:
            continue
        records = _entry_records(entry_index, width)
        if _records_fit(records, blocks):
            break
    else:
        raise ValueError(f"{description}: the {len(entry_index)}-byte entry index does not fit the "
                         f"{len(blocks)} blocks as 10- or 12-byte records (driver {driver})")
    entries, seen = [], set()
    for record in records:
        if record[2] == 0 or record in seen:
            continue
        seen.add(record)
        block, start, size = record
        entries.append(blocks[block][start:start + size].decode("utf-8"))
    return entries


def read_module(files: PackageFiles, conf_path: str) -> List[str]:
    """Every entry of the module described by the .conf file, Old Testament then New Testament."""
    conf = parse_conf(files.read_text(conf_path))
    data_path = conf.get("DataPath", "").lstrip("./").rstrip("/")
    base = "usr/share/sword/" + data_path
    letter = {"BOOK": "b", "CHAPTER": "c", "VERSE": "v"}.get(conf.get("BlockType", "CHAPTER").upper(), "c")
    entries = []
    for testament in ("ot", "nt"):
        stem = f"{base}/{testament}.{letter}z"
        if not files.paths(stem + "v"):
            continue
        description = f"{files.description} {stem}*"
        blocks = decompress_blocks(files.read(stem + "s"), files.read(stem + "z"), description)
        entries.extend(read_entries(files.read(stem + "v"), blocks, conf.get("ModDrv", ""), description))
    if not entries:
        raise ValueError(f"{files.description}: expected module files under {base}, found none")
    return entries


# Where a new document starts: a book's opening div, or (for chapter documents) a chapter milestone.
BOOK_START = re.compile(r'<div\b(?=[^>]*\btype="book")(?=[^>]*\bsID=)[^>]*>')
CHAPTER_START = re.compile(r'<chapter\b(?=[^>]*\bsID=)[^>]*>')


def split_documents(entries: Sequence[str], unit: str) -> List[str]:
    """The module's markup cut into documents at each book start, or at each chapter when unit is 'chapter'
    (a book's heading and introduction open its first chapter's document). Documents keep their markup;
    markup before the first cut is a document of its own."""
    if unit not in ("book", "chapter"):
        raise ValueError(f"document unit {unit!r}: expected 'book' or 'chapter'")
    markup = " ".join(entries)
    book_starts = [m.start() for m in BOOK_START.finditer(markup)]
    if unit == "book":
        starts = book_starts
    else:
        starts = []
        for chapter in (m.start() for m in CHAPTER_START.finditer(markup)):
            previous = starts[-1] if starts else -1
            opening = [b for b in book_starts if previous < b < chapter]
            starts.append(opening[0] if opening else chapter)
    cuts = sorted(set([0] + starts + [len(markup)]))
    return [markup[a:b] for a, b in zip(cuts, cuts[1:]) if markup[a:b].strip()]


NOTE = re.compile(r"<note\b[^>]*/>|<note\b.*?</note>", re.DOTALL)
# Elements that begin or end a paragraph; any other tag is dropped and its text kept.
PARAGRAPH_TAG = re.compile(r"</?(?:div|p|lg|list|item|title|chapter|head)\b[^>]*>"
                           r'|<(?:milestone|lb)\b[^>]*type="x-(?:p|begin-paragraph|end-paragraph)"[^>]*>')
TAG = re.compile(r"<[^>]*>")
ESCAPED_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*\b[^<>]*>")
NOTE_MARK, BREAK_MARK = "\x00", "\x01"


def osis_to_paragraphs(markup: str) -> List[str]:
    """The reading text of OSIS markup: notes removed, paragraph elements as paragraph breaks, other tags
    dropped with their text kept, entities decoded, whitespace collapsed; one string per paragraph."""
    text = NOTE.sub(NOTE_MARK, markup)
    text = PARAGRAPH_TAG.sub(BREAK_MARK, text)
    text = TAG.sub("", text)
    # A note between two words stood where a space belongs ("God<note>…</note>created").
    text = re.sub(r"(\w)\x00+(?=\w)", r"\1 ", text).replace(NOTE_MARK, "")
    text = html.unescape(text).replace("\u00b6", "")  # pilcrow paragraph marks
    text = ESCAPED_HTML_TAG.sub("", text)  # HTML that a module carried as escaped text ("&lt;/ol&gt;")
    paragraphs = (" ".join(part.split()) for part in text.split(BREAK_MARK))
    return [p for p in paragraphs if p]


def iter_module_documents(files: PackageFiles, conf_path: str, unit: str) -> Iterator[str]:
    yield from split_documents(read_module(files, conf_path), unit)
