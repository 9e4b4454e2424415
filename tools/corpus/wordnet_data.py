"""Read WordNet's data files (`data.noun`, `data.verb`, `data.adj`, `data.adv`; format wndb(5WN)).

Each synset is one line: `offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt [pointers]
[frames] | gloss`, with w_cnt in hexadecimal. Lines starting with two spaces are the licence header.
Synsets are grouped by lexicographer file (noun.animal, verb.motion, ...: lex_filenum), in file order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple


@dataclass(frozen=True)
class Synset:
    lex_file: int
    words: Tuple[str, ...]
    gloss: str
    line: str  # the data line as read


def parse_synset_line(line: str) -> Synset:
    if " | " not in line:
        raise ValueError(f"WordNet data line: expected 'fields | gloss', found {line[:80]!r}")
    fields, gloss = line.split(" | ", 1)
    parts = fields.split()
    if len(parts) < 6:
        raise ValueError(f"WordNet data line: expected at least 6 fields before the gloss, found {fields[:80]!r}")
    word_count = int(parts[3], 16)
    words = tuple(parts[4 + 2 * i] for i in range(word_count))
    return Synset(int(parts[1]), words, gloss.strip(), line)


def synsets_by_lex_file(data_files: List[str]) -> Dict[int, List[Synset]]:
    """Synsets of the given data files' texts, by lexicographer file number, each list in file order."""
    groups: Dict[int, List[Synset]] = {}
    for text in data_files:
        for line in text.splitlines():
            if not line.strip() or line.startswith("  "):
                continue
            synset = parse_synset_line(line)
            groups.setdefault(synset.lex_file, []).append(synset)
    return groups
