"""The C++ tokenizer against Hugging Face `tokenizers` (the arbiter), on real data: every adversarial text
(ids with and without special tokens, character offsets, tokens, decode) and every OneStopEnglish text (ids,
offsets and ids with special tokens, compared through SHA-256 digests) for Qwen3, Llama 3, gpt-oss, GPT-2,
BERT and the default model's tokenizer. Fixtures: tests/gpu/make_tokenizer_fixtures.py, run with tokenizers
0.23.2. Zero mismatches is the bar."""
import hashlib
import json
import os

import pytest

from conftest import TOKENIZER_FIXTURES, corpus_texts

NAMES = ["qwen3", "llama3", "gpt-oss", "gpt2", "bert", "default"]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def hf_adversarial():
    return json.load(open(os.path.join(TOKENIZER_FIXTURES, "hf_adversarial.json")))


@pytest.fixture(scope="module")
def hf_corpus():
    return json.load(open(os.path.join(TOKENIZER_FIXTURES, "hf_corpus.json")))


@pytest.mark.parametrize("name", NAMES)
def test_adversarial_texts_match_hf(name, reference_tokenizers, hf_adversarial):
    tok = reference_tokenizers[name]
    mismatches = []
    for i, text in enumerate(hf_adversarial["texts"]):
        want = hf_adversarial["results"][name][i]
        plain = tok.encode_with_offsets(text)
        special = tok.encode_with_offsets(text, add_special_tokens=True)
        got = {"ids": list(plain.ids), "ids_special": list(special.ids),
               "offsets": [list(o) for o in plain.char_offsets],
               "offsets_special": [list(o) for o in special.char_offsets],
               "tokens": list(plain.tokens), "decoded": tok.decode(plain.ids),
               "decoded_special": tok.decode(special.ids)}
        for key, value in got.items():
            if value != want[key]:
                mismatches.append(f"text {i} {text[:40]!r} {key}: got {str(value)[:120]}, HF {str(want[key])[:120]}")
    assert not mismatches, "\n".join(mismatches[:20])


@pytest.mark.parametrize("name", NAMES)
def test_onestopenglish_matches_hf(name, reference_tokenizers, hf_corpus):
    tok = reference_tokenizers[name]
    texts = corpus_texts()
    assert len(texts) == hf_corpus["files"] == 567
    mismatches = []
    for rel, text in texts:
        want = hf_corpus["results"][name][rel]
        plain = tok.encode_with_offsets(text)
        special = tok.encode(text, add_special_tokens=True)
        got = {"n": len(plain.ids), "ids": sha(",".join(map(str, plain.ids))),
               "offsets": sha(";".join(f"{a},{b}" for a, b in plain.char_offsets)),
               "n_special": len(special), "ids_special": sha(",".join(map(str, special)))}
        bad = [key for key in got if got[key] != want[key]]
        if bad:
            mismatches.append(f"{rel}: {bad} (tokens: ours {got['n']}, HF {want['n']})")
    assert not mismatches, f"{len(mismatches)} of {len(texts)} texts differ:\n" + "\n".join(mismatches[:20])


@pytest.mark.parametrize("name", ["qwen3", "llama3", "gpt-oss", "gpt2"])
def test_byte_level_decode_gives_back_the_text(name, reference_tokenizers):
    tok = reference_tokenizers[name]
    for text in ["The bank by the river was steep. Naïve café — 你好 👍!", "e\u0301\u0323 \r\n\t x", "\u00a0"]:
        ids = tok.encode(text)
        expected = text if name != "qwen3" else __import__("unicodedata").normalize("NFC", text)
        assert tok.decode(ids) == expected


def test_byte_and_character_offsets_agree(reference_tokenizers):
    """Where a token's byte range falls on character boundaries, its character range is the same piece of text."""
    text = "Ünïcödé text, with 日本語 and emoji 👨‍👩‍👧 and ﬁ ligatures."
    data = text.encode("utf-8")
    for name, tok in reference_tokenizers.items():
        enc = tok.encode_with_offsets(text)
        aligned = 0
        for (b0, b1), (c0, c1) in zip(enc.offsets, enc.char_offsets):
            assert 0 <= b0 <= b1 <= len(data) and 0 <= c0 <= c1 <= len(text), name
            try:
                piece = data[b0:b1].decode("utf-8")
                data[:b0].decode("utf-8")
            except UnicodeDecodeError:
                continue  # a byte-level token inside a character
            assert text[c0:c1] == piece, (name, b0, b1, c0, c1)
            aligned += 1
        assert aligned >= 0.7 * len(enc.ids), name


SYNTHETIC = os.path.join(TOKENIZER_FIXTURES, "synthetic")


@pytest.fixture(scope="module")
def hf_synthetic():
    import gzip

    with gzip.open(os.path.join(TOKENIZER_FIXTURES, "hf_synthetic.json.gz"), "rt") as f:
        return json.load(f)


@pytest.mark.parametrize("name", sorted(n[: -len(".json.gz")] for n in os.listdir(SYNTHETIC)))
def test_synthetic_tokenizers_match_hf(name, hf_synthetic):
    """Tokenizers built and saved by HF (tests/gpu/make_synthetic_tokenizer_fixtures.py) exercising the components
    the real files do not: added tokens with lstrip/rstrip/single_word/normalized, Metaspace, byte fallback,
    Replace/Prepend/Strip, NFKC/NFD/StripAccents, Whitespace/Digits/Punctuation, every Split behaviour, WordLevel,
    TemplateProcessing, RobertaProcessing."""
    import gzip

    import attnprox

    with gzip.open(os.path.join(SYNTHETIC, name + ".json.gz"), "rt", encoding="utf-8") as f:
        tok = attnprox.Tokenizer.from_json(f.read())
    mismatches = []
    for i, text in enumerate(hf_synthetic["texts"]):
        want = hf_synthetic["results"][name][i]
        plain = tok.encode_with_offsets(text)
        special = tok.encode_with_offsets(text, add_special_tokens=True)
        got = {"ids": list(plain.ids), "offsets": [list(o) for o in plain.char_offsets], "tokens": list(plain.tokens),
               "ids_special": list(special.ids), "offsets_special": [list(o) for o in special.char_offsets],
               "decoded": tok.decode(plain.ids), "decoded_skip": tok.decode(special.ids, skip_special_tokens=True)}
        for key, value in got.items():
            if value != want[key]:
                mismatches.append(f"text {i} {text[:40]!r} {key}: got {str(value)[:120]}, HF {str(want[key])[:120]}")
    assert not mismatches, "\n".join(mismatches[:20])
