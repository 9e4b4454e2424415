#!/usr/bin/env python3
"""Builds Hugging Face style tokenizer.json (+ tokenizer_config.json) files for the two tokenizers that the
shared data holds only as raw vocabularies, so that the JavaScript reference (@lenml/tokenizers) can load them.

    python3 tests/tokenizer/js/make_tokenizer_json.py {gpt2|bert} DATA_DIR OUT_DIR

DATA_DIR is the tokenizer's own folder (gpt2/ with encoder.json + vocab.bpe, bert-base-uncased/ with
vocab.txt). Writes OUT_DIR/tokenizer.json and OUT_DIR/tokenizer_config.json; never anything else.

The files mirror what tests/gpu/make_tokenizer_fixtures.py builds with Hugging Face `tokenizers`:
  gpt2: BPE.from_file(encoder.json, vocab.bpe), pre_tokenizer ByteLevel(add_prefix_space=False), post_processor
        ByteLevel(trim_offsets=False), decoder ByteLevel; no added tokens.
  bert: BertWordPieceTokenizer(vocab.txt, lowercase=True).
Standard library only.
"""
import json
import os
import sys

BERT_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _added(content, ident):
    return {"id": ident, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def build_bert(data_dir):
    vocab = {}
    with open(os.path.join(data_dir, "vocab.txt"), encoding="utf-8") as handle:
        # As tokenizers' WordPiece::read_file: one token a line, trailing whitespace trimmed, id = line index.
        for index, line in enumerate(handle.read().splitlines()):
            vocab[line.rstrip()] = index
    added = sorted((_added(tok, vocab[tok]) for tok in BERT_SPECIAL if tok in vocab), key=lambda t: t["id"])
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", vocab["[SEP]"]],
                           "cls": ["[CLS]", vocab["[CLS]"]]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }
    return tokenizer, {"do_lower_case": True}


def build_gpt2(data_dir):
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


BUILDERS = {"bert": build_bert, "gpt2": build_gpt2}


def main(kind, data_dir, out_dir):
    """Writes out_dir/tokenizer.json and out_dir/tokenizer_config.json; returns their paths."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(BUILDERS)}")
    tokenizer, config = BUILDERS[kind](data_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = (os.path.join(out_dir, "tokenizer.json"), os.path.join(out_dir, "tokenizer_config.json"))
    for path, value in zip(paths, (tokenizer, config)):
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(value, handle, ensure_ascii=False)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    for written in main(*sys.argv[1:]):
        print(written)
