"""Quality control: which texts a study scores and compares, and why the others are left out.

A text is left out when it could not be read (missing, unreadable, not UTF-8, empty), when it does not tokenize,
when it has fewer than two tokens (AP compares a token with the others), or when scoring it failed. In a matched
corpus the comparison is between complete match sets (one text in every group), so a set that loses a text, or
never had one in some group, is left out whole, and the report names the set and every reason.
"""
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

from ..errors import Error
from .corpus import Corpus, Dropped, Item
from .model_file import ModelFile


def tokenized(corpus: Corpus, model: ModelFile) -> Tuple[List[Tuple[Item, int]], List[Dropped]]:
    """(item, tokens) of every text that tokenizes into at least two tokens; the others, dropped with the reason."""
    kept, dropped = [], []
    for item in corpus.items:
        try:
            count = model.count_tokens(item.text)
        except Error as e:
            dropped.append(Dropped(item.id, item.group, item.match, f"does not tokenize: {e}"))
            continue
        if count < 2:
            dropped.append(Dropped(item.id, item.group, item.match,
                                   f"{count} token{'s' if count != 1 else ''}: AP needs at least 2"))
            continue
        kept.append((item, count))
    return kept, dropped


def complete_sets(corpus: Corpus, kept: Sequence[Item], dropped: Sequence[Dropped]) -> Tuple[List[Item],
                                                                                                  List[Dropped]]:
    """In a matched corpus, the items of the match sets that have one kept text in every group; every other set is
    dropped as a whole, its reasons joined. An unmatched corpus keeps every item and lists each dropped text."""
    if not corpus.matched:
        return list(kept), list(dropped)
    reasons: Dict[str, List[str]] = OrderedDict()
    present: Dict[str, Dict[str, Item]] = {}
    covered: Dict[str, set] = {}
    unkeyed = []
    for d in dropped:
        if d.match is None:
            unkeyed.append(d)
        else:
            reasons.setdefault(d.match, []).append(f"{d.id}: {d.reason}")
            covered.setdefault(d.match, set()).add(d.group)
    for item in kept:
        if item.match is None:
            unkeyed.append(Dropped(item.id, item.group, None, "no match key in a matched corpus"))
        else:
            present.setdefault(item.match, {})[item.group] = item
    keys = sorted(set(present) | set(reasons))
    kept_items, dropped_sets = [], []
    for key in keys:
        cells = present.get(key, {})
        why = list(reasons.get(key, []))
        missing = [g for g in corpus.groups if g not in cells and g not in covered.get(key, ())]
        if missing:
            why.append(f"no text in group{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        if why:
            dropped_sets.append(Dropped(key, None, key, "; ".join(why)))
        else:
            kept_items += [cells[g] for g in corpus.groups]
    return kept_items, unkeyed + dropped_sets


def after_scoring(corpus: Corpus, items: Sequence[Item], errors: Dict[str, str]) -> Tuple[List[Item], List[Dropped]]:
    """Drops the texts whose scoring failed (errors: text id → message) and, in a matched corpus, their sets."""
    if not errors:
        return list(items), []
    failed = [i for i in items if i.id in errors]
    dropped = [Dropped(i.id, i.group, i.match, f"scoring failed: {errors[i.id]}") for i in failed]
    survivors = [i for i in items if i.id not in errors]
    return complete_sets(corpus, survivors, dropped)
