"""Cleaning shared by every source: Unicode and whitespace normalisation, Project Gutenberg boilerplate, page and
line numbers, and reflowing hard-wrapped prose into one line per paragraph.

The cleaned form of a document is a list of paragraphs joined by one blank line; a paragraph of prose is one
line; a paragraph of verse (short lines, as in poems and plays) keeps its line breaks.
"""
from __future__ import annotations

import re
import unicodedata
from typing import List, Optional, Sequence

BYTE_ORDER_MARK = "\ufeff"

# Project Gutenberg's start and end markers, in the forms used from the 1990s to today.
GUTENBERG_START = re.compile(
    r"^\s*(?:\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG.*"
    r"|\*END\*THE SMALL PRINT!.*)$",
    re.IGNORECASE | re.MULTILINE)
GUTENBERG_END = re.compile(
    r"^\s*(?:\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|End of (?:the |this )?Project Gutenberg"
    r"|End of Project Gutenberg'?s"
    r"|\*\*\*\s*END OF THE PROJECT GUTENBERG).*$",
    re.IGNORECASE | re.MULTILINE)
# A line holding nothing but a page or line number: "123", "[Page 12]", "[Pg 7]", "p. 45".
PAGE_NUMBER_LINE = re.compile(r"^\s*\[?\s*(?:page|pg\.?|p\.)?\s*\d{1,4}\s*\]?\s*$", re.IGNORECASE)
# Page markers inside a line: "[Page 12]", "[Pg 7]", "{12}".
INLINE_PAGE_MARKER = re.compile(r"\s*(?:\[(?:Page|Pg\.?)\s*\d+\]|\{\d{1,4}\})", re.IGNORECASE)
# Gutenberg's plain-text italics: _word_ or _a few words_.
UNDERSCORE_EMPHASIS = re.compile(r"(?<![\w_])_([^_\n]+?)_(?![\w_])")
# Control characters other than newline (tab is turned into a space first).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028\u2029]")

# A paragraph is reflowed as prose when its lines (all but the last) are at least this long on average, and at
# least this share of the document's wrap width: verse lines are shorter.
PROSE_MIN_LINE_LENGTH = 55
PROSE_WRAP_SHARE = 0.7


def decode_text(data: bytes) -> str:
    """UTF-8, or for older plain-text files (early Project Gutenberg) Windows-1252, or else Latin-1."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


def normalize_text(text: str) -> str:
    """Byte-order mark dropped, line endings as \\n, NFC, tabs and no-break spaces as spaces, control characters
    removed, trailing spaces cut from each line."""
    text = text.replace(BYTE_ORDER_MARK, "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\t", " ").replace("\u00a0", " ")
    text = CONTROL.sub("", text)
    return "\n".join(line.rstrip() for line in text.split("\n"))


def strip_gutenberg_boilerplate(text: str) -> str:
    """The body of a Project Gutenberg text: everything before the start marker (header, licence, small print)
    and from the end marker on (footer and licence) removed. Text without markers is returned unchanged."""
    start = None
    for start in GUTENBERG_START.finditer(text):
        pass
    if start is not None:
        text = text[start.end():]
    end = GUTENBERG_END.search(text)
    if end is not None:
        text = text[:end.start()]
    return text


def remove_page_numbers(text: str) -> str:
    lines = [INLINE_PAGE_MARKER.sub("", line) for line in text.split("\n")]
    return "\n".join(line for line in lines if not PAGE_NUMBER_LINE.match(line))


def remove_underscore_emphasis(text: str) -> str:
    return UNDERSCORE_EMPHASIS.sub(r"\1", text)


def split_paragraphs(text: str) -> List[List[str]]:
    """Paragraphs as lists of lines (leading and trailing spaces cut), split at blank lines."""
    paragraphs, current = [], []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def wrap_width(paragraphs: Sequence[Sequence[str]]) -> int:
    """The width the text was hard-wrapped at: the 95th percentile of its line lengths."""
    lengths = sorted(len(line) for paragraph in paragraphs for line in paragraph)
    if not lengths:
        return 0
    return lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))]


def is_wrapped_prose(lines: Sequence[str], width: int) -> bool:
    if len(lines) < 2:
        return True
    body = lines[:-1]
    mean = sum(len(line) for line in body) / len(body)
    return mean >= PROSE_MIN_LINE_LENGTH and mean >= PROSE_WRAP_SHARE * width


def join_wrapped_lines(lines: Sequence[str]) -> str:
    """One line from hard-wrapped lines; a word broken after a hyphen ("cannon-" / "shot") is rejoined
    without a space."""
    joined = lines[0]
    for line in lines[1:]:
        if re.search(r"[A-Za-z]-$", joined) and not joined.endswith("--") and line[:1].islower():
            joined += line
        else:
            joined += " " + line
    return joined


def collapse_spaces(line: str) -> str:
    return re.sub(r" {2,}", " ", line).strip()


def reflow(text: str, width: Optional[int] = None) -> List[str]:
    """Paragraphs of the text: prose joined into one line each, verse keeping its line breaks."""
    paragraphs = split_paragraphs(text)
    width = wrap_width(paragraphs) if width is None else width
    result = []
    for lines in paragraphs:
        lines = [collapse_spaces(line) for line in lines]
        result.append(join_wrapped_lines(lines) if is_wrapped_prose(lines, width) else "\n".join(lines))
    return result


def clean_document(text: str, gutenberg: bool = False, emphasis: bool = True, page_numbers: bool = True) -> str:
    """The cleaned document: normalised, Gutenberg boilerplate removed (if asked), page numbers and underscore
    emphasis removed (unless told not to), prose reflowed; paragraphs joined by a blank line. Empty if nothing
    is left."""
    text = normalize_text(text)
    if gutenberg:
        text = strip_gutenberg_boilerplate(text)
    if page_numbers:
        text = remove_page_numbers(text)
    if emphasis:
        text = remove_underscore_emphasis(text)
    return join_paragraphs(reflow(text))


def join_paragraphs(paragraphs: Sequence[str]) -> str:
    """Paragraphs (already cleaned) as one document: NFC, collapsed spaces, empty ones dropped."""
    kept = []
    for paragraph in paragraphs:
        lines = [collapse_spaces(line) for line in normalize_text(paragraph).split("\n")]
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            kept.append(paragraph)
    return "\n\n".join(kept)
