"""Turn dictionary entries into plain paragraphs: GCIDE (Webster's 1913 as edited by the GCIDE project) and
WordNet glosses.

GCIDE entries mark pronunciation between backslashes (`Spirit \\Spir"it\\, v. t.`), cross-references in braces
with accent and syllable marks (`{Spir"it*ed*ly}`), accented letters as bracket codes (`caf['e]`, `[ae]`), and
etymologies, usage labels and source tags in square brackets (`[L. spiritus]`, `[Obs.]`, `[1913 Webster]`).
Quotations end with their author (`--Shak.`). The cleaned entry keeps the headword with its part of speech, the
numbered senses, notes and quotations as prose; it drops pronunciations, brackets, authors, synonym lists, and
the senses GCIDE took from WordNet (WordNet's own glosses are a source of their own).
"""
from __future__ import annotations

import re
import unicodedata
from typing import List, Sequence

from text_cleaning import collapse_spaces, normalize_text

# GCIDE's bracket codes for letters: [`a] grave, ['e] acute, ["o] diaeresis, [=a] macron, [~n] tilde,
# [i^] breve, [c,] cedilla, plus ligatures and signs.
COMBINING = {"`": "\u0300", "'": "\u0301", '"': "\u0308", "=": "\u0304", "~": "\u0303", "^": "\u0306",
             ",": "\u0327"}
NAMED_CODES = {"ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "deg": "°", "sect": "§", "eth": "ð", "ETH": "Ð",
               "thorn": "þ", "THORN": "Þ", "frac12": "½", "frac14": "¼", "frac34": "¾", "frac13": "⅓",
               "frac23": "⅔", "pound": "£", "cent": "¢", "para": "¶", "dagger": "†", "ddagger": "‡",
               "min": "′", "sec": "″", "imac": "ī", "aum": "ä", "ntil": "ñ", "cced": "ç", "edh": "ð"}
ACCENT_BEFORE = re.compile(r"\[([`'\"=~])([A-Za-z])\]")
ACCENT_AFTER = re.compile(r"\[([A-Za-z])([\^,])\]")
NAMED_CODE = re.compile(r"\[(" + "|".join(sorted(NAMED_CODES, key=len, reverse=True)) + r")\]")

# A pronunciation, perhaps followed by a respelling in parentheses: \Zy*thep"sa*ry\ (z[i^]*th[e^]p"s[.a]*r[u^])
PRONUNCIATION = re.compile(r"\s*\\[^\\\n]*\\(?:\s*\([^()]*[\[*\"`][^()]*\))?")
BRACKETED = re.compile(r"\s*\[[^\[\]]*\]")
BRACED = re.compile(r"\{([^{}]*)\}")
# An author at the end of a quotation or sense: " --Shak.", " --Arbuthnot & Pope."
AUTHOR = re.compile(r"\s*--\s?[A-Z][^-]{0,60}$")
WORDNET_TAG = "[WordNet"


def decode_letter_codes(text: str) -> str:
    text = ACCENT_BEFORE.sub(lambda m: m.group(2) + COMBINING[m.group(1)], text)
    text = ACCENT_AFTER.sub(lambda m: m.group(1) + COMBINING[m.group(2)], text)
    return NAMED_CODE.sub(lambda m: NAMED_CODES[m.group(1)], text)


def remove_brackets(text: str) -> str:
    """Every [...] group removed, innermost first, so nested etymologies go whole."""
    previous = None
    while previous != text:
        previous, text = text, BRACKETED.sub("", text)
    return text


def strip_cross_reference_marks(text: str) -> str:
    """{Spir"it*ed*ly} -> Spiritedly: braces dropped with the accent (" `) and syllable (*) marks inside."""
    return BRACED.sub(lambda m: re.sub(r"[\"`*]", "", m.group(1)), text)


def _blocks(entry: str) -> List[List[str]]:
    blocks, current = [], []
    for line in entry.split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _headword_block(lines: Sequence[str]) -> str:
    """The first block: headword, part of speech and perhaps a first sense, without pronunciation."""
    return PRONUNCIATION.sub("", "\n".join(lines))


def gcide_entry_paragraphs(entry: str) -> List[str]:
    """The paragraphs of one GCIDE entry; empty when all its senses came from WordNet."""
    paragraphs, dropped = [], False
    blocks = _blocks(normalize_text(entry))
    for number, lines in enumerate(blocks):
        block = "\n".join(lines)
        if WORDNET_TAG in block or block.lstrip().startswith("Syn:"):
            dropped = True
            continue
        text = _headword_block(lines) if number == 0 else block
        text = unicodedata.normalize("NFC", decode_letter_codes(text))
        text = remove_brackets(text)
        text = strip_cross_reference_marks(text)
        text = collapse_spaces(" ".join(text.split()))
        text = AUTHOR.sub("", text).strip()
        text = re.sub(r"\s+([,.;:])", r"\1", text)
        if text:
            paragraphs.append(text)
    # A headword alone, its senses left out as WordNet's or as synonym lists, says nothing.
    headword_only = dropped and len(paragraphs) == 1 and len(paragraphs[0].split()) <= 4
    return [] if headword_only else paragraphs


def wordnet_synset_paragraph(words: Sequence[str], gloss: str) -> str:
    """One synset as a sentence or two: 'complaisant, obliging: showing a cheerful willingness to do favors
    for others. The obliging waiter was in no hurry for us to leave.' Definitions are the gloss's unquoted parts,
    examples its quoted parts, each example made a sentence."""
    names = ", ".join(re.sub(r"\((?:a|p|ip)\)$", "", w).replace("_", " ") for w in words)
    examples = [_as_sentence(e) for e in re.findall(r'"([^"]*)"', gloss)]
    definitions = [p.strip() for p in re.sub(r'"[^"]*"', "", gloss).split(";") if p.strip()]
    text = names + ": " + "; ".join(definitions) if definitions else names
    text = _as_sentence(text) if definitions else text + "."
    return " ".join([text] + [e for e in examples if e])


def _as_sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    if text[-1] not in ".!?":
        text += "."
    return text[0].upper() + text[1:] if text[0].islower() and not text.startswith(("e.g.", "i.e.")) else text
