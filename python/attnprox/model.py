"""Loading model files and reading what their attention sees: `load`, `Model`, `Result`."""
import json
import math
from typing import List, Optional, Sequence, Union

import numpy as np

from . import _core, default_model
from .errors import InvalidArgumentError
from .metrics import APE, AttentionStats, policy_name
from .tokenizer import Tokenizer

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
    return Model(_core.load(default_model.resolve(path), device, dtype, int(threads), _layer_choice(layers)))


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
            return [int(part) for part in text.split(",")]
        except ValueError:
            raise InvalidArgumentError(f"layers {layers!r}: expected 'all', 'last', a layer number or a list of "
                                       "them ('3,7')") from None
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, (bool, np.bool_)):
        return [int(layers)]
    chosen = list(layers)
    if not chosen or not all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))
                             for x in chosen):
        raise InvalidArgumentError(f"layers {layers!r}: expected 'all', 'last', a layer number or a non-empty list "
                                   "of them")
    return [int(x) for x in chosen]


def _as_ids(seq, what: str) -> List[int]:
    if isinstance(seq, (str, bytes)):
        raise InvalidArgumentError(f"{what} must be a sequence of token ids, not a string (use text=...)")
    out = []
    for position, value in enumerate(seq):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InvalidArgumentError(f"{what} holds {value!r} at position {position}, expected an integer token id")
        out.append(int(value))
    return out


def _is_batch(ids) -> bool:
    if isinstance(ids, np.ndarray):
        return ids.ndim == 2
    return len(ids) > 0 and isinstance(ids[0], (list, tuple, np.ndarray))


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
            add_special_tokens: bool = True, layers=None) -> Union["Result", List["Result"]]:
        """Runs one text or one sequence of token ids (→ Result), or a list of them (→ list of Results, run as
        one padded batch). Texts go through the file's tokenizer with the model's special tokens
        (`add_special_tokens=False` leaves them out). `layers` chooses the captured layers the results keep, as
        in `load` (None: the model's choice, `Model.layers`); the forward stops after the last of them where the
        file can."""
        if (text is None) == (ids is None):
            raise InvalidArgumentError("give exactly one of text= or ids=")
        chosen = self._run_layers(layers)
        if text is not None:
            if isinstance(text, str):
                return Result(self._core.run_texts([text], add_special_tokens, chosen)[0], self)
            texts = list(text)
            if not all(isinstance(t, str) for t in texts):
                raise InvalidArgumentError("text must be a str or a list of str")
            return [Result(r, self) for r in self._core.run_texts(texts, add_special_tokens, chosen)]
        if _is_batch(ids):
            batch = [_as_ids(seq, f"ids[{b}]") for b, seq in enumerate(ids)]
            return [Result(r, self) for r in self._core.run_batch(batch, chosen)]
        return Result(self._core.run_ids(_as_ids(ids, "ids"), chosen), self)

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
    if layers is None:
        return []
    if isinstance(layers, (int, np.integer)):
        return [int(layers)]
    return [int(x) for x in layers]


class Result:
    """What the model's attention saw for one sequence. `layer` is the model's own layer number (0-based);
    negative numbers count back from the last layer the result holds (-1, the default, is the last). Arrays are NumPy:
    queries/keys float32 (converted from the model's dtype), attention and proximity float32, AP float64."""

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
    def tokens(self) -> Optional[List[str]]:
        """The tokens as the tokenizer's vocabulary writes them (e.g. "Ġworld", "##ing"); None when the model file
        has no tokenizer."""
        tokens = self._core.tokens
        return list(tokens) if tokens or self.model._core.tokenizer is not None else None

    @property
    def offsets(self) -> Optional[List[tuple]]:
        """Where each token lies in `text`: (start, end) character indices of the str (special tokens the
        tokenizer added have (0, 0)); None when ids were given."""
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
            text, tokens = self._core.text, self._core.tokens
            return [text[a:b] if b > a else tokens[k] for k, (a, b) in enumerate(self._core.char_offsets)]
        tokenizer = self.model.tokenizer
        if tokenizer is None:
            return None
        return [tokenizer.decode([i]) for i in self.ids]

    def __len__(self) -> int:
        return self._core.num_tokens

    def queries(self, layer: int = -1) -> np.ndarray:
        """Queries `[H, N, d]` exactly as the attention sees them (after rotary embeddings and q-norm)."""
        return self._core.queries(layer)

    def keys(self, layer: int = -1) -> np.ndarray:
        """Keys `[Hkv, N, d]`; query head h reads key head h // (H // Hkv)."""
        return self._core.keys(layer)

    def attention(self, layer: int = -1, head: Optional[int] = None, temperature: float = 1.0) -> np.ndarray:
        """Attention weights rebuilt from Q and K: `[H, N, N]`, or `[N, N]` for one head. Rows are queries."""
        return self._core.attention(layer, head, temperature)

    def average_attention(self, layers=None, heads=None, temperature: float = 1.0) -> np.ndarray:
        """Mean attention weights `[N, N]` over layers × heads (None: every layer the result holds, every head)."""
        return self._core.average_attention(_layer_list(layers), _layer_list(heads), temperature)

    def proximity(self, layer: int = -1) -> np.ndarray:
        """The proximity matrix A `[N, N]`: A = (A_raw + A_rawᵀ)/2, A_raw = mean_h Q_h K_hᵀ / sqrt(d)."""
        return self._core.proximity(layer)

    def ap_tokens(self, layer: int = -1) -> np.ndarray:
        """Per-token Attention Proximity AP_i = Σ_{j≠i} A_ij / (N−1), `[N]` float64 (needs N ≥ 2)."""
        return self._core.ap_tokens(layer)

    def ap(self, layer: int = -1) -> float:
        """The text's Attention Proximity AP = mean_i AP_i."""
        return self._core.ap(layer)

    def subset_proximity(self, indices: Sequence[int], layer: int = -1) -> np.ndarray:
        """AP^(S)_j = mean_{i∈S} A_ij for every token j, `[N]` float64; S = `indices` (token positions, duplicates
        count once)."""
        return self._core.subset_proximity([int(i) for i in indices], layer)

    def ape(self, layer: int = -1, policy: Optional[str] = None) -> APE:
        """Attention Proximity Entropy: a float (mean iAPE over the defined rows) with `.normalized` (length-
        corrected by log(N−1)), `.undefined_rows`, `.tokens`, `.defined`, `.policy`. Policies for rows with negative
        entries: "shift" (default), "literal", "clamp", "softmax" (attnprox.metrics)."""
        return APE(self._core.ape(layer, policy_name(policy)))

    def ape_tokens(self, layer: int = -1, policy: Optional[str] = None) -> np.ndarray:
        """iAPE_i per token `[N]` float64, NaN exactly where the policy leaves the row undefined (their count:
        `ape(...).undefined_rows`)."""
        return self.ape(layer, policy).tokens

    def average_proximity(self, layers=None, heads=None, symmetric: bool = True) -> np.ndarray:
        """Mean of A_h = Q_h K_{g(h)}ᵀ / sqrt(d) over layers × heads (None: all) `[N, N]`; symmetrised by default
        (one layer, all heads: `proximity(layer)`)."""
        return self._core.average_proximity(_layer_list(layers), _layer_list(heads), symmetric)

    def attention_entropy(self, layer: int = -1, normalized: bool = False, temperature: float = 1.0) -> np.ndarray:
        """Per-query entropy of every head's attention `[H, N]` (nats); `normalized` divides by the log of the keys
        each query can see (0 where it sees one)."""
        return self._core.attention_entropy(layer, normalized, temperature)

    def attention_stats(self, layer: int = -1, head: Optional[int] = None, temperature: float = 1.0) -> AttentionStats:
        """Statistics of one head's attention, or of the mean of the layer's heads: entropy and normalized_entropy
        per query and their means, max_weight (at max_query, max_key), received per token and most_attended."""
        return AttentionStats(self._core.attention_stats(layer, head, temperature))

    def top_arcs(self, query: int, k: int = 5, layer: int = -1, head: Optional[int] = None,
                 temperature: float = 1.0) -> List[tuple]:
        """The k strongest arcs (key, weight) of a query token, strongest first (one head, or the heads' mean)."""
        return [tuple(a) for a in self._core.top_arcs(int(query), int(k), layer, head, temperature)]

    def linking_heads(self, a: int, b: int, top: Optional[int] = None, temperature: float = 1.0) -> List[tuple]:
        """Every captured (layer, head, score) ranked by score = max(P[a, b], P[b, a]): the heads that link tokens
        a and b, strongest first."""
        links = [tuple(x) for x in self._core.linking_heads(int(a), int(b), temperature)]
        return links if top is None else links[:top]

    @property
    def torch(self) -> "TorchView":
        """The same arrays as torch tensors, sharing memory with attnprox (DLPack; on the model's device, queries
        and keys in the model's dtype): `result.torch.attention(-1)`."""
        return TorchView(self)

    def view(self, layer: int = -1, temperature: float = 1.0, policy: Optional[str] = None):
        """The interactive view of this text at a layer: proximity heatmap beside the text, subset proximity of
        clicked tokens, top arcs, a stats panel. Shows itself in Jupyter; `.save("view.html")` writes it."""
        from .view import View

        return View(self, layer=layer, temperature=temperature, policy=policy)

    def summary(self, layer: int = -1, policy: Optional[str] = None) -> dict:
        """The scalar measurements of the text at a layer, for tables: n, ap, ape, ape_normalized,
        ape_undefined_rows, mean_entropy, mean_normalized_entropy, max_weight, most_attended."""
        ape = self.ape(layer, policy) if len(self) >= 2 else None
        stats = self.attention_stats(layer)
        return {"n": len(self), "ap": self.ap(layer) if len(self) >= 2 else None,
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
        labels = self.token_texts or [str(i) for i in self.ids]
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

    def queries(self, layer: int = -1):
        return self._from(self._result._core.queries(layer, torch=True))

    def keys(self, layer: int = -1):
        return self._from(self._result._core.keys(layer, torch=True))

    def attention(self, layer: int = -1, head: Optional[int] = None, temperature: float = 1.0):
        return self._from(self._result._core.attention(layer, head, temperature, torch=True))

    def average_attention(self, layers=None, heads=None, temperature: float = 1.0):
        return self._from(self._result._core.average_attention(_layer_list(layers), _layer_list(heads), temperature,
                                                               torch=True))

    def proximity(self, layer: int = -1):
        return self._from(self._result._core.proximity(layer, torch=True))

    def ap_tokens(self, layer: int = -1):
        return self._from(self._result._core.ap_tokens(layer, torch=True))

    def subset_proximity(self, indices: Sequence[int], layer: int = -1):
        return self._from(self._result._core.subset_proximity([int(i) for i in indices], layer, torch=True))

    def average_proximity(self, layers=None, heads=None, symmetric: bool = True):
        return self._from(self._result._core.average_proximity(_layer_list(layers), _layer_list(heads), symmetric,
                                                               torch=True))

    def attention_entropy(self, layer: int = -1, normalized: bool = False, temperature: float = 1.0):
        return self._from(self._result._core.attention_entropy(layer, normalized, temperature, torch=True))
