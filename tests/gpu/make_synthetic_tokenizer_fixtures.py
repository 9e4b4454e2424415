#!/usr/bin/env python3
"""Builds small tokenizers with Hugging Face `tokenizers` that use the components the real tokenizer files of the
project's data do not (added tokens with lstrip/rstrip/single_word/normalized, Metaspace, byte fallback, Replace,
Prepend, Strip, NFKC/NFD, StripAccents, Digits, Punctuation, Whitespace, Split behaviours, WordLevel,
TemplateProcessing, RobertaProcessing, ...), saves each as tokenizer.json and records what HF makes of the test
texts. The C++ tokenizer must load every file and give the same ids, offsets, tokens and decode.

    python3 tests/gpu/make_synthetic_tokenizer_fixtures.py DATA_DIR OUT_DIR

DATA_DIR holds `tokenizers/` and `onestopenglish/` (training text for the small BPE models; training is
deterministic). Writes OUT_DIR/synthetic/<name>.json (tokenizers) and OUT_DIR/hf_synthetic.json (results).
"""
import glob
import json
import os
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers.implementations import BertWordPieceTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))

EXTRA_TEXTS = [
    "I read a book Yesterday <mask> and yesterday", "a<mask>b  <mask>  c", "sing singing ing ing.", "[NEW]   next",
    "x [NEW]y", "hello world hello-world", "tokenization  with   double  spaces", "Ⅻ ① ⑴ ﬀ ẞ Ǆ", "1234 5678.90",
    "can't won't shouldn't", "the-final--countdown", "<s>start</s> and <s> </s>", "Ünïcödé ñ é e\u0301",
    "\u00a0\u2003\u3000", "byte fallback: 漢字 🤖 ☃", "   ", "", "<unk> <pad>", "snake_case CamelCase", "ab,cd;ef:gh",
]


def training_text(data, limit=40):
    files = sorted(glob.glob(os.path.join(data, "onestopenglish", "*", "*.txt")))[:limit]
    return [open(f, encoding="utf-8").read() for f in files]


def bert_with_added(data):
    tok = BertWordPieceTokenizer(os.path.join(data, "tokenizers", "bert-base-uncased", "vocab.txt"), lowercase=True)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False)])
    tok.add_tokens([AddedToken("Yesterday", normalized=True), AddedToken("ing", single_word=True),
                    AddedToken("[NEW]", rstrip=True, normalized=False), AddedToken("hello world", normalized=True)])
    return tok._tokenizer


def metaspace_byte_fallback(data):
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " "),
                                           normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens,
                                  show_progress=False)
    tok.train_from_iterator(training_text(data), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tok


def metaspace_pretokenizer(data):
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>"], show_progress=False)
    tok.train_from_iterator(training_text(data), trainer=trainer)
    return tok


def roberta_like(data):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_text(data), trainer=trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
                                                      trim_offsets=True, add_prefix_space=True)
    return tok


def wordlevel_whitespace(data):
    texts = training_text(data, 10)
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.Punctuation(behavior="isolated")])
    trainer = trainers.WordLevelTrainer(vocab_size=2000, special_tokens=["[UNK]", "[BOS]", "[EOS]"], show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]", special_tokens=[
        ("[BOS]", tok.token_to_id("[BOS]")), ("[EOS]", tok.token_to_id("[EOS]"))])
    return tok


def split_behaviours(data):
    tok = Tokenizer(models.WordPiece.from_file(os.path.join(data, "tokenizers", "bert-base-uncased", "vocab.txt"),
                                               unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern="-", behavior="merged_with_next"),
        pre_tokenizers.Split(pattern=Regex(r"\s+"), behavior="removed"),
        pre_tokenizers.Split(pattern=Regex(r"[,;:]"), behavior="merged_with_previous"),
        pre_tokenizers.Split(pattern=Regex(r"\d"), behavior="contiguous"),
        pre_tokenizers.Split(pattern=Regex(r"[a-z]+"), behavior="isolated", invert=True),
        pre_tokenizers.CharDelimiterSplit("_"),
    ])
    tok.decoder = decoders.WordPiece(cleanup=False)
    return tok


BUILDERS = {"bert-added": bert_with_added, "metaspace-byte-fallback": metaspace_byte_fallback,
            "metaspace-pretokenizer": metaspace_pretokenizer, "roberta-like": roberta_like,
            "wordlevel-whitespace": wordlevel_whitespace, "split-behaviours": split_behaviours}


def main(data, out):
    os.makedirs(os.path.join(out, "synthetic"), exist_ok=True)
    texts = json.load(open(os.path.join(HERE, "..", "fixtures", "tokenizers", "adversarial.json")))["texts"]
    texts = texts + EXTRA_TEXTS
    results = {}
    for name, build in BUILDERS.items():
        tok = build(data)
        path = os.path.join(out, "synthetic", f"{name}.json")
        tok.save(path)
        tok = Tokenizer.from_file(path)  # what the file says, as attnprox will read it
        rows = []
        for text in texts:
            plain = tok.encode(text, add_special_tokens=False)
            special = tok.encode(text, add_special_tokens=True)
            rows.append({"ids": plain.ids, "offsets": plain.offsets, "tokens": plain.tokens,
                         "ids_special": special.ids, "offsets_special": special.offsets,
                         "decoded": tok.decode(plain.ids, skip_special_tokens=False),
                         "decoded_skip": tok.decode(special.ids, skip_special_tokens=True)})
        results[name] = rows
        print(f"{name}: {os.path.getsize(path)} bytes, vocab {tok.get_vocab_size()}")
    json.dump({"tokenizers": tokenizers.__version__, "texts": texts, "results": results},
              open(os.path.join(out, "hf_synthetic.json"), "w"), ensure_ascii=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
