"""The C++ tokenizer against Hugging Face `tokenizers` (the arbiter), on real data: every adversarial text
(ids with and without special tokens, character offsets, tokens, decode) and every OneStopEnglish text (ids,
offsets and ids with special tokens, compared through SHA-256 digests) for Qwen3, Llama 3, gpt-oss, GPT-2,
BERT and the default model's tokenizer, and six synthetic tokenizers. Fixtures: tests/gpu/make_tokenizer_fixtures.py
(the one generator, and the description of the reference tokenizers and of each fixture's fields these tests
read), run with tokenizers 0.23.2. Zero mismatches is the bar."""
import gzip
import json
import os

import pytest

from conftest import TOKENIZER_FIXTURES, corpus_texts, tokenizer_description

DESCRIPTION = tokenizer_description()
NAMES = list(DESCRIPTION.REAL)


def read_fixture(fixture_set: str) -> dict:
    path = os.path.join(TOKENIZER_FIXTURES, DESCRIPTION.FIXTURE_SETS[fixture_set]["file"])
    with (gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")) as f:
        return json.load(f)


def our_row(tok, text: str, fields) -> dict:
    """attnprox's values of the fields a fixture row records (their meaning: make_tokenizer_fixtures.ROW_FIELDS)."""
    plain = tok.encode_with_offsets(text)
    special = tok.encode_with_offsets(text, add_special_tokens=True)
    values = {"ids": lambda: list(plain.ids), "offsets": lambda: [list(o) for o in plain.char_offsets],
              "tokens": lambda: list(plain.tokens), "ids_special": lambda: list(special.ids),
              "offsets_special": lambda: [list(o) for o in special.char_offsets],
              "decoded": lambda: tok.decode(plain.ids, skip_special_tokens=False),
              "decoded_special": lambda: tok.decode(special.ids, skip_special_tokens=False),
              "decoded_skip": lambda: tok.decode(special.ids, skip_special_tokens=True)}
    assert set(values) == set(DESCRIPTION.ROW_FIELDS)
    return {field: values[field]() for field in fields}


def mismatches_of(tok, fixture: dict, name: str, fields) -> list:
    out = []
    for i, text in enumerate(fixture["texts"]):
        want = fixture["results"][name][i]
        for key, value in our_row(tok, text, fields).items():
            if value != want[key]:
                out.append(f"text {i} {text[:40]!r} {key}: got {str(value)[:120]}, HF {str(want[key])[:120]}")
    return out


@pytest.fixture(scope="module")
def hf_adversarial():
    return read_fixture("real")


@pytest.fixture(scope="module")
def hf_corpus():
    return json.load(open(os.path.join(TOKENIZER_FIXTURES, "hf_corpus.json")))


@pytest.mark.parametrize("fixture_set", list(DESCRIPTION.FIXTURE_SETS))
def test_the_fixtures_are_what_the_generator_describes(fixture_set):
    """Every row of a result file holds exactly the fields its set records, for the generator's texts and tokenizers:
    the generator and the committed fixtures have not drifted apart."""
    fixture = read_fixture(fixture_set)
    fields = DESCRIPTION.FIXTURE_SETS[fixture_set]["fields"]
    assert set(fields) <= set(DESCRIPTION.ROW_FIELDS)
    assert fixture["texts"] == DESCRIPTION.fixture_texts(fixture_set)
    names = DESCRIPTION.REAL if fixture_set == "real" else DESCRIPTION.SYNTHETIC
    assert sorted(fixture["results"]) == sorted(names)
    for name, rows in fixture["results"].items():
        assert len(rows) == len(fixture["texts"]), name
        assert all(sorted(row) == sorted(fields) for row in rows), name
    assert fixture["tokenizers"]
    if fixture_set == "synthetic":
        saved = sorted(n[: -len(".json.gz")] for n in os.listdir(os.path.join(TOKENIZER_FIXTURES, "synthetic")))
        assert saved == sorted(DESCRIPTION.SYNTHETIC)
    corpus = json.load(open(os.path.join(TOKENIZER_FIXTURES, "hf_corpus.json")))
    assert sorted(corpus["results"]) == sorted(DESCRIPTION.REAL)
    assert all(sorted(row) == sorted(DESCRIPTION.CORPUS_FIELDS) for rows in corpus["results"].values()
               for row in rows.values())


@pytest.mark.parametrize("name", NAMES)
def test_adversarial_texts_match_hf(name, reference_tokenizers, hf_adversarial):
    mismatches = mismatches_of(reference_tokenizers[name], hf_adversarial, name,
                               DESCRIPTION.FIXTURE_SETS["real"]["fields"])
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
        got = {"n": len(plain.ids), "ids": DESCRIPTION.digest(DESCRIPTION.ids_text(plain.ids)),
               "offsets": DESCRIPTION.digest(DESCRIPTION.offsets_text(plain.char_offsets)),
               "n_special": len(special), "ids_special": DESCRIPTION.digest(DESCRIPTION.ids_text(special))}
        assert set(got) == set(DESCRIPTION.CORPUS_FIELDS)
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
    return read_fixture("synthetic")


@pytest.mark.parametrize("name", sorted(DESCRIPTION.SYNTHETIC))
def test_synthetic_tokenizers_match_hf(name, hf_synthetic):
    """Tokenizers built and saved by HF (tests/gpu/make_tokenizer_fixtures.py, SYNTHETIC) exercising the components
    the real files do not: added tokens with lstrip/rstrip/single_word/normalized, Metaspace, byte fallback,
    Replace/Prepend/Strip, NFKC/NFD/StripAccents, Whitespace/Digits/Punctuation, every Split behaviour, WordLevel,
    TemplateProcessing, RobertaProcessing."""
    import attnprox

    with gzip.open(os.path.join(SYNTHETIC, name + ".json.gz"), "rt", encoding="utf-8") as f:
        tok = attnprox.Tokenizer.from_json(f.read())
    mismatches = mismatches_of(tok, hf_synthetic, name, DESCRIPTION.FIXTURE_SETS["synthetic"]["fields"])
    assert not mismatches, "\n".join(mismatches[:20])
