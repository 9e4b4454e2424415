"""A study's corpus: texts, each with a group (the condition compared, e.g. a reading level) and an optional match
key (the item the texts share, e.g. the article a triplet was rewritten from), read from folders, a glob, a
CSV/JSONL table, or the OneStopEnglish preset.

Reading is the first quality check: a file that is missing, unreadable, not UTF-8 or empty (after its byte-order
mark and surrounding whitespace) is not a text. Such an item is kept in `Corpus.dropped` with the reason; the
match sets it belonged to are dropped later, together with the texts that fail to tokenize (`attnprox.studies`).
"""
import csv
import glob as globbing
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import InvalidArgumentError


@dataclass(frozen=True)
class Item:
    """One text of the corpus. `id` is unique in the corpus; `source` says where the text came from (a path, or
    "row K of FILE" for a text given inline)."""

    id: str
    group: str
    match: Optional[str]
    text: str
    source: str


@dataclass(frozen=True)
class Dropped:
    """A text, or a whole match set, left out of the study and why."""

    id: str          # the text's id, or the match key when a whole set is dropped
    group: Optional[str]
    match: Optional[str]
    reason: str


@dataclass
class Corpus:
    """Texts in groups (in `groups` order), and what reading them dropped."""

    items: List[Item]
    groups: List[str]
    dropped: List[Dropped] = field(default_factory=list)
    name: str = "corpus"

    @property
    def matched(self) -> bool:
        """Whether the texts carry match keys (paired comparisons between groups)."""
        return any(item.match is not None for item in self.items) or any(d.match is not None for d in self.dropped)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        counts = ", ".join(f"{g} {sum(1 for i in self.items if i.group == g)}" for g in self.groups)
        return (f"<attnprox.studies.Corpus {self.name!r}: {len(self.items)} texts ({counts}), "
                f"{len(self.dropped)} dropped>")


def read_text(path: str, shown: Optional[str] = None) -> Tuple[Optional[str], Optional[str]]:
    """(text, None) or (None, why it is not a usable text, naming the file as `shown`, default its path). UTF-8, a
    byte-order mark removed."""
    where = shown or path
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None, f"missing: {where}"
    except OSError as e:
        return None, f"unreadable: {where}: {e.strerror or e}"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, f"not UTF-8: {where} (byte {e.start}: {data[e.start:e.start + 1]!r})"
    return clean_text(text, where)


def clean_text(text: str, where: str) -> Tuple[Optional[str], Optional[str]]:
    """A text given inline or read from a file: a leading U+FEFF removed; empty or whitespace-only is no text."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        return None, f"empty: {where}"
    return text, None


def _build(entries: Iterable[Tuple[str, str, Optional[str], Optional[str], Optional[str], str]], name: str,
           groups: Optional[Sequence[str]] = None) -> Corpus:
    """entries: (id, group, match, text or None, reason or None, source). Checks ids and (group, match) unique."""
    items, dropped, order = [], [], []
    seen_ids: Dict[str, str] = {}
    seen_cells: Dict[Tuple[str, str], str] = {}
    for ident, group, match, text, reason, source in entries:
        if not ident:
            raise InvalidArgumentError(f"{source}: a text needs a non-empty id")
        if not group:
            raise InvalidArgumentError(f"{source}: text {ident!r} has no group")
        if ident in seen_ids:
            raise InvalidArgumentError(f"text id {ident!r} appears twice ({seen_ids[ident]} and {source}); ids must "
                                       f"be unique")
        seen_ids[ident] = source
        if match is not None:
            if (group, match) in seen_cells:
                raise InvalidArgumentError(f"group {group!r} has two texts for match {match!r} "
                                           f"({seen_cells[group, match]} and {source})")
            seen_cells[group, match] = source
        if group not in order:
            order.append(group)
        if text is None:
            dropped.append(Dropped(ident, group, match, reason))
        else:
            items.append(Item(ident, group, match, text, source))
    if groups is not None:
        unknown = [g for g in groups if g not in order]
        if unknown:
            raise InvalidArgumentError(f"group(s) {', '.join(map(repr, unknown))} not in the corpus, which has "
                                       f"{', '.join(map(repr, order)) or 'no texts'}")
        items = [i for i in items if i.group in groups]
        dropped = [d for d in dropped if d.group in groups]
        order = list(groups)
    if not items and not dropped:
        raise InvalidArgumentError(f"{name}: no texts found")
    return Corpus(items, order, dropped, name)


# ---------------------------------------------------------------------------------------------------------------
# The forms a corpus comes in.

ONESTOPENGLISH_LEVELS = (
    ("Elementary", "ele", os.path.join("Ele-Txt", "{}-ele.txt")),
    ("Intermediate", "int", os.path.join("Int-Txt", "Int-Txt", "{}-int.txt")),
    ("Advanced", "adv", os.path.join("Adv-Txt", "{}-adv.txt")),
)


def onestopenglish(root: str) -> Corpus:
    """The OneStopEnglish corpus as matched triplets: for every article NAME, `Ele-Txt/NAME-ele.txt`,
    `Int-Txt/Int-Txt/NAME-int.txt` and `Adv-Txt/NAME-adv.txt` (groups Elementary, Intermediate, Advanced; match
    key NAME). The top-level `Int-Txt/*.txt` are a damaged copy (non-ASCII removed, a line "Intermediate" added)
    and are never read. An article missing at some level is reported as missing there."""
    if not os.path.isdir(root):
        raise InvalidArgumentError(f"onestopenglish: {root} is not a folder (expected the corpus folder holding "
                                   f"Ele-Txt, Int-Txt/Int-Txt and Adv-Txt)")
    names = set()
    for _, suffix, pattern in ONESTOPENGLISH_LEVELS:
        folder = os.path.join(root, os.path.dirname(pattern))
        if not os.path.isdir(folder):
            raise InvalidArgumentError(f"onestopenglish: {folder} is missing (expected Ele-Txt, Int-Txt/Int-Txt and "
                                       f"Adv-Txt under {root})")
        end = f"-{suffix}.txt"
        names.update(f[:-len(end)] for f in os.listdir(folder) if f.endswith(end))
    if not names:
        raise InvalidArgumentError(f"onestopenglish: no NAME-ele.txt, NAME-int.txt or NAME-adv.txt files under {root}")

    def entries():
        for name in sorted(names):
            for group, suffix, pattern in ONESTOPENGLISH_LEVELS:
                path = os.path.join(root, pattern.format(name))
                text, reason = read_text(path, pattern.format(name))
                yield f"{name}-{suffix}", group, name, text, reason, path

    return _build(entries(), "onestopenglish")


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def folders(folders_by_group: Dict[str, str], match: Optional[str] = "stem", extension: str = ".txt",
            groups: Optional[Sequence[str]] = None) -> Corpus:
    """A folder of text files per group ({group: folder}; groups in the order given unless `groups` orders or
    selects them). match: "stem" (texts with the same file name in different groups are matched), None (unmatched
    groups), or a regular expression whose first group (or group named `match`) is taken from the file name without
    its extension."""
    def entries():
        for group, folder in folders_by_group.items():
            if not os.path.isdir(folder):
                raise InvalidArgumentError(f"group {group!r}: {folder} is not a folder")
            files = sorted(f for f in os.listdir(folder) if f.endswith(extension))
            if not files:
                raise InvalidArgumentError(f"group {group!r}: no *{extension} files in {folder}")
            for name in files:
                path = os.path.join(folder, name)
                key = _match_key(_stem(path), match, path)
                text, reason = read_text(path)
                yield f"{group}/{_stem(path)}", group, key, text, reason, path

    return _build(entries(), "folders", groups)


def _match_key(stem: str, match: Optional[str], where: str) -> Optional[str]:
    if match is None:
        return None
    if match == "stem":
        return stem
    found = re.search(match, stem)
    if not found:
        raise InvalidArgumentError(f"{where}: the file name {stem!r} does not match the match pattern {match!r}")
    named = found.groupdict().get("match")
    return named if named is not None else (found.group(1) if found.groups() else found.group(0))


DEFAULT_GLOB_PATTERN = r"(?P<group>[^/]+)/(?P<match>[^/]+)\.[^./]+$"


def glob(pattern: str, regex: str = DEFAULT_GLOB_PATTERN, groups: Optional[Sequence[str]] = None) -> Corpus:
    """The files a glob pattern finds (`**` included), their group and match key taken from the path by a regular
    expression with the named groups `group` and `match` (searched in the path with '/' separators). By default
    the group is the parent folder's name and the match key the file name without extension; a regex without
    `match` gives unmatched groups. `groups` orders (and selects) the groups; default: alphabetical."""
    compiled = re.compile(regex)
    if "group" not in compiled.groupindex:
        raise InvalidArgumentError(f"the path pattern {regex!r} has no named group (?P<group>...)")
    files = sorted(p for p in globbing.glob(pattern, recursive=True) if os.path.isfile(p))
    if not files:
        raise InvalidArgumentError(f"the glob {pattern!r} finds no files")

    def entries():
        for path in files:
            found = compiled.search(path.replace(os.sep, "/"))
            if not found or not found.group("group"):
                raise InvalidArgumentError(f"{path}: the path pattern {regex!r} finds no group in it")
            key = found.groupdict().get("match")
            text, reason = read_text(path)
            group = found.group("group")
            yield f"{group}/{_stem(path)}" if key is None else f"{group}/{key}", group, key, text, reason, path

    corpus = _build(entries(), f"glob {pattern}", groups)
    if groups is None:
        corpus.groups = sorted(corpus.groups)
    return corpus


def table(path: str, groups: Optional[Sequence[str]] = None) -> Corpus:
    """A CSV file (with a header row) or a JSONL file (one object a line) of texts: `group` (required), `id`
    (default: the file name's stem, or row K), `match` (optional; empty means none), and either `path` (a text
    file; relative to the table's folder) or `text` (the text itself). Groups are ordered as they first appear
    unless `groups` orders them."""
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"corpus table {path} does not exist")
    base = os.path.dirname(os.path.abspath(path))
    records = list(_records(path))
    if not records:
        raise InvalidArgumentError(f"corpus table {path} has no rows")

    def entries():
        for number, record in records:
            where = f"row {number} of {path}"
            if not isinstance(record, dict):
                raise InvalidArgumentError(f"{where}: expected an object with group, path or text")
            unknown = set(record) - {"id", "group", "match", "path", "text"}
            if unknown:
                raise InvalidArgumentError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (expected id, "
                                           f"group, match, path, text)")
            has_path, has_text = record.get("path") not in (None, ""), record.get("text") is not None
            if has_path == has_text:
                raise InvalidArgumentError(f"{where}: give exactly one of path and text")
            group = _field(record, "group", where)
            match = _field(record, "match", where) or None
            if has_path:
                file = _field(record, "path", where)
                file = file if os.path.isabs(file) else os.path.join(base, file)
                text, reason = read_text(file)
                ident = _field(record, "id", where) or _stem(file)
                yield ident, group, match, text, reason, file
            else:
                if not isinstance(record["text"], str):
                    raise InvalidArgumentError(f"{where}: text must be a string")
                text, reason = clean_text(record["text"], where)
                yield _field(record, "id", where) or f"row {number}", group, match, text, reason, where

    return _build(entries(), os.path.basename(path), groups)


def _field(record: dict, name: str, where: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidArgumentError(f"{where}: {name} must be a string, not {type(value).__name__}")
    return str(value).strip()


def _records(path: str):
    """(row number, dict) of a CSV or JSONL file."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        if path.lower().endswith((".jsonl", ".ndjson")):
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as e:
                        raise InvalidArgumentError(f"line {number} of {path} is not JSON: {e.msg}") from None
        elif path.lower().endswith(".csv"):
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "group" not in reader.fieldnames:
                raise InvalidArgumentError(f"{path}: the CSV header must name a group column (found "
                                           f"{', '.join(reader.fieldnames or []) or 'no header'})")
            for number, row in enumerate(reader, 2):
                if None in row:
                    raise InvalidArgumentError(f"line {number} of {path} has more fields than the header")
                yield number, {k: v for k, v in row.items() if v != "" or k in ("group",)}
        else:
            raise InvalidArgumentError(f"corpus table {path}: expected a .csv or .jsonl file")


def from_sources(sources: Sequence[str], pattern: Optional[str] = None, match: Optional[str] = "stem",
                 groups: Optional[Sequence[str]] = None) -> Corpus:
    """The corpus the command line names: `onestopenglish DIR`; one `.csv`/`.jsonl` table; one glob pattern
    (with `*`, `?` or `[`); or folders, one per group, each `NAME=DIR` or `DIR` (group named after the folder)."""
    sources = list(sources)
    if not sources:
        raise InvalidArgumentError("no corpus given")
    if sources[0] == "onestopenglish":
        if len(sources) != 2:
            raise InvalidArgumentError("onestopenglish takes one folder: onestopenglish DIR")
        if groups is not None:
            raise InvalidArgumentError("the onestopenglish preset has its own groups (Elementary, Intermediate, "
                                       "Advanced)")
        return onestopenglish(sources[1])
    if len(sources) == 1 and sources[0].lower().endswith((".csv", ".jsonl", ".ndjson")):
        return table(sources[0], groups)
    if len(sources) == 1 and any(c in sources[0] for c in "*?["):
        return glob(sources[0], pattern or DEFAULT_GLOB_PATTERN, groups)
    if pattern is not None:
        raise InvalidArgumentError("a path pattern applies to a glob corpus only")
    named = {}
    for source in sources:
        name, sep, folder = source.partition("=")
        if not sep:
            name, folder = os.path.basename(os.path.normpath(source)), source
        if name in named:
            raise InvalidArgumentError(f"group {name!r} given twice")
        named[name] = folder
    return folders(named, match=match, groups=groups)
