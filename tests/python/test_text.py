"""Text in: model files carry their tokenizer, and Model.run(text=...) runs what the tokenizer makes of the text.
Small random-weight models of GPT-2 and BERT with the real GPT-2 and BERT tokenizers of the shared data."""
import os

import numpy as np
import pytest

import attnprox
from conftest import data_path

PROMPT = "Emily always wanted to visit Paris so she took some French lessons"


def test_model_files_carry_their_tokenizer(text_models):
    gpt2 = attnprox.load(text_models["gpt2"])
    reference = attnprox.Tokenizer.byte_level_bpe(data_path("tokenizers", "gpt2", "encoder.json"),
                                                  data_path("tokenizers", "gpt2", "vocab.bpe"))
    assert gpt2.tokenizer is not None
    assert gpt2.tokenizer.encode(PROMPT) == reference.encode(PROMPT)


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_run_text_is_run_ids_of_the_tokenizers_encoding(name, text_models):
    model = attnprox.load(text_models[name])
    result = model.run(text=PROMPT)
    ids = model.tokenizer.encode(PROMPT, add_special_tokens=True)
    assert result.ids == ids
    assert result.text == PROMPT
    assert result.tokens == model.tokenizer.tokens(ids)
    by_ids = model.run(ids=ids)
    np.testing.assert_array_equal(result.attention(-1), by_ids.attention(-1))
    assert by_ids.text is None and by_ids.offsets is None
    if name == "bert":
        assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
        assert result.token_texts[0] == "[CLS]" and result.offsets[0] == (0, 0)
    # every token's offsets point at its piece of the text
    for token_text, (start, end) in zip(result.token_texts, result.offsets):
        if end > start:
            assert PROMPT[start:end] == token_text
    assert "Paris" in [t.strip() for t in result.token_texts]


def test_batch_of_texts(text_models):
    model = attnprox.load(text_models["gpt2"])
    prompts = [line.strip() for line in open(data_path("prompts.txt"), encoding="utf-8") if line.strip()]
    results = model.run(text=prompts)
    assert [r.text for r in results] == prompts
    for prompt, result in zip(prompts, results):
        alone = model.run(text=prompt)
        assert result.ids == alone.ids
        assert result.ap() == pytest.approx(alone.ap(), abs=1e-6)


def test_text_errors(text_models, exported):
    with pytest.raises(attnprox.UnsupportedError, match="has no tokenizer.json"):
        attnprox.load(exported("gpt2")).run(text="hello")
    model = attnprox.load(text_models["gpt2"])
    with pytest.raises(attnprox.InvalidArgumentError, match="gives no tokens"):
        model.run(text="")
    with pytest.raises(attnprox.InvalidArgumentError, match="str or a list of str"):
        model.run(text=["fine", 3])
    with pytest.raises(attnprox.InvalidArgumentError, match="the model has 64 positions"):
        model.run(text="word " * 100)


def test_command_line_scores_text(text_models, tmp_path):
    import json
    import subprocess
    import sys

    from conftest import BUILD

    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    story = tmp_path / "story.txt"
    story.write_text("Tell me a very simple short story.", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "attnprox", "score", text_models["bert"], "--text", PROMPT,
                          "--file", str(story), "--tokens", "--json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    model = attnprox.load(text_models["bert"])
    want = model.run(text=[PROMPT, story.read_text()])
    assert [r["n"] for r in rows] == [len(w) for w in want]
    assert rows[0]["ap"] == pytest.approx(want[0].ap(), rel=1e-12)
    assert rows[1]["tokens"][0] == "[CLS]" and "story" in rows[1]["tokens"]


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_a_byte_order_mark_is_not_a_token(name, text_models):
    """Every OneStopEnglish file starts with U+FEFF: run(text=...) leaves it out as editors do, and the offsets
    still index the string given."""
    model = attnprox.load(text_models[name])
    marked = "\ufeff" + PROMPT
    r = model.run(text=marked)
    plain = model.tokenizer.encode_with_offsets(PROMPT, add_special_tokens=True)
    assert r.ids == list(plain.ids)
    assert r.text == marked
    assert r.offsets == [(0, 0) if (a, b) == (0, 0) else (a + 1, b + 1) for a, b in plain.char_offsets]
    for piece, (a, b) in zip(r.token_texts, r.offsets):
        if b > a:
            assert marked[a:b] == piece and "\ufeff" not in piece
    with pytest.raises(attnprox.InvalidArgumentError, match="gives no tokens"):
        model.run(text="\ufeff")


def test_command_line_reads_files_without_their_byte_order_mark(text_models):
    import json
    import subprocess
    import sys

    from conftest import BUILD

    path = data_path("onestopenglish", "Adv-Txt", "Amazon-adv.txt")
    with open(path, "rb") as f:
        assert f.read(3) == b"\xef\xbb\xbf"
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    model = attnprox.load(text_models["gpt2"])
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    out = subprocess.run([sys.executable, "-m", "attnprox", "score", text_models["gpt2"], "--file", path, "--truncate",
                          "--json", "--tokens"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)[0]
    assert row["tokens"][:20] == [text[a:b] for a, b in model.tokenizer.encode_with_offsets(text).char_offsets[:20]]
    assert row["ap"] == pytest.approx(model.run(ids=model.tokenizer.encode(text)[:64]).ap(), abs=1e-6)


def gpt2_bytes_to_unicode():
    """GPT-2's byte ↔ character table (encoder.py of openai/gpt-2), written out for the test."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def test_token_labels_are_the_tokenizers_tokens(text_models):
    """Labels show what the model read: BERT's lower-cased ## pieces, GPT-2's byte-level tokens as text."""
    text = "Emily's unbelievably naïve café\nParis"
    bert = attnprox.load(text_models["bert"]).run(text=text)
    vocab = attnprox.Tokenizer.wordpiece(data_path("tokenizers", "bert-base-uncased", "vocab.txt"))
    assert bert.token_labels == vocab.tokens(bert.ids)  # "[CLS]", "emily", "##…", "paris", "[SEP]"
    assert "paris" in bert.token_labels and any(t.startswith("##") for t in bert.token_labels)
    assert "Paris" in [t.strip() for t in bert.token_texts]  # the text's own piece, for comparison
    gpt2 = attnprox.load(text_models["gpt2"]).run(text=text)
    table = gpt2_bytes_to_unicode()
    decoded = [bytes(table[c] for c in token).decode("utf-8", errors="replace") for token in gpt2.tokens]
    assert gpt2.token_labels == decoded
    assert "\n" in gpt2.token_labels and " café" in gpt2.token_labels
    from attnprox import plots

    fig = plots.attention(bert, max_labels=100)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == plots.labels(bert)
    assert "paris" in plots.labels(bert) and "⏎" in plots.labels(gpt2)
    assert attnprox.load(text_models["gpt2"]).run(ids=gpt2.ids).token_labels == gpt2.token_labels
