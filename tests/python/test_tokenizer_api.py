"""The Python Tokenizer API: the fixed names the README promises and clear errors."""
import pytest

import attnprox
from conftest import data_path


@pytest.fixture(scope="module")
def gpt2():
    return attnprox.Tokenizer.byte_level_bpe(data_path("tokenizers", "gpt2", "encoder.json"),
                                             data_path("tokenizers", "gpt2", "vocab.bpe"))


def test_fixed_names(gpt2):
    bert = attnprox.Tokenizer.wordpiece(data_path("tokenizers", "bert-base-uncased", "vocab.txt"), lowercase=True)
    qwen = attnprox.Tokenizer.from_file(data_path("tokenizers", "qwen3", "tokenizer.json"))
    ids = gpt2.encode("Hello world")
    assert ids == [15496, 995]  # GPT-2's ids for "Hello" and " world"
    assert gpt2.tokens(ids) == ["Hello", "Ġworld"]
    assert gpt2.decode(ids) == "Hello world"
    assert bert.encode("Hello world", add_special_tokens=True) == [101, 7592, 2088, 102]
    assert bert.tokens([101, 7592]) == ["[CLS]", "hello"]
    assert qwen.encode("<|im_start|>user") == [151644, 872]
    assert qwen.is_special(151644) and not qwen.is_special(872)
    assert qwen.decode([151644, 872], skip_special_tokens=True) == "user"
    assert gpt2.vocab_size == 50257 and bert.vocab_size == 30522 and qwen.vocab_size == 151669
    assert gpt2.token_to_id("Ġworld") == 995 and gpt2.token_to_id("not-a-token-at-all") is None


def test_offsets(gpt2):
    text = "naïve café"
    enc = gpt2.encode_with_offsets(text)
    # byte-level tokens of this text tile it: each starts where the last ended, in bytes and in characters
    chars = [tuple(o) for o in enc.char_offsets]
    assert chars[0][0] == 0 and chars[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(chars, chars[1:]))
    assert "".join(text[a:b] for a, b in chars) == text
    data = text.encode()
    assert b"".join(data[a:b] for a, b in enc.offsets) == data  # the byte ranges tile the text


def test_invalid_input_is_a_clear_error(gpt2):
    with pytest.raises(attnprox.InvalidArgumentError, match=r"not valid UTF-8: byte 0xFF at offset 3"):
        gpt2.encode(b"abc\xff")
    assert gpt2.encode("café".encode()) == gpt2.encode("café")
    with pytest.raises(attnprox.InvalidArgumentError, match="not valid Unicode: surrogates not allowed at index 1"):
        gpt2.encode("a\ud800b")
    with pytest.raises(attnprox.InvalidArgumentError, match="token id 99999999 is not in the tokenizer"):
        gpt2.decode([99999999])
    with pytest.raises(attnprox.InvalidArgumentError, match="text must be str or bytes"):
        gpt2.encode(42)


def test_bad_files(tmp_path):
    with pytest.raises(attnprox.ModelNotFoundError, match="does not exist"):
        attnprox.Tokenizer.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}')
    with pytest.raises(attnprox.InvalidArgumentError, match=r"model.merges\[0\]: merge \"a b\" uses a token"):
        attnprox.Tokenizer.from_file(bad)
    bad.write_text("{ not json")
    with pytest.raises(attnprox.InvalidArgumentError, match="not valid JSON"):
        attnprox.Tokenizer.from_file(bad)
    unsupported = tmp_path / "unigram.json"
    unsupported.write_text('{"model": {"type": "Unigram", "vocab": []}}')
    with pytest.raises(attnprox.UnsupportedError, match=r"model type \"Unigram\" is not supported"):
        attnprox.Tokenizer.from_file(unsupported)
