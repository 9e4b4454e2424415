"""Hugging Face tokenizer.json files for tokenizers distributed as raw vocabularies: GPT-2's encoder.json +
vocab.bpe, and BERT's vocab.txt. The files set the tokenizers up the way Hugging Face `tokenizers` does
(`BPE.from_file` with GPT-2's byte-level pre-tokenizer; `BertWordPieceTokenizer(vocab.txt)`), so that a model
directory can carry its tokenizer into an attnprox model file. Standard library only.
"""
import json
import os
from typing import Optional, Tuple

BERT_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# tokenizer_config.json's names of BERT's special tokens, and their defaults (transformers' BertTokenizer).
_BERT_SPECIAL_NAMES = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                       "mask_token": "[MASK]"}


def _added(content, ident):
    return {"id": ident, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def _special_name(value, default: str) -> str:
    """A special token of tokenizer_config.json: a string, or an AddedToken dict with "content"."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else default


def bert_tokenizer_json(data_dir: str) -> Tuple[dict, dict]:
    """(tokenizer.json, tokenizer_config.json) for a folder holding BERT's vocab.txt, set up as transformers'
    BertTokenizerFast sets it up from vocab.txt and the folder's tokenizer_config.json when it has one
    (do_lower_case, default true; strip_accents, default: as lowercasing; tokenize_chinese_chars, default true;
    the special tokens unk/sep/pad/cls/mask, default [UNK] [SEP] [PAD] [CLS] [MASK])."""
    config = {}
    config_path = os.path.join(data_dir, "tokenizer_config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        if not isinstance(config, dict):
            raise ValueError(f"{config_path}: expected a JSON object")
    lowercase = bool(config.get("do_lower_case", True))
    strip_accents = config.get("strip_accents")
    chinese = bool(config.get("tokenize_chinese_chars", True))
    special = {name: _special_name(config.get(name), default) for name, default in _BERT_SPECIAL_NAMES.items()}
    vocab = {}
    with open(os.path.join(data_dir, "vocab.txt"), encoding="utf-8") as handle:
        # As tokenizers' WordPiece::read_file: one token a line, trailing whitespace trimmed, id = line index.
        for index, line in enumerate(handle.read().splitlines()):
            vocab[line.rstrip()] = index
    for name in ("unk_token", "sep_token", "cls_token"):
        if special[name] not in vocab:
            raise ValueError(f"{data_dir}/vocab.txt has no {special[name]} token ({name})")
    added = sorted((_added(tok, vocab[tok]) for tok in dict.fromkeys(special.values()) if tok in vocab),
                   key=lambda t: t["id"])
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": chinese,
                       "strip_accents": strip_accents, "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": [special["sep_token"], vocab[special["sep_token"]]],
                           "cls": [special["cls_token"], vocab[special["cls_token"]]]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": special["unk_token"], "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }
    return tokenizer, dict(config, do_lower_case=lowercase)


def tokenizer_json_of(model_dir: str) -> Optional[Tuple[str, str]]:
    """(the tokenizer.json text, where it came from) for a model directory: its tokenizer.json, or one built from
    BERT's vocab.txt (and tokenizer_config.json) when it has only that; None when it has neither."""
    path = os.path.join(model_dir, "tokenizer.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return handle.read(), path
    if os.path.isfile(os.path.join(model_dir, "vocab.txt")):
        tokenizer, _ = bert_tokenizer_json(model_dir)
        return json.dumps(tokenizer, ensure_ascii=False), os.path.join(model_dir, "vocab.txt")
    return None


def gpt2_tokenizer_json(data_dir: str) -> Tuple[dict, dict]:
    """(tokenizer.json, tokenizer_config.json) for a folder holding GPT-2's encoder.json and vocab.bpe."""
    with open(os.path.join(data_dir, "encoder.json"), encoding="utf-8") as handle:
        vocab = json.load(handle)
    merges = []
    with open(os.path.join(data_dir, "vocab.bpe"), encoding="utf-8") as handle:
        for line in handle.read().splitlines():
            if line.startswith("#version") or not line:
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise ValueError(f"bad merge line {line!r}")
            merges.append(line)
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    return tokenizer, {}


BUILDERS = {"bert": bert_tokenizer_json, "gpt2": gpt2_tokenizer_json}


def write_tokenizer_json(kind: str, data_dir: str, out_dir: str) -> Tuple[str, str]:
    """Writes out_dir/tokenizer.json and out_dir/tokenizer_config.json for `kind` ("gpt2" or "bert"); returns their
    paths."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(BUILDERS)}")
    tokenizer, config = BUILDERS[kind](data_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = (os.path.join(out_dir, "tokenizer.json"), os.path.join(out_dir, "tokenizer_config.json"))
    for path, value in zip(paths, (tokenizer, config)):
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(value, handle, ensure_ascii=False)
    return paths


# The raw-vocabulary folders of the project's shared data, by family.
_RAW_FOLDERS = {"gpt2": "gpt2", "bert": "bert-base-uncased"}


def install_family_tokenizer(family: str, tokenizers_dir: str, out_dir: str) -> None:
    """Puts a family's tokenizer into a model directory: from a folder of raw vocabularies for "gpt2" and "bert"
    (written as tokenizer.json), else tokenizers_dir/<family>/tokenizer.json (and its tokenizer_config.json when
    there is one), copied."""
    import shutil

    if family in _RAW_FOLDERS:
        write_tokenizer_json(family, os.path.join(tokenizers_dir, _RAW_FOLDERS[family]), out_dir)
        return
    source = os.path.join(tokenizers_dir, family)
    shutil.copy(os.path.join(source, "tokenizer.json"), out_dir)
    config = os.path.join(source, "tokenizer_config.json")
    if os.path.exists(config):
        shutil.copy(config, out_dir)
