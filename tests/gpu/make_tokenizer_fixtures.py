#!/usr/bin/env python3
"""Records what Hugging Face `tokenizers` (the arbiter of exactness) makes of the project's test texts, and how
fast it is, so that the C++ tokenizer can be checked against it on machines without `tokenizers`.

    python3 tests/gpu/make_tokenizer_fixtures.py DATA_DIR OUT_DIR

DATA_DIR holds `tokenizers/` and `onestopenglish/` as in the project's shared data folder. Writes
    OUT_DIR/hf_adversarial.json   every text of tests/fixtures/tokenizers/adversarial.json, every tokenizer:
                                  ids with and without special tokens, char offsets, tokens, decode
    OUT_DIR/hf_corpus.json        every OneStopEnglish text, every tokenizer: token counts and SHA-256 of the
                                  ids and offsets (the texts are too many to store whole)
    OUT_DIR/{gpt2,bert}.tokenizer.json   the tokenizers built from GPT-2's vocab/merges and BERT's vocab.txt
    OUT_DIR/hf_speed.json         tokens per second, one thread, over the whole corpus (Qwen3, BERT)

Tokenizers: qwen3, llama3, gpt-oss (tokenizer.json as given), gpt2 (ByteLevel BPE from encoder.json +
vocab.bpe, as GPT-2's own tokenizer.json sets it up), bert (BertWordPieceTokenizer(vocab.txt, lowercase=True)),
and default (the project's default model, `models/default/tokenizer.json`, when the repository has it).
`--no-speed` leaves out the speed measurement; `--only=NAME,...` records those tokenizers alone (`--only=default`
needs no shared tokenizer files).
"""
import glob
import hashlib
import json
import os
import platform
import sys
import time

import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from tokenizers.implementations import BertWordPieceTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TOKENIZER = os.path.join(HERE, "..", "..", "models", "default", "tokenizer.json")


def load_tokenizers(data, only=None):
    if only == ["default"]:  # the default model's tokenizer alone (no shared tokenizer files needed)
        return {"default": Tokenizer.from_file(DEFAULT_TOKENIZER)}
    t = os.path.join(data, "tokenizers")
    out = {name: Tokenizer.from_file(os.path.join(t, name, "tokenizer.json")) for name in ("qwen3", "llama3", "gpt-oss")}
    gpt2 = Tokenizer(models.BPE.from_file(os.path.join(t, "gpt2", "encoder.json"), os.path.join(t, "gpt2", "vocab.bpe")))
    gpt2.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    gpt2.post_processor = processors.ByteLevel(trim_offsets=False)
    gpt2.decoder = decoders.ByteLevel()
    out["gpt2"] = gpt2
    out["bert"] = BertWordPieceTokenizer(os.path.join(t, "bert-base-uncased", "vocab.txt"), lowercase=True)._tokenizer
    if os.path.isfile(DEFAULT_TOKENIZER):
        out["default"] = Tokenizer.from_file(DEFAULT_TOKENIZER)
    return {name: tok for name, tok in out.items() if only is None or name in only}


def digest(values) -> str:
    return hashlib.sha256(values.encode("utf-8")).hexdigest()


def ids_text(ids):
    return ",".join(map(str, ids))


def offsets_text(offsets):
    return ";".join(f"{a},{b}" for a, b in offsets)


def corpus_files(data):
    files = sorted(glob.glob(os.path.join(data, "onestopenglish", "*", "*.txt")))
    return [(os.path.relpath(f, os.path.join(data, "onestopenglish")), open(f, encoding="utf-8").read()) for f in files]


def main(data, out, speed=True, only=None):
    os.makedirs(out, exist_ok=True)
    toks = load_tokenizers(data, only)
    for name in ("gpt2", "bert"):
        if name in toks:
            toks[name].save(os.path.join(out, f"{name}.tokenizer.json"))
    texts = json.load(open(os.path.join(HERE, "..", "fixtures", "tokenizers", "adversarial.json")))["texts"]
    adversarial = {}
    for name, tok in toks.items():
        rows = []
        for text in texts:
            plain = tok.encode(text, add_special_tokens=False)
            special = tok.encode(text, add_special_tokens=True)
            rows.append({"ids": plain.ids, "offsets": plain.offsets, "tokens": plain.tokens,
                         "ids_special": special.ids, "offsets_special": special.offsets,
                         "decoded": tok.decode(plain.ids, skip_special_tokens=False),
                         "decoded_special": tok.decode(special.ids, skip_special_tokens=False)})
        adversarial[name] = rows
    json.dump({"tokenizers": tokenizers.__version__, "texts": texts, "results": adversarial},
              open(os.path.join(out, "hf_adversarial.json"), "w"), ensure_ascii=True)

    corpus = corpus_files(data)
    table = {}
    for name, tok in toks.items():
        rows = {}
        for rel, text in corpus:
            plain = tok.encode(text, add_special_tokens=False)
            special = tok.encode(text, add_special_tokens=True)
            rows[rel] = {"n": len(plain.ids), "ids": digest(ids_text(plain.ids)),
                         "offsets": digest(offsets_text(plain.offsets)),
                         "n_special": len(special.ids), "ids_special": digest(ids_text(special.ids))}
        table[name] = rows
    json.dump({"tokenizers": tokenizers.__version__, "files": len(corpus), "results": table},
              open(os.path.join(out, "hf_corpus.json"), "w"), indent=0)
    if not speed:
        return

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
    json.dump(speed, open(os.path.join(out, "hf_speed.json"), "w"), indent=2)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    chosen = next((a.split("=", 1)[1].split(",") for a in sys.argv[1:] if a.startswith("--only=")), None)
    main(args[0], args[1], speed="--no-speed" not in sys.argv, only=chosen)
