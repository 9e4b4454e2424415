#!/usr/bin/env python3
"""Records what Hugging Face `tokenizers` (the arbiter of exactness) makes of the project's test texts, so that the
C++ tokenizer can be checked against it on machines without `tokenizers`: the one generator of every tokenizer
fixture in tests/fixtures/tokenizers/.

    python3 tests/gpu/make_tokenizer_fixtures.py DATA_DIR OUT_DIR [--no-speed] [--only=NAME,...] [--sets=SET,...]

DATA_DIR holds `tokenizers/` and `onestopenglish/` as in the project's shared data folder. SET is `real` or
`synthetic` (default both). Writes

  real: the tokenizers of REAL, as described there
    OUT_DIR/hf_adversarial.json   every text of tests/fixtures/tokenizers/adversarial.json, every tokenizer: one
                                  row of FIXTURE_SETS["real"]'s fields per text
    OUT_DIR/hf_corpus.json        every OneStopEnglish text, every tokenizer: CORPUS_FIELDS (token counts and
                                  SHA-256 of the ids and offsets: the texts are too many to store whole)
    OUT_DIR/{gpt2,bert}.tokenizer.json   the tokenizers HF builds from GPT-2's vocab/merges and BERT's vocab.txt
    OUT_DIR/hf_speed.json         tokens per second, one thread, over the whole corpus (not with --no-speed)
  synthetic: small tokenizers built here (SYNTHETIC) that use the components the real files do not (added tokens
  with lstrip/rstrip/single_word/normalized, Metaspace, byte fallback, Replace, Prepend, Strip, NFKC/NFD,
  StripAccents, Digits, Punctuation, Whitespace, every Split behaviour, WordLevel, TemplateProcessing,
  RobertaProcessing); their training on OneStopEnglish is deterministic
    OUT_DIR/synthetic/NAME.json.gz   each tokenizer as HF saves it
    OUT_DIR/hf_synthetic.json.gz  the adversarial texts and EXTRA_TEXTS, every synthetic tokenizer: one row of
                                  FIXTURE_SETS["synthetic"]'s fields per text

Every result file records the `tokenizers` version that produced it. `--only=NAME,...` records those tokenizers
alone (`--only=default` needs no shared tokenizer files). This file is also the description the tests read
(tests/python/conftest.py builds attnprox's side of REAL from it, test_tokenizer_exact.py checks the fixtures
against FIXTURE_SETS): importing it needs no `tokenizers`.
"""
import glob
import gzip
import hashlib
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizers")

# The reference tokenizers of the real data, and how each is built: from a `tokenizer.json` as given, from GPT-2's
# encoder.json + vocab.bpe as GPT-2's own tokenizer.json sets a byte-level BPE up (no prefix space, offsets trimmed
# by the pre-tokenizer, not by the post-processor), or from BERT's vocab.txt as BertWordPieceTokenizer(lowercase=True)
# does. Paths are relative to DATA_DIR, except the default model's (relative to the repository).
REAL = {
    "qwen3": {"kind": "tokenizer_json", "files": ["tokenizers/qwen3/tokenizer.json"]},
    "llama3": {"kind": "tokenizer_json", "files": ["tokenizers/llama3/tokenizer.json"]},
    "gpt-oss": {"kind": "tokenizer_json", "files": ["tokenizers/gpt-oss/tokenizer.json"]},
    "gpt2": {"kind": "byte_level_bpe", "files": ["tokenizers/gpt2/encoder.json", "tokenizers/gpt2/vocab.bpe"]},
    "bert": {"kind": "wordpiece", "files": ["tokenizers/bert-base-uncased/vocab.txt"], "lowercase": True},
    # The default model's own byte-level BPE, trained with Hugging Face tokenizers (tools/train_default_model.py).
    "default": {"kind": "tokenizer_json", "files": ["models/default/tokenizer.json"], "in_repository": True},
}


def real_files(name: str, data: str):
    """The files REAL[name] is built from, as paths."""
    spec = REAL[name]
    base = ROOT if spec.get("in_repository") else data
    return [os.path.join(base, *f.split("/")) for f in spec["files"]]


# What one row of a fixture records for one text, named as the fixtures name them (HF's values):
#   ids, offsets, tokens          encode(text, add_special_tokens=False): ids, character offsets, token strings
#   ids_special, offsets_special  encode(text, add_special_tokens=True): ids, character offsets
#   decoded                       decode(ids, skip_special_tokens=False)
#   decoded_special               decode(ids_special, skip_special_tokens=False)
#   decoded_skip                  decode(ids_special, skip_special_tokens=True)
ROW_FIELDS = ("ids", "offsets", "tokens", "ids_special", "offsets_special", "decoded", "decoded_special",
              "decoded_skip")
# The fields each set's result file records. The real tokenizers' file keeps the special tokens in the decoding of
# ids_special, the synthetic ones' drops them (their templates and added tokens are what skipping exercises); both
# files hold exactly these fields, and the tests check that they do.
FIXTURE_SETS = {
    "real": {"file": "hf_adversarial.json",
             "fields": ["ids", "offsets", "tokens", "ids_special", "offsets_special", "decoded", "decoded_special"]},
    "synthetic": {"file": "hf_synthetic.json.gz",
                  "fields": ["ids", "offsets", "tokens", "ids_special", "offsets_special", "decoded", "decoded_skip"]},
}
# hf_corpus.json, per OneStopEnglish file: n (tokens without special tokens), ids and offsets (SHA-256 of
# "i,j,..." and "a,b;c,d;..."), n_special and ids_special (with special tokens).
CORPUS_FIELDS = ("n", "ids", "offsets", "n_special", "ids_special")

# Texts the synthetic tokenizers see besides the adversarial ones.
EXTRA_TEXTS = [
    "I read a book Yesterday <mask> and yesterday", "a<mask>b  <mask>  c", "sing singing ing ing.", "[NEW]   next",
    "x [NEW]y", "hello world hello-world", "tokenization  with   double  spaces", "Ⅻ ① ⑴ ﬀ ẞ Ǆ", "1234 5678.90",
    "can't won't shouldn't", "the-final--countdown", "<s>start</s> and <s> </s>", "Ünïcödé ñ é e\u0301",
    "\u00a0\u2003\u3000", "byte fallback: 漢字 🤖 ☃", "   ", "", "<unk> <pad>", "snake_case CamelCase", "ab,cd;ef:gh",
]


def adversarial_texts():
    with open(os.path.join(FIXTURES, "adversarial.json"), encoding="utf-8") as f:
        return json.load(f)["texts"]


def fixture_texts(fixture_set: str):
    """The texts of a set's result file, in order."""
    texts = adversarial_texts()
    return texts + EXTRA_TEXTS if fixture_set == "synthetic" else texts


def digest(values: str) -> str:
    return hashlib.sha256(values.encode("utf-8")).hexdigest()


def ids_text(ids) -> str:
    return ",".join(map(str, ids))


def offsets_text(offsets) -> str:
    return ";".join(f"{a},{b}" for a, b in offsets)


def corpus_files(data):
    files = sorted(glob.glob(os.path.join(data, "onestopenglish", "*", "*.txt")))
    return [(os.path.relpath(f, os.path.join(data, "onestopenglish")), open(f, encoding="utf-8").read()) for f in files]


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face's side (needs `tokenizers`)


def hf_real(name: str, data: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.implementations import BertWordPieceTokenizer

    spec, files = REAL[name], real_files(name, data)
    if spec["kind"] == "tokenizer_json":
        return Tokenizer.from_file(files[0])
    if spec["kind"] == "byte_level_bpe":
        tok = Tokenizer(models.BPE.from_file(files[0], files[1]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.decoder = decoders.ByteLevel()
        return tok
    if spec["kind"] == "wordpiece":
        return BertWordPieceTokenizer(files[0], lowercase=spec["lowercase"])._tokenizer
    raise ValueError(f"unknown kind {spec['kind']!r}")


def training_text(data, limit=40):
    files = sorted(glob.glob(os.path.join(data, "onestopenglish", "*", "*.txt")))[:limit]
    return [open(f, encoding="utf-8").read() for f in files]


def bert_with_added(data):
    from tokenizers import AddedToken
    from tokenizers.implementations import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(os.path.join(data, "tokenizers", "bert-base-uncased", "vocab.txt"), lowercase=True)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False)])
    tok.add_tokens([AddedToken("Yesterday", normalized=True), AddedToken("ing", single_word=True),
                    AddedToken("[NEW]", rstrip=True, normalized=False), AddedToken("hello world", normalized=True)])
    return tok._tokenizer


def metaspace_byte_fallback(data):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, processors, trainers

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
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>"], show_progress=False)
    tok.train_from_iterator(training_text(data), trainer=trainer)
    return tok


def roberta_like(data):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

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
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

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
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

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


# The synthetic tokenizers, by name: each saved by HF as tests/fixtures/tokenizers/synthetic/NAME.json.gz.
SYNTHETIC = {"bert-added": bert_with_added, "metaspace-byte-fallback": metaspace_byte_fallback,
             "metaspace-pretokenizer": metaspace_pretokenizer, "roberta-like": roberta_like,
             "wordlevel-whitespace": wordlevel_whitespace, "split-behaviours": split_behaviours}


def hf_row(tok, text: str, fields) -> dict:
    """One row of a fixture: the fields (ROW_FIELDS) HF gives for the text."""
    plain = tok.encode(text, add_special_tokens=False)
    special = tok.encode(text, add_special_tokens=True)
    values = {"ids": lambda: plain.ids, "offsets": lambda: plain.offsets, "tokens": lambda: plain.tokens,
              "ids_special": lambda: special.ids, "offsets_special": lambda: special.offsets,
              "decoded": lambda: tok.decode(plain.ids, skip_special_tokens=False),
              "decoded_special": lambda: tok.decode(special.ids, skip_special_tokens=False),
              "decoded_skip": lambda: tok.decode(special.ids, skip_special_tokens=True)}
    return {field: values[field]() for field in fields}


def hf_corpus_row(tok, text: str) -> dict:
    plain = tok.encode(text, add_special_tokens=False)
    special = tok.encode(text, add_special_tokens=True)
    return {"n": len(plain.ids), "ids": digest(ids_text(plain.ids)), "offsets": digest(offsets_text(plain.offsets)),
            "n_special": len(special.ids), "ids_special": digest(ids_text(special.ids))}


def write_gzip(text: str, path: str) -> None:
    """text, UTF-8, gzip-compressed (the same bytes for the same text: no time stamp)."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(text.encode("utf-8"))


def make_real(data, out, only, speed):
    import tokenizers

    names = [n for n in REAL if only is None or n in only]
    if not os.path.isfile(real_files("default", data)[0]):  # a checkout without the default model
        names = [n for n in names if n != "default"]
    toks = {name: hf_real(name, data) for name in names}
    for name in ("gpt2", "bert"):
        if name in toks:
            toks[name].save(os.path.join(out, f"{name}.tokenizer.json"))
    fields = FIXTURE_SETS["real"]["fields"]
    texts = fixture_texts("real")
    results = {name: [hf_row(tok, text, fields) for text in texts] for name, tok in toks.items()}
    with open(os.path.join(out, FIXTURE_SETS["real"]["file"]), "w") as f:
        json.dump({"tokenizers": tokenizers.__version__, "texts": texts, "results": results}, f, ensure_ascii=True)

    corpus = corpus_files(data)
    table = {name: {rel: hf_corpus_row(tok, text) for rel, text in corpus} for name, tok in toks.items()}
    with open(os.path.join(out, "hf_corpus.json"), "w") as f:
        json.dump({"tokenizers": tokenizers.__version__, "files": len(corpus), "results": table}, f, indent=0)
    if speed:
        measure_speed(toks, corpus, out)


def measure_speed(toks, corpus, out):
    import tokenizers

    speed = {"tokenizers": tokenizers.__version__, "cpu": platform.processor() or platform.machine(),
             "python": sys.version.split()[0]}
    try:
        speed["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
    except (OSError, StopIteration):
        pass
    for name in ("qwen3", "bert", "llama3", "gpt2"):
        tok = toks[name]
        best = None
        for _ in range(3):
            start = time.perf_counter()
            count = sum(len(tok.encode(text, add_special_tokens=False).ids) for _, text in corpus)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        speed[name] = {"tokens": count, "seconds": best, "tokens_per_second": count / best,
                       "bytes": sum(len(t.encode()) for _, t in corpus)}
        print(f"{name}: {count} tokens in {best:.3f} s = {count / best:,.0f} tokens/s")
    with open(os.path.join(out, "hf_speed.json"), "w") as f:
        json.dump(speed, f, indent=2)


def make_synthetic(data, out, only):
    import tokenizers
    from tokenizers import Tokenizer

    os.makedirs(os.path.join(out, "synthetic"), exist_ok=True)
    fields = FIXTURE_SETS["synthetic"]["fields"]
    texts = fixture_texts("synthetic")
    results = {}
    for name, build in SYNTHETIC.items():
        if only is not None and name not in only:
            continue
        saved = build(data).to_str(pretty=True)  # as Tokenizer.save writes it
        write_gzip(saved, os.path.join(out, "synthetic", f"{name}.json.gz"))
        tok = Tokenizer.from_str(saved)  # what the file says, as attnprox will read it
        results[name] = [hf_row(tok, text, fields) for text in texts]
        print(f"{name}: {len(saved)} bytes, vocab {tok.get_vocab_size()}")
    write_gzip(json.dumps({"tokenizers": tokenizers.__version__, "texts": texts, "results": results}, ensure_ascii=True),
               os.path.join(out, FIXTURE_SETS["synthetic"]["file"]))


def main(data, out, speed=True, only=None, sets=("real", "synthetic")):
    os.makedirs(out, exist_ok=True)
    if "real" in sets:
        make_real(data, out, only, speed)
    if "synthetic" in sets:
        make_synthetic(data, out, only)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    chosen = options["only"].split(",") if "only" in options else None
    chosen_sets = options["sets"].split(",") if "sets" in options else ("real", "synthetic")
    main(args[0], args[1], speed="--no-speed" not in sys.argv, only=chosen, sets=chosen_sets)
