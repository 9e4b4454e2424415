"""Tokenizers: Hugging Face tokenizer.json files (and GPT-2 / BERT vocabulary files), applied by attnprox's C++
tokenizer exactly as Hugging Face `tokenizers` applies them."""
from typing import List, Optional, Sequence, Union

from . import _core
from .errors import InvalidArgumentError


def _utf8(text: Union[str, bytes]) -> bytes:
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    if not isinstance(text, str):
        raise InvalidArgumentError(f"text must be str or bytes, not {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgumentError(f"text is not valid Unicode: {e.reason} at index {e.start}") from None


class Tokenizer:
    """Text ↔ token ids.

        tok = attnprox.Tokenizer.from_file("tokenizer.json")
        ids = tok.encode("Hello world")                  # list[int]
        enc = tok.encode_with_offsets("Hello world")     # ids, tokens, offsets (bytes), char_offsets, special
        tok.decode(ids)                                  # "Hello world"

    Special tokens written in the text (e.g. "<|endoftext|>") are always recognised; `add_special_tokens=True`
    also adds what the tokenizer's post-processor adds around a text (BERT's [CLS] … [SEP], a BOS token).
    """

    def __init__(self, core: "_core.Tokenizer"):
        self._core = core

    @classmethod
    def from_file(cls, tokenizer_json: str) -> "Tokenizer":
        """A Hugging Face tokenizer.json."""
        return cls(_core.Tokenizer.from_file(str(tokenizer_json)))

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        """The contents of a tokenizer.json."""
        return cls(_core.Tokenizer.from_json(text))

    @classmethod
    def byte_level_bpe(cls, vocab_json: str, merges_txt: str) -> "Tokenizer":
        """GPT-2 style byte-level BPE from vocab.json / encoder.json and merges.txt / vocab.bpe."""
        return cls(_core.Tokenizer.byte_level_bpe(str(vocab_json), str(merges_txt)))

    @classmethod
    def wordpiece(cls, vocab_txt: str, lowercase: bool = True) -> "Tokenizer":
        """BERT WordPiece from vocab.txt, set up as Hugging Face's BertWordPieceTokenizer."""
        return cls(_core.Tokenizer.wordpiece(str(vocab_txt), lowercase))

    def encode(self, text: Union[str, bytes], add_special_tokens: bool = False,
               pair: Optional[Union[str, bytes]] = None) -> List[int]:
        """Token ids of `text` (a str, or bytes holding UTF-8: invalid UTF-8 raises InvalidArgumentError); with
        `pair`, of the text pair as Hugging Face encodes (text, pair) (the post-processor's pair template)."""
        return list(self.encode_with_offsets(text, add_special_tokens, pair).ids)

    def encode_with_offsets(self, text: Union[str, bytes], add_special_tokens: bool = False,
                            pair: Optional[Union[str, bytes]] = None) -> "_core.Encoding":
        """The whole encoding: `.ids`, `.tokens`, `.offsets` ([start, end) bytes of the UTF-8 text; for the tokens
        of `pair`, of the pair), `.char_offsets` ([start, end) characters of the str), `.special` (1 for special
        tokens), `.type_ids` (the segment of each token: 0, and 1 for a pair's second text where the template says
        so), `.sequence_ids` (0 text, 1 pair, -1 tokens the post-processor added)."""
        if pair is not None:
            return self._core.encode_pair(_utf8(text), _utf8(pair), add_special_tokens)
        return self._core.encode(_utf8(text), add_special_tokens)

    def encode_batch(self, texts: Sequence[Union[str, bytes]], add_special_tokens: bool = False) -> List[List[int]]:
        return [list(e.ids) for e in self._core.encode_batch([_utf8(t) for t in texts], add_special_tokens)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of token ids."""
        return self._core.decode([int(i) for i in ids], skip_special_tokens)

    def tokens(self, ids: Sequence[int]) -> List[str]:
        """The vocabulary's string of each id ("Ġworld", "##ing")."""
        return self._core.tokens([int(i) for i in ids])

    def token_to_id(self, token: str) -> Optional[int]:
        return self._core.token_to_id(token)

    def is_special(self, token_id: int) -> bool:
        return self._core.is_special(int(token_id))

    @property
    def vocab_size(self) -> int:
        return self._core.vocab_size

    def __len__(self) -> int:
        return self._core.vocab_size

    def __repr__(self) -> str:
        return f"<attnprox.Tokenizer {self.vocab_size} ids>"
