"""Loading model files and reading what their attention sees: `load`, `Model`, `Result`."""
import json
import math
import os
import warnings
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, checks, default_model
from .batching import default_token_budget, micro_batches
from .errors import Error, InvalidArgumentError
from .layers import resolve_layer
from .metrics import APE, AttentionStats, policy_name
from .tokenizer import Tokenizer

if TYPE_CHECKING:
    from .windows import Windowed

Ids = Sequence[int]


def load(path: Optional[str] = None, device: str = "cpu", dtype: Optional[str] = None, threads: int = 0,
         layers=None) -> "Model":
    """Loads an attnprox model file (written by `attnprox.export` or `attnprox.export_reference`); with no path (or
    "default"), the project's default model (`attnprox.default_model`).

    device: "cpu", "cuda" or "cuda:N". dtype: "float32", "float16" or "bfloat16" (default: the file's).
    threads: libtorch intra-op threads for the whole process (0: libtorch's default).
    layers: which captured layers' queries and keys runs keep unless `run(layers=...)` says otherwise: "all" (or
    None, the default), "last", a layer number, a list of them or "i,j" (negative: back from the last captured
    layer). The forward stops after the last of them where the file can (see docs/model-file.md).
    The file is checked against its manifest with a two-token probe run.
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"path must be a str (a model file), found {type(path).__name__}")
    for value, name in ((device, "device"), (dtype, "dtype")):
        if value is not None and not isinstance(value, str):
            raise InvalidArgumentError(f"{name} must be a str, found {value!r} ({type(value).__name__})")
    path = None if path is None else os.fspath(path)
    return Model(_core.load(default_model.resolve(path), device, dtype, checks.threads(threads),
                            _layer_choice(layers)))


def _layer_choice(layers) -> List[int]:
    """A choice of captured layers as the engine takes it: [] for all of them (None or "all"), else layer numbers
    (negative: back from the last captured layer)."""
    if layers is None:
        return []
    if isinstance(layers, str):
        text = layers.strip().lower()
        if text == "all":
            return []
        if text == "last":
            return [-1]
        try:
            return [checks.index(int(part), "layer") for part in text.split(",")]
        except ValueError:
            raise InvalidArgumentError(f"layers {layers!r}: expected 'all', 'last', a layer number or a list of "
                                       "them ('3,7')") from None
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, (bool, np.bool_)):
        return [checks.index(layers, "layer")]
    if isinstance(layers, (bytes, dict, set, frozenset)) or not hasattr(layers, "__iter__"):
        raise InvalidArgumentError(f"layers {layers!r}: expected 'all', 'last', a layer number or a list of them")
    chosen = list(layers)
    if not chosen or not all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))
                             for x in chosen):
        raise InvalidArgumentError(f"layers {layers!r}: expected 'all', 'last', a layer number or a non-empty list "
                                   "of them")
    return [checks.index(x, "layer") for x in chosen]


def _as_ids(seq, what: str) -> List[int]:
    if isinstance(seq, (str, bytes)):
        raise InvalidArgumentError(f"{what} must be a sequence of token ids, not a string (use text=...)")
    _check_sequence(seq, what, "token ids")
    out = []
    for position, value in enumerate(seq):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InvalidArgumentError(f"{what} holds {value!r} at position {position}, expected an integer token id")
        if not checks.INT64_MIN <= int(value) <= checks.INT64_MAX:
            raise InvalidArgumentError(f"{what} holds {int(value)} at position {position}, outside the vocabulary "
                                       f"(token ids are 64-bit integers)")
        out.append(int(value))
    return out


def _check_sequence(value, what: str, of: str) -> None:
    """A list, tuple, NumPy array, range or other ordered sequence: not a dict, set, number or None."""
    if isinstance(value, (dict, set, frozenset)) or not isinstance(value, (list, tuple, range, np.ndarray)) and \
            not (hasattr(value, "__len__") and hasattr(value, "__getitem__")):
        raise InvalidArgumentError(f"{what} must be a list of {of}, found {type(value).__name__}")


def _is_batch(ids) -> bool:
    if isinstance(ids, (str, bytes)):
        raise InvalidArgumentError("ids must be a sequence of token ids, not a string (use text=...)")
    _check_sequence(ids, "ids", "token ids (or a list of such lists)")
    if isinstance(ids, np.ndarray):
        return ids.ndim == 2
    return len(ids) > 0 and isinstance(ids[0], (list, tuple, np.ndarray))


def _single(text, ids) -> bool:
    """Whether run/stream got one input (a str, or one sequence of ids) rather than a list of them."""
    if (text is None) == (ids is None):
        raise InvalidArgumentError("give exactly one of text= or ids=")
    if text is not None:
        return isinstance(text, str)
    return not _is_batch(ids)


def _inputs(text, ids) -> list:
    if text is not None:
        if isinstance(text, str):
            return [text]
        if isinstance(text, bytes):
            raise InvalidArgumentError("text must be a str or a list of str, not bytes")
        _check_sequence(text, "text", "str (or one str)")
        texts = list(text)
        if not texts:
            raise InvalidArgumentError("no texts given: there is nothing to run")
        return texts
    if _is_batch(ids):
        batch = list(ids)
        return batch
    return [ids]


class _Pair:
    """One input that is a text pair."""

    def __init__(self, text, pair):
        self.text, self.pair = text, pair


def _paired(inputs: list, text_pair, single: bool, is_text: bool) -> list:
    if not is_text:
        raise InvalidArgumentError("text_pair goes with text=..., not ids=")
    if single:
        if not isinstance(text_pair, str):
            raise InvalidArgumentError(f"text_pair must be a str with one text, found {type(text_pair).__name__}")
        return [_Pair(inputs[0], text_pair)]
    if isinstance(text_pair, (str, bytes)):
        raise InvalidArgumentError("text_pair must be a list as long as text when text is a list")
    pairs = list(text_pair)
    if len(pairs) != len(inputs):
        raise InvalidArgumentError(f"text has {len(inputs)} texts and text_pair {len(pairs)}: one pair text each")
    return [_Pair(t, p) for t, p in zip(inputs, pairs)]


def _utf8_text(text: str) -> str:
    """text, checked to be encodable as UTF-8 (a lone surrogate cannot be)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgumentError(f"text is not valid Unicode: {e.reason} at index {e.start}") from None
    return text


def _max_length(max_length) -> Optional[int]:
    if max_length is None:
        return None
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1 or \
            max_length > checks.INT64_MAX:
        raise InvalidArgumentError(f"max_length must be a positive number of tokens, found {max_length!r}")
    return int(max_length)


class Model:
    """A loaded model file: its manifest, and `run` to get a `Result` for token ids."""

    def __init__(self, core: "_core.Model"):
        self._core = core
        self.manifest: dict = json.loads(core.manifest_json)

    path = property(lambda self: self._core.path, doc="The model file.")
    device = property(lambda self: self._core.device, doc="Where the model runs, e.g. 'cpu' or 'cuda:0'.")
    dtype = property(lambda self: self._core.dtype, doc="'float32', 'float16' or 'bfloat16'.")
    family = property(lambda self: self.manifest["family"])
    num_layers = property(lambda self: self.manifest["num_layers"], doc="Layers of the whole model.")
    captured_layers = property(lambda self: list(self.manifest["captured_layers"]),
                               doc="The model's own numbers of the layers whose Q/K the file returns.")
    layers = property(lambda self: list(self._core.layers),
                      doc="The captured layers a run keeps unless it says otherwise (`load(layers=...)`).")
    num_heads = property(lambda self: self.manifest["num_heads"], doc="Query heads H.")
    num_kv_heads = property(lambda self: self.manifest["num_kv_heads"], doc="Key heads Hkv (grouped-query).")
    head_dim = property(lambda self: self.manifest["head_dim"], doc="Head size d.")
    causal = property(lambda self: self.manifest["causal"])
    max_positions = property(lambda self: self.manifest["max_positions"])
    vocab_size = property(lambda self: self.manifest["vocab_size"])

    @property
    def tokenizer(self) -> Optional[Tokenizer]:
        """The model file's tokenizer, or None when it has none (then it takes ids only)."""
        core = self._core.tokenizer
        return None if core is None else Tokenizer(core)

    def run(self, text: Optional[Union[str, Sequence[str]]] = None,
            ids: Optional[Union[Ids, Sequence[Ids], np.ndarray]] = None,
            add_special_tokens: bool = True, truncation: bool = False, max_length: Optional[int] = None,
            token_budget: Optional[int] = None,
            text_pair: Optional[Union[str, Sequence[str]]] = None, layers=None) -> Union["Result", List["Result"]]:
        """Runs one text or one sequence of token ids (→ Result), or a list of them (→ list of Results, in input
        order). Texts go through the file's tokenizer with the model's special tokens (`add_special_tokens=False`
        leaves them out); a text starting with a byte-order mark (U+FEFF) is tokenized without it.

        truncation, max_length: Hugging Face's names and meaning: with `truncation=True` each tokenized input is
            cut to `max_length` tokens, special tokens included (default: the model's max positions); the text's
            last tokens are dropped. Without it, an input longer than the model's positions is an error (see
            `run_windows` for a long text's every token).
        token_budget: a list runs in micro-batches: each a padded batch of rows × longest tokens kept within the
            budget (an input longer than the budget runs alone), inputs of similar length grouped together. Memory
            is then bounded by the budget, not by the list. Default: 512 padded tokens on the CPU, where bigger
            batches are not faster, 8,192 on CUDA devices (`attnprox.batching`).
        text_pair: sentence pairs for encoders, as Hugging Face's `tokenizer(text, text_pair=...)`: the second text
            of a pair (a str with one text, a list as long as a list of texts), encoded with the tokenizer's pair
            template (BERT: [CLS] text [SEP] pair [SEP]) and its token type ids (0 for the first text, 1 for the
            second) given to the model; with truncation the longer text is cut first ("longest_first"). Model files
            exported before attnprox took pairs refuse them (export again).
        layers: the captured layers the results keep, as in `load` (None: the model's choice, `Model.layers`;
            "all": every captured layer); the forward stops after the last of them where the file can.
        """
        single = _single(text, ids)
        results: list = []
        for index, result in self.stream(text, ids, token_budget=token_budget, add_special_tokens=add_special_tokens,
                                         truncation=truncation, max_length=max_length, text_pair=text_pair,
                                         layers=layers):
            results.append((index, result))
        results.sort(key=lambda pair: pair[0])
        return results[0][1] if single else [result for _, result in results]

    def stream(self, text: Optional[Union[str, Sequence[str]]] = None,
               ids: Optional[Union[Ids, Sequence[Ids], np.ndarray]] = None, token_budget: Optional[int] = None,
               add_special_tokens: bool = True, truncation: bool = False, max_length: Optional[int] = None,
               errors: str = "raise", text_pair: Optional[Union[str, Sequence[str]]] = None,
               layers=None) -> Iterator[Tuple[int, "Result"]]:
        """Runs inputs as `run` does and yields `(index, Result)` for each as soon as its micro-batch finishes:
        for streaming output and progress bars over long lists. `index` is the input's position in the list (0 for
        a single input); the order is the micro-batches' order (see `attnprox.batching`), not the input order.

        Every input is tokenized and checked before the first runs: a bad input (no tokens, too long, an id outside
        the vocabulary) raises at once, its message naming its index. With `errors="yield"` a bad input instead
        yields `(index, error)` (an `attnprox.Error`) and the others run.
        """
        if errors not in ("raise", "yield"):
            raise InvalidArgumentError(f"errors must be 'raise' or 'yield', found {errors!r}")
        budget = default_token_budget(self.device) if token_budget is None else checks.integer(
            token_budget, "token_budget", 1, checks.INT64_MAX)
        single = _single(text, ids)
        chosen = self._run_layers(layers)
        inputs = _inputs(text, ids)
        if text_pair is not None:
            inputs = _paired(inputs, text_pair, single, text is not None)
        prepared: List[Optional[tuple]] = [None] * len(inputs)
        for index, item in enumerate(inputs):
            # A raised error names its input; a yielded one comes with its index.
            label = None if single or errors == "yield" else f"{'text' if text is not None else 'ids'}[{index}]"
            try:
                prepared[index] = self._prepare(item, text is not None, add_special_tokens, truncation, max_length,
                                                label)
            except Error as e:
                if errors == "raise":
                    raise
                yield index, e
        runnable = [k for k in range(len(inputs)) if prepared[k] is not None]
        lengths = [len(prepared[k][1]) for k in runnable]
        for batch in micro_batches(lengths, budget):
            members = [runnable[k] for k in batch]
            results = None  # the previous batch's Results are the caller's now: hold none while this one runs
            try:
                results = self._run_prepared([prepared[k] for k in members], chosen)
            except Error:
                if errors == "raise" or len(members) == 1:
                    raise
                results = None
            if results is not None:
                yield from zip(members, results)
                continue
            for k in members:  # one input of the batch failed: run them one by one to name it
                try:
                    yield k, self._run_prepared([prepared[k]], chosen)[0]
                except Error as e:
                    yield k, e

    def run_windows(self, text: Optional[str] = None, ids: Optional[Ids] = None, window: Optional[int] = None,
                    stride: Optional[int] = None, add_special_tokens: bool = True,
                    token_budget: Optional[int] = None, layers=None) -> "Windowed":
        """A text longer than the model's positions, read in overlapping windows (docs/long-texts.md).

        The text is tokenized once; windows of its tokens, starting every `stride` tokens, each run as its own
        sequence with the model's special tokens around it as around a text (none for ids). `window` is a window's
        whole length, special tokens included (default: the model's max positions); `stride` counts text tokens
        (default: half of a window's text tokens). The last window ends at the text's end. The `Windowed` it returns
        holds every window's Result and the text's AP, AP_i, APE and iAPE_i gathered over them. `layers` chooses
        the captured layers every window's Result keeps, as in `run`."""
        from .windows import run_windows

        return run_windows(self, text=text, ids=ids, window=window, stride=stride,
                           add_special_tokens=add_special_tokens, token_budget=token_budget, layers=layers)

    def encode(self, text: str, add_special_tokens: bool = True, truncation: bool = False,
               max_length: Optional[int] = None) -> "_core.Encoding":
        """The encoding `run(text=...)` runs: `.ids`, `.tokens`, `.offsets` (bytes), `.char_offsets`, `.special`."""
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text must be a str, not {type(text).__name__}")
        return self._core.encode(_utf8_text(text), add_special_tokens, truncation, _max_length(max_length))

    def _prepare(self, item, is_text: bool, add_special_tokens: bool, truncation: bool, max_length, label):
        """(text or None, ids, encoding or None, pair or None) of one input (a text pair: a _Pair), checked as the
        engine will check it."""
        pair = None
        try:
            if isinstance(item, _Pair):
                item, pair = item.text, item.pair
                for value in (item, pair):
                    if not isinstance(value, str):
                        raise InvalidArgumentError(f"a text pair holds two str, found {type(value).__name__}")
                encoding = self._core.encode_pair(_utf8_text(item), _utf8_text(pair), add_special_tokens, truncation,
                                                  _max_length(max_length))
                ids = list(encoding.ids)
            elif is_text:
                if not isinstance(item, str):
                    raise InvalidArgumentError(f"text must be a str or a list of str, found {type(item).__name__}")
                encoding = self.encode(item, add_special_tokens, truncation, max_length)
                ids = list(encoding.ids)
            else:
                encoding = None
                ids = _as_ids(item, "ids" if label is None else label)
                limit = _max_length(max_length)
                if truncation:
                    ids = ids[:self.max_positions if limit is None else limit]
                elif limit is not None:
                    raise InvalidArgumentError("max_length is given without truncation (truncation=True cuts inputs "
                                               "to max_length tokens)")
            self._core.check_ids(ids)
        except Error as e:
            if label is None:
                raise
            raise type(e)(f"{label}: {e}") from None
        return (item if is_text else None), ids, encoding, pair

    def _run_prepared(self, prepared: list, layers: Optional[List[int]] = None) -> List["Result"]:
        """One padded batch of prepared inputs (all texts, all text pairs or all ids), keeping `layers` (the
        engine's choice, `_run_layers`; None or []: the model's)."""
        chosen = list(layers or [])
        if prepared[0][2] is not None:
            pairs = [p[3] for p in prepared] if prepared[0][3] is not None else []
            core = self._core.run_encoded([p[0] for p in prepared], [p[2] for p in prepared], pairs, chosen)
        else:
            core = self._core.run_batch([p[1] for p in prepared], chosen)
        return [Result(r, self) for r in core]

    def _run_layers(self, layers) -> List[int]:
        """A run's choice for the engine: [] keeps the model's choice; "all" is every captured layer."""
        if isinstance(layers, str) and layers.strip().lower() == "all":
            return self.captured_layers
        return _layer_choice(layers)

    def __repr__(self) -> str:
        m = self.manifest
        return (f"<attnprox.Model {m['family']} '{self.path}': {len(m['captured_layers'])}/{m['num_layers']} layers "
                f"captured, H={m['num_heads']} Hkv={m['num_kv_heads']} d={m['head_dim']}, "
                f"{'causal' if m['causal'] else 'bidirectional'}, {self.dtype} on {self.device}>")


def _layer_list(layers) -> List[int]:
    return checks.index_list(layers, "layer")


def _head_list(heads) -> List[int]:
    return checks.index_list(heads, "head")


def _L(layer) -> int:
    return checks.index(layer, "layer")


def _H(head) -> Optional[int]:
    return checks.head(head)


def _T(temperature) -> float:
    return checks.temperature(temperature)


def _P(value, name: str) -> int:
    return checks.position(value, name)


def _K(k) -> int:
    return checks.integer(k, "k", 1, checks.INT64_MAX)


def _positions(indices) -> List[int]:
    if isinstance(indices, (str, bytes, dict, set, frozenset)) or not hasattr(indices, "__iter__"):
        raise InvalidArgumentError(f"indices must be a list of token positions, found {indices!r}")
    return [_P(i, "token position") for i in indices]


def _count(k, top, method: str) -> Optional[int]:
    """`k`, "how many", given as `k` or by its deprecated name `top`; a positive int or None."""
    if top is not None:
        if k is not None:
            raise InvalidArgumentError(f"{method}: give k, not both k and top (top is its deprecated name)")
        warnings.warn(f"{method}(top=...) is deprecated: use k=...", DeprecationWarning, stacklevel=3)
        k = top
    if k is None:
        return None
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise InvalidArgumentError(f"k must be a whole number, found {k!r}")
    if k < 1:
        raise InvalidArgumentError(f"k must be at least 1, found {k}")
    return int(k)


class Result:
    """What the model's attention saw for one sequence. `layer` is the model's own layer number (0-based);
    negative numbers count back from the last layer the result holds (-1, the default, is the last). Arrays are NumPy:
    queries/keys float32 (converted from the model's dtype), attention and proximity float32, AP float64. Every
    array method also takes `torch=True` for a torch tensor instead, as `result.torch.<method>` gives it (sharing
    memory with attnprox, on the model's device, queries and keys in the model's dtype)."""

    def __init__(self, core: "_core.Result", model: Model):
        self._core = core
        self.model = model

    @property
    def ids(self) -> List[int]:
        return list(self._core.ids)

    @property
    def layers(self) -> List[int]:
        """The model's own numbers of the layers this result holds (those its run kept), ascending."""
        return list(self._core.layers)

    @property
    def text(self) -> Optional[str]:
        """The text that was run, or None when ids were given."""
        return self._core.text if self._core.offsets else None

    @property
    def text_pair(self) -> Optional[str]:
        """The second text of a text pair, or None."""
        return self._core.text_pair if 1 in self._core.sequence_ids else None

    @property
    def token_type_ids(self) -> List[int]:
        """The token type ids the model was given (0 but for the second text of a pair)."""
        return list(self._core.type_ids)

    @property
    def sequence_ids(self) -> Optional[List[Optional[int]]]:
        """Which text each token comes from: 0 `text`, 1 `text_pair`, None for the special tokens added around them
        (as Hugging Face's `Encoding.sequence_ids`); None when ids were given."""
        if not self._core.offsets:
            return None
        return [None if s < 0 else s for s in self._core.sequence_ids]

    @property
    def tokens(self) -> Optional[List[str]]:
        """The tokens as the tokenizer's vocabulary writes them (e.g. "Ġworld", "##ing"); None when the model file
        has no tokenizer."""
        tokens = self._core.tokens
        return list(tokens) if tokens or self.model._core.tokenizer is not None else None

    @property
    def offsets(self) -> Optional[List[tuple]]:
        """Where each token lies in `text` (tokens of a pair's second text: in `text_pair`): (start, end) character
        indices of the str (special tokens the tokenizer added have (0, 0)); None when ids were given."""
        return [tuple(o) for o in self._core.char_offsets] if self._core.offsets else None

    @property
    def byte_offsets(self) -> Optional[List[tuple]]:
        """As `offsets`, in bytes of the UTF-8 text."""
        return [tuple(o) for o in self._core.offsets] if self._core.offsets else None

    @property
    def token_texts(self) -> Optional[List[str]]:
        """The piece of `text` each token covers (special tokens added around the text: their own string); when
        ids were given, each token decoded alone. Meant for labels in pictures."""
        if self._core.offsets:
            texts, tokens = (self._core.text, self._core.text_pair), self._core.tokens
            sequences = self._core.sequence_ids
            return [texts[max(sequences[k], 0)][a:b] if b > a else tokens[k]
                    for k, (a, b) in enumerate(self._core.char_offsets)]
        tokenizer = self.model.tokenizer
        if tokenizer is None:
            return None
        return [tokenizer.decode([i]) for i in self.ids]

    @property
    def token_labels(self) -> List[str]:
        """Each token as the tokenizer sees it, readable: its string decoded alone (byte-level "Ġworld" is
        " world", "Ċ" a newline; BERT's pieces stay "##ing" and lower-cased as the model read them; special tokens
        as written, "[CLS]"). A token that is part of a character split over several tokens shows "\ufffd". The
        ids as strings when the model file has no tokenizer. Meant for labels in pictures and views."""
        tokenizer = self.model._core.tokenizer
        if tokenizer is None:
            return [str(i) for i in self.ids]
        labels = []
        for token_id in self.ids:
            try:
                labels.append(tokenizer.decode([token_id], False))
            except Error:  # an id of the model that the tokenizer lacks
                labels.append(str(token_id))
        return labels

    def __len__(self) -> int:
        return self._core.num_tokens

    def layer_number(self, layer: int = -1) -> int:
        """The model's own number of `layer` as this result's methods read it (negative: back from the last layer the
        run kept); OutOfRangeError for a layer the result does not hold."""
        return resolve_layer(layer, self.layers, self.model.num_layers, self.model.captured_layers)

    def queries(self, layer: int = -1, torch: bool = False, rope: bool = True) -> np.ndarray:
        """Queries `[H, N, d]` exactly as the attention sees them (after rotary embeddings and q-norm); `rope=False`:
        before the rotary embedding (what the proximity family measures by default; docs/measurements.md §1)."""
        return self.torch.queries(_L(layer), rope=rope) if torch else self._core.queries(_L(layer), rope=rope)

    def keys(self, layer: int = -1, torch: bool = False, rope: bool = True) -> np.ndarray:
        """Keys `[Hkv, N, d]`; query head h reads key head h // (H // Hkv). `rope=False`: before RoPE."""
        return self.torch.keys(_L(layer), rope=rope) if torch else self._core.keys(_L(layer), rope=rope)

    def attention(self, layer: int = -1, head: Optional[int] = None, temperature: float = 1.0,
                  torch: bool = False) -> np.ndarray:
        """Attention weights rebuilt from Q and K: `[H, N, N]`, or `[N, N]` for one head. Rows are queries."""
        if torch:
            return self.torch.attention(layer, head, temperature)
        return self._core.attention(_L(layer), _H(head), _T(temperature))

    def average_attention(self, layers=None, heads=None, temperature: float = 1.0, torch: bool = False) -> np.ndarray:
        """Mean attention weights `[N, N]` over layers × heads (None: every layer the result holds, every head)."""
        if torch:
            return self.torch.average_attention(layers, heads, temperature)
        return self._core.average_attention(_layer_list(layers), _head_list(heads), _T(temperature))

    # The proximity family (proximity, ap_tokens, ap, subset_proximity, ape, ape_tokens, average_proximity) measures
    # the queries and keys before the rotary embedding by default, as the original Attention Proximity code does;
    # `rope=True` measures those the attention used (docs/measurements.md §1). Models without RoPE: the same.

    def proximity(self, layer: int = -1, torch: bool = False, rope: bool = False) -> np.ndarray:
        """The proximity matrix A `[N, N]`: A = (A_raw + A_rawᵀ)/2, A_raw = mean_h Q_h K_hᵀ / sqrt(d)."""
        return self.torch.proximity(layer, rope=rope) if torch else self._core.proximity(_L(layer), rope=rope)

    def ap_tokens(self, layer: int = -1, torch: bool = False, rope: bool = False) -> np.ndarray:
        """Per-token Attention Proximity AP_i = Σ_{j≠i} A_ij / (N−1), `[N]` float64 (needs N ≥ 2)."""
        return self.torch.ap_tokens(layer, rope=rope) if torch else self._core.ap_tokens(_L(layer), rope=rope)

    def ap(self, layer: int = -1, rope: bool = False) -> float:
        """The text's Attention Proximity AP = mean_i AP_i."""
        return self._core.ap(_L(layer), rope=rope)

    def subset_proximity(self, indices: Sequence[int], layer: int = -1, torch: bool = False,
                         rope: bool = False) -> np.ndarray:
        """AP^(S)_j = mean_{i∈S} A_ij for every token j, `[N]` float64; S = `indices` (token positions, duplicates
        count once)."""
        if torch:
            return self.torch.subset_proximity(indices, layer, rope=rope)
        return self._core.subset_proximity(_positions(indices), _L(layer), rope=rope)

    def ape(self, layer: int = -1, policy: Optional[str] = None, rope: bool = False) -> APE:
        """Attention Proximity Entropy: a float (mean iAPE over the defined rows) with `.normalized` (length-
        corrected by log(N−1)), `.undefined_rows`, `.tokens`, `.defined`, `.policy`. Policies for rows with negative
        entries: "shift" (default, the original code's formula), "literal", "clamp", "softmax" (attnprox.metrics)."""
        return APE.from_report(self._core.ape(_L(layer), policy_name(policy), rope=rope))

    def ape_tokens(self, layer: int = -1, policy: Optional[str] = None, torch: bool = False,
                   rope: bool = False) -> np.ndarray:
        """iAPE_i per token `[N]` float64, NaN exactly where the policy leaves the row undefined (their count:
        `ape(...).undefined_rows`)."""
        return self.torch.ape_tokens(layer, policy, rope=rope) if torch else self.ape(layer, policy, rope=rope).tokens

    def average_proximity(self, layers=None, heads=None, symmetric: bool = True, torch: bool = False,
                          rope: bool = False) -> np.ndarray:
        """Mean of A_h = Q_h K_{g(h)}ᵀ / sqrt(d) over layers × heads (None: all) `[N, N]`; symmetrised by default
        (one layer, all heads: `proximity(layer)`)."""
        if torch:
            return self.torch.average_proximity(layers, heads, symmetric, rope=rope)
        return self._core.average_proximity(_layer_list(layers), _head_list(heads), symmetric, rope=rope)

    def attention_entropy(self, layer: int = -1, normalized: bool = False, temperature: float = 1.0,
                          torch: bool = False) -> np.ndarray:
        """Per-query entropy of every head's attention `[H, N]` (nats); `normalized` divides by the log of the keys
        each query can see (0 where it sees one)."""
        if torch:
            return self.torch.attention_entropy(layer, normalized, temperature)
        return self._core.attention_entropy(_L(layer), normalized, _T(temperature))

    def attention_stats(self, layer: int = -1, head: Optional[int] = None, temperature: float = 1.0) -> AttentionStats:
        """Statistics of one head's attention, or of the mean of the layer's heads: entropy and normalized_entropy
        per query and their means; max_weights and argmax_keys per query (its largest weight and that key);
        max_weight (at max_query, max_key), the largest over the queries that see at least two keys (on a causal
        model the first token gives its only key weight 1); received per token and most_attended."""
        return AttentionStats(**self._core.attention_stats(_L(layer), _H(head), _T(temperature)))

    def top_arcs(self, query: int, k: int = 5, layer: int = -1, head: Optional[int] = None,
                 temperature: float = 1.0) -> List[tuple]:
        """The k strongest arcs (key, weight) of a query token, strongest first (one head, or the heads' mean), to the
        keys it sees: fewer than k when it sees fewer (on a causal model, token i sees keys 0..i)."""
        return [tuple(a) for a in self._core.top_arcs(_P(query, "query"), _K(k), _L(layer), _H(head), _T(temperature))]

    def linking_heads(self, a: int, b: int, k: Optional[int] = None, temperature: float = 1.0, *,
                      top: Optional[int] = None) -> List[tuple]:
        """Every captured (layer, head, score) ranked by score = max(P[a, b], P[b, a]): the heads that link tokens
        a and b, strongest first (ties in layer, then head order); `k` keeps the first k (None: all). `top=` is
        the former name of `k`, deprecated."""
        k = _count(k, top, "linking_heads")
        links = [tuple(x) for x in self._core.linking_heads(_P(a, "a"), _P(b, "b"), _T(temperature))]
        return links if k is None else links[:k]

    @property
    def torch(self) -> "TorchView":
        """The same arrays as torch tensors, sharing memory with attnprox (DLPack; on the model's device, queries
        and keys in the model's dtype): `result.torch.attention(-1)`."""
        return TorchView(self)

    def view(self, layer=-1, temperature: float = 1.0, policy: Optional[str] = None, **options):
        """The interactive view of this text: the heatmap (proximity or attention, of a layer, a head or a mean)
        beside the text coloured by AP_i, iAPE_i or the subset proximity of clicked tokens, a histogram, a head view,
        top arcs, a stats panel. Shows itself in Jupyter; `.save("view.html")` writes it, `.export()` is what it
        shows as data. Options (head, kind, measure, selection, scheme, scaling, layers, max_bytes): attnprox.View."""
        from .view import View

        return View(self, layer=layer, temperature=temperature, policy=policy, **options)

    def summary(self, layer: int = -1, policy: Optional[str] = None, rope: bool = False) -> dict:
        """The scalar measurements of the text at a layer, for tables: n, ap, ape, ape_normalized,
        ape_undefined_rows, mean_entropy, mean_normalized_entropy, max_weight, most_attended."""
        ape = self.ape(layer, policy, rope=rope) if len(self) >= 2 else None
        stats = self.attention_stats(layer)
        return {"n": len(self), "ap": self.ap(layer, rope=rope) if len(self) >= 2 else None,
                "ape": None if ape is None or math.isnan(ape) else float(ape),
                "ape_normalized": None if ape is None else ape.normalized,
                "ape_undefined_rows": None if ape is None else ape.undefined_rows,
                "mean_entropy": stats.mean_entropy, "mean_normalized_entropy": stats.mean_normalized_entropy,
                "max_weight": stats.max_weight, "most_attended": stats.most_attended}

    def __repr__(self) -> str:
        text = "" if self.text is None else f" {self.text[:40]!r}{'…' if len(self.text) > 40 else ''}"
        return f"<attnprox.Result {len(self)} tokens{text}, {self.model.family}>"

    def _repr_html_(self) -> str:
        """A compact card in Jupyter: the measurements and the text coloured by AP_i (`view()` is interactive)."""
        import html

        head = html.escape(repr(self))
        if len(self) < 2:
            return f"<div><code>{head}</code></div>"
        values = self.ap_tokens()
        bound = float(np.abs(values).max()) or 1.0
        spans = []
        labels = self.token_labels
        for label, value in zip(labels, values):
            t = max(-1.0, min(1.0, float(value) / bound))
            color = f"rgba(178,24,43,{t:.3f})" if t > 0 else f"rgba(33,102,172,{-t:.3f})"
            spans.append(f'<span title="AP_i = {value:.4f}" style="background:{color};padding:1px 2px;'
                         f'border-radius:3px">{html.escape(label)}</span>')
        s = self.summary()
        ape = "undefined" if s["ape"] is None else f"{s['ape']:.4f}"
        return (f"<div style='font-family:sans-serif'><code>{head}</code><br>"
                f"<b>AP</b> {s['ap']:.4f} · <b>APE</b> {ape} · <b>mean attention entropy</b> "
                f"{s['mean_entropy']:.3f} (last layer)<div style='margin-top:4px;line-height:1.8'>"
                f"{''.join(spans)}</div></div>")


class TorchView:
    """Result arrays as torch tensors (zero-copy through DLPack). Same names and arguments as Result's."""

    def __init__(self, result: Result):
        import torch.utils.dlpack

        self._result = result
        self._from = torch.utils.dlpack.from_dlpack

    def queries(self, layer: int = -1, rope: bool = True):
        return self._from(self._result._core.queries(_L(layer), torch=True, rope=rope))

    def keys(self, layer: int = -1, rope: bool = True):
        return self._from(self._result._core.keys(_L(layer), torch=True, rope=rope))

    def attention(self, layer: int = -1, head: Optional[int] = None, temperature: float = 1.0):
        return self._from(self._result._core.attention(_L(layer), _H(head), _T(temperature), torch=True))

    def average_attention(self, layers=None, heads=None, temperature: float = 1.0):
        return self._from(self._result._core.average_attention(_layer_list(layers), _head_list(heads), _T(temperature),
                                                               torch=True))

    def proximity(self, layer: int = -1, rope: bool = False):
        return self._from(self._result._core.proximity(_L(layer), torch=True, rope=rope))

    def ap_tokens(self, layer: int = -1, rope: bool = False):
        return self._from(self._result._core.ap_tokens(_L(layer), torch=True, rope=rope))

    def subset_proximity(self, indices: Sequence[int], layer: int = -1, rope: bool = False):
        return self._from(self._result._core.subset_proximity(_positions(indices), _L(layer), torch=True,
                                                              rope=rope))

    def average_proximity(self, layers=None, heads=None, symmetric: bool = True, rope: bool = False):
        return self._from(self._result._core.average_proximity(_layer_list(layers), _head_list(heads), symmetric,
                                                               torch=True, rope=rope))

    def attention_entropy(self, layer: int = -1, normalized: bool = False, temperature: float = 1.0):
        return self._from(self._result._core.attention_entropy(_L(layer), normalized, _T(temperature), torch=True))

    def ape_tokens(self, layer: int = -1, policy: Optional[str] = None, rope: bool = False):
        import torch

        return torch.from_numpy(self._result.ape(layer, policy, rope=rope).tokens)
