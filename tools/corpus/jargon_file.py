"""Split the plain-text Jargon File (jargon.txt, version 4.4.7) into documents.

The text is a rendering of the HTML edition: headings start at column 0 ("Chapter 1. ...", "Glossary",
"Appendix A. ..."), body text is indented three spaces. The glossary gives, per letter (a line "  A"), a list
of the letter's headwords and then the entries, each opening with a line `:headword: /pronunciation/, n.`.
Documents: each chapter and appendix with its sections, and the glossary entries of each letter; the table
of contents, the headword lists and the bibliography are left out.
"""
from __future__ import annotations

import re
from typing import List, Tuple

ENTRY_HEAD = re.compile(r"^   :(?P<word>[^:]+(?::[^:\s][^:]*)*):\s*(?:/[^/]*/)?\s*,?\s*(?P<rest>.*)$")
LETTER_LINE = re.compile(r"^  \S{1,2}$")
CROSS_REFERENCE = re.compile(r"\{([^{}]*)\}")
BOX_DRAWING = re.compile("[\u2500-\u257f]")


def sections(text: str) -> List[Tuple[str, List[str]]]:
    """(heading, body lines) for each column-0 heading, in order."""
    result: List[Tuple[str, List[str]]] = []
    for line in text.split("\n"):
        if BOX_DRAWING.search(line):
            continue  # a table (the revision history): left out
        if line and not line[0].isspace():
            result.append((" ".join(line.split()), []))
        elif result:
            result[-1][1].append(line)
    return result


def without_contents_list(body: List[str]) -> List[str]:
    """A chapter's body without its leading "Table of Contents" list of section titles (short lines)."""
    first = next((i for i, line in enumerate(body) if line.strip()), None)
    if first is None or body[first].strip() != "Table of Contents":
        return body
    for i in range(first + 1, len(body)):
        if len(body[i].strip()) > 60:
            return body[i:]
    return []


def _entry_heading(match: "re.Match[str]") -> str:
    rest = match.group("rest").strip().rstrip(",")
    return f"   {match.group('word')}, {rest}" if rest else f"   {match.group('word')}"


def glossary_by_letter(lines: List[str]) -> List[str]:
    """The glossary's entries as one text per letter, without the headword lists."""
    letters: List[List[str]] = []
    in_entries = False
    for line in lines:
        if LETTER_LINE.match(line):
            letters.append([])
            in_entries = False
            continue
        match = ENTRY_HEAD.match(line)
        if match:
            in_entries = True
            if not letters:
                letters.append([])
            letters[-1].extend(["", _entry_heading(match)])
        elif in_entries:
            letters[-1].append(line)
    return ["\n".join(letter) for letter in letters if any(l.strip() for l in letter)]


def jargon_documents(text: str) -> List[str]:
    """Chapters, glossary letters and appendices, cross-reference braces removed."""
    documents: List[str] = []
    current: List[str] = []
    mode = "front"  # front matter before Chapter 1: left out
    for heading, body in sections(CROSS_REFERENCE.sub(r"\1", text)):
        if heading.startswith(("Chapter ", "Appendix ")):
            if current:
                documents.append("\n".join(current))
            current, mode = [heading, ""] + without_contents_list(body), "prose"
        elif heading == "Glossary":
            if current:
                documents.append("\n".join(current))
            current, mode = [], "glossary"
            documents.extend(glossary_by_letter(body))
        elif heading == "Bibliography":
            if current:
                documents.append("\n".join(current))
            current, mode = [], "bibliography"
        elif mode == "prose":
            current.extend(["", heading, ""] + body)  # a section inside a chapter or appendix
    if current:
        documents.append("\n".join(current))
    return documents
