"""`attnprox.export`: a Hugging Face model → an attnprox model file, through `transformers` itself.

How it works (the file it writes: docs/model-file.md):

1. The model is loaded with `transformers` (`AutoModel`: the base model, no head; an encoder–decoder model runs
   its decoder on the same ids as its encoder, so that every captured layer is N × N).
2. An attention function is registered in the attention-function registry of `transformers`
   (`AttentionInterface`), and the model is switched to it. The function records the query and key tensors it
   receives — exactly what the model's attention multiplies, after rotary embeddings and q/k norms — and then
   calls the attention the model would have used anyway: SDPA, or the model's own eager attention where SDPA
   cannot express it (attention sinks, soft-caps). The mask registry gets a function of ours too: instead of an
   N × N mask for the whole model it hands each layer the `[B, 1, 1, N]` key mask of the batch, and each layer
   builds what it needs from positions (`_layer_mask`): nothing for a causal layer (SDPA's `is_causal`, flash
   kernels; the engine pads on the right), the key mask for a bidirectional one, its own mask for a sliding
   window or eager attention.
3. A first, eager run records each attention call: its module, shapes, scaling, sliding window, soft-cap,
   sinks, whether it is causal and whether it is cross-attention. The layers of the model file are these calls
   in the order the model makes them (an encoder–decoder model: the encoder's layers, then each decoder layer's
   self-attention followed by its cross-attention).
4. The model is traced to TorchScript (`torch.jit.trace`) on a padded batch. Computation stops at the last
   captured layer's queries and keys (the registered function raises, and the wrapper returns what it has).
   The trace takes a third input, which captured layers to keep (a bool tensor), and, for models with segment
   embeddings (BERT), the token type ids as a fourth; the file's scripted `forward` and `forward_layers`
   (docs/model-file.md) call it, the latter with the layers asked for, both taking the token type ids as an
   optional last argument where the manifest lists them.
5. The manifest and `tokenizer.json` are stored in the file, and the file is verified before `export` returns:
   the attnprox engine loads it and rebuilds the attention of every captured layer for several inputs (other
   lengths than the trace's, a padded batch), which must equal `output_attentions=True` of the same model with
   `transformers`' eager attention (in float16 and bfloat16: transformers' eager attention computed in float32
   from the queries and keys of the same forward, one sequence and the same padded batch, within what float32
   rounding and any difference between the two forwards' queries and keys explain; see `verify`). A file that
   fails is deleted, and the error names the layer and the difference.

Models whose attention is not `softmax(scaling · Q Kᵀ + mask)` with the extras the manifest can say (sliding
windows, soft-caps, sinks) — relative position biases (T5), ALiBi (BLOOM, MPT) — cannot be captured: the export
refuses them with the reason.
"""
import json
import math
import os
import sys
import threading
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import torch

from .errors import ExportError
from .model_file import (FORMAT, FORMAT_VERSION, MANIFEST_NAME, TOKENIZER_NAME, check_tokenizer, dtype_names,
                         parse_dtype, tokenizer_facts)
from .reference.model import Layers, parse_layers
from .reference.tokenizer_files import tokenizer_json_of

_CAPTURE = "attnprox_capture"
_DTYPE_NAMES = dtype_names()
# Verification bound on |rebuilt − output_attentions| in float32 (1e-5: docs/measurements.md §2). In float16 and bfloat16 the bound
# of each comparison is computed from its queries and keys (_float32_bound).
TOLERANCE = {torch.float32: 1e-5}
# Unit roundoff of the reduced-precision dtypes (round to nearest: 2^-(significand bits)), and of float32.
_UNIT_ROUNDOFF = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
_FLOAT32_UNIT = 2.0**-24
# Keyword arguments some models hand their attention function that the manifest cannot express.
_UNSUPPORTED_KWARGS = {"position_bias": "a relative position bias (T5-style) is added to the attention logits",
                       "alibi": "ALiBi biases are added to the attention logits"}


class _Stop(Exception):
    """Raised by the capture function after the last captured layer: nothing after it is computed."""


class _Recorder:
    """What the capture function records during one forward. `keep` (a bool tensor, one entry per wanted layer):
    the queries and keys of a wanted layer whose entry is False are cut to zero tokens (inside a traced graph, so
    that they never stay in memory)."""

    def __init__(self, wanted: Optional[Sequence[int]] = None, probe: bool = False,
                 keep: Optional[torch.Tensor] = None):
        self.wanted = list(wanted) if wanted is not None else None
        self.last = max(wanted) if wanted else None
        self.probe = probe
        self.keep = keep
        self.count = 0
        self.queries: List[torch.Tensor] = []
        self.keys: List[torch.Tensor] = []
        self.calls: List[dict] = []


_state = threading.local()


def _active() -> Optional[_Recorder]:
    return getattr(_state, "recorder", None)


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ExportError("attnprox export needs the `transformers` package (pip install transformers); without it, "
                          "attnprox.export_reference exports the families attnprox implements itself") from None
    return transformers


def _eager_attention(module):
    """The model's own eager attention (its modeling module's eager_attention_forward), or None."""
    return getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)


def _base_attention(module, kwargs):
    """(the attention function the model would use without capture, whether it is eager attention): SDPA, or the
    model's eager attention where SDPA cannot express it (sinks, soft-caps)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    needs_eager = (getattr(module, "sinks", None) is not None or kwargs.get("softcap") is not None
                   or kwargs.get("s_aux") is not None)
    if not needs_eager:
        return ALL_ATTENTION_FUNCTIONS["sdpa"], False
    eager = _eager_attention(module)
    if eager is None:
        raise ExportError(f"{type(module).__name__} needs eager attention, but its modeling module has no "
                          "eager_attention_forward to call")
    return eager, True


def _is_causal(module, kwargs) -> bool:
    """Whether an attention call is causal, as transformers' attention functions decide it."""
    is_causal = kwargs.get("is_causal")
    return bool(getattr(module, "is_causal", True) if is_causal is None else is_causal)


def _layer_mask(marker, query, key, module, kwargs, eager: bool, dtype):
    """The mask one attention call needs, built from positions and the batch's key mask `marker` [B, 1, 1, Nk]
    (bool, True = real token; from `_key_mask`): None for a causal layer without a window and for SDPA (its
    `is_causal` kernels; the engine pads on the right, so a real token never sees padding); the key mask for a
    bidirectional SDPA layer; else a mask of this layer alone, [B or 1, 1, Nq, Nk]: bool for SDPA, additive in
    `dtype` for eager attention (0 where visible, the dtype's lowest value elsewhere, as transformers builds it).
    Sliding windows follow transformers: causal `i - j < W`, bidirectional `|i - j| <= W`."""
    causal = _is_causal(module, kwargs)
    window = kwargs.get("sliding_window")
    if not eager and not window:
        return None if causal else marker
    n_q, n_k = query.shape[2], key.shape[2]
    distance = (torch.arange(n_q, device=query.device).view(-1, 1)
                - torch.arange(n_k, device=query.device).view(1, -1))  # i - j
    if causal:
        visible = distance >= 0
        if window:
            visible = visible & (distance < window)
        visible = visible.view(1, 1, n_q, n_k)
    else:
        visible = marker if not window else (distance.abs() <= window).view(1, 1, n_q, n_k) & marker
    # A (padding) query that sees no key sees every key, so that its unused values stay finite.
    visible = visible | ~visible.any(dim=-1, keepdim=True)
    if not eager:
        return visible
    zero = torch.zeros((), dtype=dtype, device=query.device)
    return torch.where(visible, zero, torch.finfo(dtype).min)


def _marker_of(attention_mask):
    """The batch's key mask when `attention_mask` is the one `_key_mask` made, else None (a model that made or
    changed its mask itself: it is then passed on as it is)."""
    if isinstance(attention_mask, torch.Tensor) and getattr(attention_mask, "_attnprox_key_mask", False):
        return attention_mask
    return None


def _keep_rows(tensor: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """A copy of `tensor` [B, heads, N, d] when `keep` (a 0-dim bool tensor) is True, else of its first zero
    tokens: a traced graph cuts what is not kept without holding on to it."""
    rows = torch.ones_like(tensor[0, 0, :, 0], dtype=torch.bool) & keep
    return tensor[:, :, rows]


def _mask_for(marker, attention_mask, query, key, module, kwargs, eager: bool):
    """The mask an attention call runs with: built for the layer (_layer_mask) when the mask transformers asked
    for is causal or bidirectional attention within the layer's sliding window and padding; transformers' own mask
    otherwise; the model's own when it did not come from the registry."""
    if marker is None:
        return attention_mask
    causal, window = _is_causal(module, kwargs), kwargs.get("sliding_window")
    if _untraced(lambda: _pattern_is(marker._attnprox_pattern, causal, window)):
        return _layer_mask(marker, query, key, module, kwargs, eager, query.dtype)
    return _transformers_mask(marker, query.dtype)


def _capture_attention(module, query, key, value, attention_mask, **kwargs):
    marker = _marker_of(attention_mask)
    base, eager = _base_attention(module, kwargs)
    mask = _mask_for(marker, attention_mask, query, key, module, kwargs, eager)
    reference = getattr(_state, "reference", None)
    if reference is not None:  # verification: transformers' eager weights in float32 from this forward's Q/K
        output = base(module, query, key, value, mask, **kwargs)
        reference.record(module, query, key, value, attention_mask, marker, kwargs)
        return output
    recorder = _active()
    if recorder is not None:
        index = recorder.count
        recorder.count += 1
        if recorder.probe:
            recorder.calls.append(_describe_call(module, query, key, attention_mask, kwargs))
        if recorder.wanted is None or index in recorder.wanted:
            q, k = query, key
            if recorder.keep is not None:
                slot = recorder.wanted.index(index)
                q, k = _keep_rows(query, recorder.keep[slot]), _keep_rows(key, recorder.keep[slot])
            recorder.queries.append(q)
            recorder.keys.append(k)
        if recorder.last is not None and index >= recorder.last:
            raise _Stop()
    return base(module, query, key, value, mask, **kwargs)


def _number(x) -> Optional[float]:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return float(x.item())
    return float(x)


def _describe_call(module, query, key, attention_mask, kwargs) -> dict:
    for name, why in _UNSUPPORTED_KWARGS.items():
        if kwargs.get(name) is not None:
            raise ExportError(f"{type(module).__name__}: {why}, which the attnprox model file cannot express")
    sinks = getattr(module, "sinks", None)
    if sinks is None:
        sinks = kwargs.get("s_aux")
    scaling = kwargs.get("scaling")
    window = kwargs.get("sliding_window")
    is_causal = kwargs.get("is_causal")
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    return {
        "module": module,
        "class": type(module).__name__,
        "query_shape": tuple(query.shape),
        "key_shape": tuple(key.shape),
        "scaling": _number(scaling) if scaling is not None else query.shape[-1] ** -0.5,
        "sliding_window": int(window) if window else None,
        "softcap": _number(kwargs.get("softcap")) or None,
        "sinks": None if sinks is None else [float(v) for v in sinks.detach().float().reshape(-1).tolist()],
        "causal": bool(is_causal),
        "dropout": _number(kwargs.get("dropout")),
    }


# Query and key positions at which a mask function is evaluated to tell its pattern (_mask_pattern): every distance
# up to 47, and far ones, which a sliding window of any length below them hides.
_PROBE_POSITIONS = list(range(48)) + [100, 1000, 10_000, 100_000, 1_000_000]


def _untraced(fn):
    """fn() outside any trace in progress (a probe on constants, which the traced graph must not hold)."""
    state = torch._C._get_tracing_state() if hasattr(torch._C, "_get_tracing_state") else None
    if state is not None:
        torch._C._set_tracing_state(None)
    try:
        return fn()
    finally:
        if state is not None:
            torch._C._set_tracing_state(state)


def _mask_pattern(mask_function) -> Optional[torch.Tensor]:
    """Which key positions each query position may see under transformers' `mask_function` (before padding), at
    _PROBE_POSITIONS × _PROBE_POSITIONS (bool, on the CPU); None when it cannot be evaluated there (a mask of the
    batch's own tokens: packed sequences, image blocks)."""
    if mask_function is None:
        return None

    def evaluate():
        positions = torch.tensor(_PROBE_POSITIONS)
        zero = torch.zeros((), dtype=torch.long)
        grid = mask_function(zero, zero, positions.view(-1, 1), positions.view(1, -1))
        return torch.as_tensor(grid).to(torch.bool).expand(len(_PROBE_POSITIONS), len(_PROBE_POSITIONS)).clone()

    try:
        return _untraced(evaluate)
    except Exception:  # noqa: BLE001  (any mask function transformers or a model defines)
        return None


def _pattern_is(pattern: Optional[torch.Tensor], causal: bool, window) -> bool:
    """Whether a mask function's pattern (_mask_pattern) is exactly causal or bidirectional attention within the
    given sliding window (transformers' conventions): what `_layer_mask` builds."""
    if pattern is None:
        return False
    positions = torch.tensor(_PROBE_POSITIONS)
    distance = positions.view(-1, 1) - positions.view(1, -1)  # i - j
    if causal:
        expected = distance >= 0
        if window:
            expected = expected & (distance < window)
    else:
        expected = distance.abs() <= window if window else torch.ones_like(pattern)
    return bool(torch.equal(pattern, expected))


def _key_mask(*args, **kwargs):
    """The capture's function in transformers' mask registry: instead of a [B, 1, N, N] mask for every layer, the
    batch's key mask [B, 1, 1, N] (bool, True = real token), marked as ours, with the pattern of the mask function
    transformers asked for (_mask_pattern) and the arguments to build transformers' own mask where a layer needs
    it. Each attention call builds its mask from it (`_capture_attention`)."""
    attention_mask = kwargs.get("attention_mask")
    if attention_mask is None:
        attention_mask = torch.ones(kwargs["batch_size"], kwargs["kv_length"], dtype=torch.bool,
                                    device=kwargs.get("device", "cpu"))
    marker = attention_mask[:, None, None, :].to(torch.bool)
    marker._attnprox_key_mask = True
    marker._attnprox_pattern = _mask_pattern(kwargs.get("mask_function"))
    marker._attnprox_mask_args = (args, kwargs)
    return marker


def _transformers_mask(marker, dtype):
    """transformers' own eager mask (additive, in `dtype`) for the call `marker` was made for: where a layer's mask is
    more than causality, a sliding window and padding (chunked attention, image blocks), as before per-layer
    masks; and the float32 reference's mask."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    args, kwargs = marker._attnprox_mask_args
    return ALL_MASK_ATTENTION_FUNCTIONS["eager"](*args, **{**kwargs, "dtype": dtype})


def _register(transformers) -> None:
    from transformers import AttentionInterface
    try:
        from transformers.masking_utils import AttentionMaskInterface
    except ImportError:
        raise ExportError(f"transformers {transformers.__version__} has no attention-mask registry "
                          "(masking_utils); attnprox export needs transformers 4.53 or newer") from None
    AttentionInterface.register(_CAPTURE, _capture_attention)
    AttentionMaskInterface.register(_CAPTURE, _key_mask)


def _set_implementation(model, name: str) -> None:
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(name)
    else:
        model.config._attn_implementation = name
    for module in model.modules():  # sub-models with configs of their own (encoder–decoder, composite models)
        config = getattr(module, "config", None)
        if config is not None and getattr(config, "_attn_implementation", name) != name:
            try:
                config._attn_implementation = name
            except Exception:  # noqa: BLE001  (read-only on some configs: set_attn_implementation did it)
                pass


def _takes_token_types(model) -> bool:
    """Whether the model has segment embeddings its forward reads from `token_type_ids` (BERT: type_vocab_size 2;
    RoBERTa's single segment and models without the argument: no)."""
    import inspect

    types = int(_config_value(model.config, "type_vocab_size", default=0) or 0)
    return types > 1 and "token_type_ids" in inspect.signature(model.forward).parameters


class _Captured(torch.nn.Module):
    """forward(input_ids, attention_mask, keep[, token_type_ids]) → (queries, keys) of the captured layers, those
    whose `keep` entry is False cut to zero tokens: what is traced (token_type_ids for models with segment
    embeddings, `token_types`)."""

    def __init__(self, model, wanted: Sequence[int], encoder_decoder: bool, token_types: bool = False):
        super().__init__()
        self.model = model
        self.wanted = list(wanted)
        self.encoder_decoder = encoder_decoder
        self.token_types = token_types

    def forward(self, input_ids, attention_mask, keep, token_type_ids=None):
        recorder = _Recorder(self.wanted, keep=keep)
        _state.recorder = recorder
        try:
            kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            if self.encoder_decoder:
                kwargs.update(decoder_input_ids=input_ids, decoder_attention_mask=attention_mask)
            self.model(**kwargs)
        except _Stop:
            pass
        finally:
            _state.recorder = None
        if len(recorder.queries) != len(self.wanted):
            raise ExportError(f"the model made {recorder.count} attention calls through the registry, "
                              f"{len(self.wanted)} were to be captured")
        return list(recorder.queries), list(recorder.keys)


def _keep_flags(captured: List[int], layers: List[int]) -> List[bool]:
    """For each captured layer, whether `layers` (a non-empty, strictly ascending part of them) asks for it."""
    if len(layers) == 0:
        raise ValueError("forward_layers: no layers asked for")
    for k in range(len(layers)):
        if layers[k] not in captured or (k > 0 and layers[k] <= layers[k - 1]):
            raise ValueError("forward_layers: layers must be captured layers in strictly ascending order")
    flags: List[bool] = []
    for layer in captured:
        flags.append(layer in layers)
    return flags


def _kept(flags: List[bool], queries: List[torch.Tensor],
          keys: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    kept_queries: List[torch.Tensor] = []
    kept_keys: List[torch.Tensor] = []
    for k in range(len(flags)):
        if flags[k]:
            kept_queries.append(queries[k])
            kept_keys.append(keys[k])
    return kept_queries, kept_keys


class _LayerChoice(torch.nn.Module):
    """The model file's module (scripted around the trace): `forward(input_ids, attention_mask)` returns every
    captured layer's queries and keys, `forward_layers(input_ids, attention_mask, layers)` those of `layers` (the
    traced graph still runs up to the last captured layer; docs/model-file.md)."""

    captured: List[int]

    def __init__(self, traced, captured: Sequence[int]):
        super().__init__()
        self.traced = traced
        self.captured = list(captured)

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        keep = torch.ones([len(self.captured)], dtype=torch.bool, device=input_ids.device)
        return self.traced(input_ids, attention_mask, keep)

    @torch.jit.export
    def forward_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       layers: List[int]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        flags = _keep_flags(self.captured, layers)
        keep = torch.tensor(flags, dtype=torch.bool, device=input_ids.device)
        queries, keys = self.traced(input_ids, attention_mask, keep)
        return _kept(flags, queries, keys)


class _LayerChoiceWithTypes(torch.nn.Module):
    """_LayerChoice for models with segment embeddings (manifest "inputs" lists token_type_ids):
    `forward(input_ids, attention_mask, token_type_ids)` and `forward_layers(input_ids, attention_mask, layers,
    token_type_ids)`, token_type_ids optional in both (absent: every token of segment 0), so that an engine that
    passes no token types still runs the file."""

    captured: List[int]

    def __init__(self, traced, captured: Sequence[int]):
        super().__init__()
        self.traced = traced
        self.captured = list(captured)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: Optional[torch.Tensor] = None) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        keep = torch.ones([len(self.captured)], dtype=torch.bool, device=input_ids.device)
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        return self.traced(input_ids, attention_mask, keep, types)

    @torch.jit.export
    def forward_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: List[int],
                       token_type_ids: Optional[torch.Tensor] = None) -> Tuple[List[torch.Tensor],
                                                                                List[torch.Tensor]]:
        flags = _keep_flags(self.captured, layers)
        keep = torch.tensor(flags, dtype=torch.bool, device=input_ids.device)
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        queries, keys = self.traced(input_ids, attention_mask, keep, types)
        return _kept(flags, queries, keys)


def _load_model(source, dtype, device, transformers):
    if isinstance(source, torch.nn.Module):
        model = source
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    else:
        name = str(source)
        kwargs = {"attn_implementation": "eager"}
        if dtype is not None:
            kwargs["dtype"] = dtype
        try:
            model = transformers.AutoModel.from_pretrained(name, **kwargs)
        except TypeError:  # transformers 4.x: torch_dtype
            kwargs["torch_dtype"] = kwargs.pop("dtype", None)
            model = transformers.AutoModel.from_pretrained(name, **kwargs)
    if dtype is not None:
        model = model.to(dtype)
    model = model.to(device).eval()
    return model, name


def _config_value(config, *names, default=None):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def _token_id(config, name: str) -> Optional[int]:
    """A special token's id from a transformers config (the first of a list), or None."""
    value = getattr(config, name, None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) and value >= 0 else None


def _probe(model, encoder_decoder: bool, vocab_size: int, device) -> List[dict]:
    """One eager forward recording every attention call (decoder 3 tokens shorter than the encoder, so that
    cross-attention shows itself by its key length)."""
    n_enc = 9
    ids = (torch.arange(n_enc, device=device) * 7 + 3).remainder(vocab_size).view(1, n_enc)
    recorder = _Recorder(probe=True)
    _state.recorder = recorder
    try:
        with torch.no_grad():
            kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
            if encoder_decoder:
                dec = ids[:, : n_enc - 3]
                kwargs.update(decoder_input_ids=dec, decoder_attention_mask=torch.ones_like(dec))
            model(**kwargs)
    finally:
        _state.recorder = None
    calls = recorder.calls
    if not calls:
        raise ExportError(f"{type(model).__name__} made no attention call through the attention-function registry "
                          "of transformers, so attnprox cannot capture its queries and keys")
    for call in calls:
        call["cross_attention"] = encoder_decoder and call["query_shape"][2] != call["key_shape"][2]
        if call["cross_attention"]:
            call["causal"] = False
    return calls


def _rope(model, calls, captured, encoder_decoder: bool, vocab_size: int, device, head_dim: int) -> Optional[dict]:
    """The manifest's "rope" (hf_rope.record): the rotary embedding found in the model, checked on one forward of
    12 tokens against the captured layers' queries and keys before RoPE."""
    from . import hf_rope

    def run():
        n = 12
        ids = (torch.arange(n, device=device) * 11 + 2).remainder(vocab_size).view(1, n)
        recorder = _Recorder(wanted=captured)
        _state.recorder = recorder
        try:
            kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
            if encoder_decoder:
                kwargs.update(decoder_input_ids=ids, decoder_attention_mask=torch.ones_like(ids))
            model(**kwargs)
        except _Stop:
            pass
        finally:
            _state.recorder = None
        return recorder.queries, recorder.keys

    return hf_rope.record(model, [calls[i]["module"] for i in captured], run, head_dim)


def _module_names(model) -> dict:
    return {id(m): name for name, m in model.named_modules()}


def _manifest(model, name, calls, captured, dtype, device, tokenizer_dir, transformers) -> dict:
    from ._version import __version__

    config = model.config
    heads = {(c["query_shape"][1], c["key_shape"][1], c["query_shape"][3]) for c in calls}
    if len(heads) != 1:
        raise ExportError(f"the attention layers differ in their head counts or sizes {sorted(heads)}; an attnprox "
                          "model file holds one H, Hkv and d")
    (h, hkv, d), = heads
    if h % hkv:
        raise ExportError(f"{h} query heads are not a multiple of {hkv} key heads")
    vocab_size = int(_config_value(config, "vocab_size", default=0) or
                     _config_value(getattr(config, "text_config", None), "vocab_size", default=0))
    causal_layers = [c["causal"] for c in calls if not c["cross_attention"]]
    causal = all(causal_layers)
    names = _module_names(model)
    layers = []
    for i in captured:
        c = calls[i]
        entry = {"index": i, "scaling": c["scaling"], "sliding_window": c["sliding_window"], "softcap": c["softcap"],
                 "sinks": c["sinks"], "cross_attention": c["cross_attention"],
                 "name": names.get(id(c["module"]), c["class"])}
        if c["causal"] != causal and not c["cross_attention"]:
            entry["causal"] = c["causal"]
        layers.append(entry)
    max_positions = _config_value(config, "max_position_embeddings", "n_positions", "max_seq_len",
                                  default=1 << 20)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": config.model_type,
        "model_type": config.model_type,
        "source": name,
        "exporter": {"name": "attnprox.export", "attnprox": __version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "device": str(device)},
        "num_layers": len(calls),
        "captured_layers": list(captured),
        "num_heads": h,
        "num_kv_heads": hkv,
        "head_dim": d,
        "causal": causal,
        "max_positions": int(max_positions),
        "vocab_size": vocab_size,
        "dtype": _DTYPE_NAMES[next(model.parameters()).dtype],
        "layers": layers,
        "tokenizer": tokenizer_facts(tokenizer_dir, *(_token_id(config, f"{kind}_token_id") for kind in
                                                       ("bos", "eos", "pad")), vocab_size),
        "inputs": ["input_ids", "attention_mask"] + (["token_type_ids"] if _takes_token_types(model) else []),
    }


def _trace(wrapper, vocab_size: int, max_positions: int, device):
    """Traced on a batch of two, the second padded, at a length no test input uses (with token type ids, a text
    pair's: 0 then 1, where the model takes them); then scripted around (`_LayerChoice`, `_LayerChoiceWithTypes`)
    into the file's module."""
    n = max(4, min(11, max_positions))
    ids = (torch.arange(2 * n, device=device) * 13 + 5).remainder(vocab_size).view(2, n)
    mask = torch.ones_like(ids)
    mask[1, n - 3:] = 0
    keep = torch.ones(len(wrapper.wanted), dtype=torch.bool, device=device)
    inputs = (ids, mask, keep)
    if wrapper.token_types:
        types = torch.zeros_like(ids)
        types[:, n // 2:] = 1
        types[1, n - 3:] = 0
        inputs = (ids, mask, keep, types)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, inputs, strict=False, check_trace=False)
    choice = _LayerChoiceWithTypes if wrapper.token_types else _LayerChoice
    return torch.jit.script(choice(traced, wrapper.wanted))


class _Reference:
    """What one verification forward records per attention call, in the file's order: the queries and keys the
    call received, and transformers' eager attention weights computed in float32 from them (the model's own
    eager_attention_forward with transformers' own eager mask in float32): the reference in float16 and bfloat16,
    where an eager forward in the dtype rounds its logits (its error grows with them) and drifts from the file's
    forward through every earlier layer."""

    def __init__(self):
        self.queries: List[torch.Tensor] = []
        self.keys: List[torch.Tensor] = []
        self.weights: List[torch.Tensor] = []

    def record(self, module, query, key, value, attention_mask, marker, kwargs) -> None:
        eager = _eager_attention(module)
        if eager is None:
            raise ExportError(f"{type(module).__name__}: its modeling module has no eager_attention_forward, which "
                              "the float16/bfloat16 verification computes its reference with; export in float32")
        mask = attention_mask if marker is None else _transformers_mask(marker, torch.float32)
        if mask is not None and mask.dtype == torch.bool:
            mask = torch.where(mask, torch.zeros((), device=mask.device), torch.finfo(torch.float32).min)
        elif mask is not None:
            mask = mask.float()
        args = {k: v for k, v in kwargs.items() if k != "dropout"}
        weights = eager(module, query.float(), key.float(), value.float(), mask, dropout=0.0, **args)[1]
        self.queries.append(query)
        self.keys.append(key)
        self.weights.append(weights.float())


def _reference_run(model, ids, mask, encoder_decoder: bool) -> _Reference:
    """A forward of the model through the capture's attention (the file's kernels and masks), recording the
    reference of every attention call (_Reference)."""
    reference = _Reference()
    _state.reference = reference
    try:
        with torch.no_grad():
            kwargs = dict(input_ids=ids, attention_mask=mask, use_cache=False)
            if encoder_decoder:
                kwargs.update(decoder_input_ids=ids, decoder_attention_mask=mask)
            model(**kwargs)
    finally:
        _state.reference = None
    return reference


def _reference_attentions(model, ids, mask, encoder_decoder: bool):
    """output_attentions=True with transformers' eager attention, in the order of the file's layers."""
    _set_implementation(model, "eager")
    try:
        with torch.no_grad():
            kwargs = dict(input_ids=ids, attention_mask=mask, output_attentions=True, use_cache=False)
            if encoder_decoder:
                kwargs.update(decoder_input_ids=ids, decoder_attention_mask=mask)
            out = model(**kwargs)
    finally:
        _set_implementation(model, _CAPTURE)
    if encoder_decoder:
        ordered = list(out.encoder_attentions)
        for self_attn, cross in zip(out.decoder_attentions, out.cross_attentions):
            ordered += [self_attn, cross]
        return ordered
    return list(out.attentions)


def _float32_bound(queries, keys, scaling: float, query_diff: float = 0.0, key_diff: float = 0.0) -> float:
    """How far two float32 softmax attentions of the same layer may lie apart when one is computed from queries and
    keys `queries` [H, N, d], `keys` [Hkv, N, d] and the other from queries and keys that differ from them by at
    most `query_diff`, `key_diff` per element (masks, sinks, soft-cap alike):

    - each float32 dot product of d terms errs by at most γ_d · Σ_a |q_a k_a|, γ_d = d·u/(1 − d·u), u = 2⁻²⁴;
    - the inputs' difference moves a logit by at most query_diff·‖k‖₁ + key_diff·‖q‖₁ + d·query_diff·key_diff;
    - so each logit, scaled, moves by at most e = |scaling| · (2γ_d Σ|q||k| + the above) (a soft-cap c·tanh(x/c)
      is 1-Lipschitz and cannot enlarge it), and a softmax whose logits move by at most e moves each weight by
      at most expm1(2e); 1e-6 covers the two softmaxes' own float32 rounding.

    Unlike a comparison with attention computed in the reduced dtype, this does not grow with the rounding of the
    logits to that dtype: it stays far below 1 for logits in the hundreds, so a wrong weight checks as wrong."""
    import numpy as np

    q = np.abs(np.asarray(queries, dtype=np.float64))
    k = np.abs(np.asarray(keys, dtype=np.float64))
    k = np.repeat(k, q.shape[0] // k.shape[0], axis=0)
    d = q.shape[-1]
    gamma = d * _FLOAT32_UNIT / (1 - d * _FLOAT32_UNIT)
    products = np.matmul(q, k.transpose(0, 2, 1))  # Σ_a |q_ia||k_ja|, [H, N, N]
    moved = 2 * gamma * products
    if query_diff or key_diff:
        moved = (moved + query_diff * k.sum(-1)[:, None, :] + key_diff * q.sum(-1)[:, :, None]
                 + d * query_diff * key_diff)
    e = abs(scaling) * float(moved.max()) if moved.size else 0.0
    return math.expm1(min(2 * e, 700.0)) + 1e-6  # (past 700 it is infinite for any purpose)


def _verification_inputs(vocab_size: int, max_positions: int, device, texts, hf_tokenizer):
    inputs = []
    if texts and hf_tokenizer is not None:
        for text in texts:
            ids = hf_tokenizer(text)["input_ids"][:max_positions]
            inputs.append([int(i) for i in ids])
    g = torch.Generator().manual_seed(0)
    for n in (1, 6, 23):
        n = min(n, max_positions)
        inputs.append(torch.randint(0, vocab_size, (n,), generator=g).tolist())
    return inputs


def _rounding_bound(result, layer: int, call: dict, unit: float) -> float:
    """How far transformers' eager attention in a reduced-precision dtype may lie from the exact softmax of the
    captured queries and keys, from its own rounding alone (the verification's "eager_rounding": what a comparison
    with eager attention in the dtype would have to allow; it passes 1 at |logits| ≳ 44 in bfloat16): it rounds each logit to the dtype twice (the product
    QKᵀ, then the scaled product) before its float32 softmax, an error of at most e = 2u·L on logits of magnitude
    up to L; the softmax then moves a weight by at most a factor exp(±2e), so by at most expm1(4u·L); rounding the
    weight to the dtype adds u."""
    import numpy as np

    queries, keys = result.queries(layer), result.keys(layer)  # [H, N, d], [Hkv, N, d] as float32
    keys = np.repeat(keys, queries.shape[0] // keys.shape[0], axis=0)
    largest = float(np.abs(np.matmul(queries, keys.transpose(0, 2, 1))).max()) * abs(call["scaling"])
    if call.get("softcap"):
        largest = min(largest, abs(call["softcap"]))
    return math.expm1(min(4 * unit * largest, 700.0)) + unit  # (past 700 it is infinite for any purpose)


def _padded(inputs, pad_id: int, device):
    """The engine's padded batch of `inputs`: right padding with `pad_id`, and its mask."""
    longest = max(len(seq) for seq in inputs)
    ids = torch.full((len(inputs), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(inputs), longest), dtype=torch.long)
    for b, seq in enumerate(inputs):
        ids[b, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[b, :len(seq)] = 1
    return ids.to(device), mask.to(device)


def verify(out_path: str, model, calls, captured, encoder_decoder: bool, device, dtype, inputs,
           pad_id: Optional[int] = None):
    """See `_verify`; float32 products run in full float32 meanwhile (no TF32, whose rounding the bounds do not
    allow for), in the engine and in the reference alike (one setting of the process)."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        return _verify(out_path, model, calls, captured, encoder_decoder, device, dtype, inputs, pad_id)
    finally:
        torch.set_float32_matmul_precision(precision)


def _verify(out_path: str, model, calls, captured, encoder_decoder: bool, device, dtype, inputs,
            pad_id: Optional[int] = None):
    """Loads the written file with the attnprox engine and compares its rebuilt attention with transformers' eager
    attention weights, one sequence at a time and as one padded batch.

    In float32 the reference is output_attentions=True (the padded batch compared with each sequence's), held to
    1e-5. In float16 and bfloat16 it is transformers' eager attention computed in float32 from the queries and keys
    of a forward through the file's kernels (_Reference): of the same sequence, and of the same padded batch for
    the batched run, so that the batch's own rounding is the reference's too. Each comparison is held to what
    float32 rounding and the difference between the file's and the reference's queries and keys explain
    (_float32_bound), which does not grow with the logits' rounding to the dtype.

    Also checks that forward_layers gives the queries and keys forward gives. Returns the reference used and, per
    captured layer, the largest difference and the bound of the comparison that came closest to its bound. Raises
    ExportError when a comparison exceeds its bound. In float16 and bfloat16 also returns, per layer, what eager
    attention in the dtype could be off by from its own rounding (_rounding_bound), for comparison."""
    import numpy as np

    from .model import load

    engine = load(out_path, device=str(device))
    reduced = dtype in _UNIT_ROUNDOFF
    worst = {i: 0.0 for i in captured}
    allowed = {i: TOLERANCE.get(dtype, 0.0) for i in captured}
    eager_rounding = {i: 0.0 for i in captured}
    closest = {i: -1.0 for i in captured}  # the largest difference / bound
    failures = []

    def compare(result, i, want, reference=None, b=0):
        n = len(result)
        got = result.attention(i)
        diff = float(np.abs(got - want).max()) if want.size else 0.0
        bound = TOLERANCE[torch.float32]
        if reference is not None:
            q_ref = reference.queries[i][b, :, :n].float().cpu().numpy()
            k_ref = reference.keys[i][b, :, :n].float().cpu().numpy()
            query_diff = float(np.abs(result.queries(i) - q_ref).max())
            key_diff = float(np.abs(result.keys(i) - k_ref).max())
            bound = _float32_bound(q_ref, k_ref, calls[i]["scaling"], query_diff, key_diff)
        worst[i] = max(worst[i], diff)
        if diff / bound > closest[i]:
            closest[i], allowed[i] = diff / bound, bound
        if not diff <= bound:
            failures.append((diff / bound if bound > 0 else math.inf, i, diff, bound))

    # one padded batch of every input, as the reference's (run's micro-batches would split a long list)
    batched = engine.run(ids=inputs, token_budget=len(inputs) * max(len(seq) for seq in inputs))
    batch_reference = None
    if reduced:
        batch_reference = _reference_run(model, *_padded(inputs, pad_id or 0, device), encoder_decoder)
        if len(batch_reference.weights) != len(calls):
            raise ExportError(f"the reference has {len(batch_reference.weights)} layers, the capture saw "
                              f"{len(calls)} attention calls: the layers cannot be matched")
    for b, (seq, result_batched) in enumerate(zip(inputs, batched)):
        ids = torch.tensor([seq], device=device)
        result = engine.run(ids=seq)
        n = len(seq)
        if reduced:
            single = _reference_run(model, ids, torch.ones_like(ids), encoder_decoder)
            for i in captured:
                eager_rounding[i] = max(eager_rounding[i], _rounding_bound(result, i, calls[i], _UNIT_ROUNDOFF[dtype]))
                compare(result, i, single.weights[i][0].cpu().numpy(), single, 0)
                compare(result_batched, i, batch_reference.weights[i][b, :, :n, :n].cpu().numpy(),
                        batch_reference, b)
            continue
        reference = _reference_attentions(model, ids, torch.ones_like(ids), encoder_decoder)
        if len(reference) != len(calls):
            raise ExportError(f"the reference has {len(reference)} layers, the capture saw {len(calls)} "
                              "attention calls: the layers cannot be matched")
        for i in captured:
            want = reference[i][0].float().cpu().numpy()
            compare(result, i, want)
            compare(result_batched, i, want)
    if failures:
        _, i, diff, bound = max(failures)
        raise ExportError(f"verification failed: at layer {i} ({calls[i]['class']}) the attention rebuilt from the "
                          f"file differs from transformers' eager attention by {diff:.3g} (allowed {bound:.3g} in "
                          f"{_DTYPE_NAMES[dtype]}); the model's attention is not what its captured queries and keys "
                          "imply (an extra bias or a custom mask?)")
    # forward_layers must give what forward gives, for one layer and for the first and last.
    seq = inputs[-1]
    full = engine.run(ids=seq)
    for chosen in ([captured[-1]], sorted({captured[0], captured[-1]})):
        part = engine.run(ids=seq, layers=chosen)
        for i in chosen:
            if not (np.array_equal(part.queries(i), full.queries(i)) and np.array_equal(part.keys(i), full.keys(i))):
                raise ExportError(f"verification failed: forward_layers({chosen}) gives other queries or keys at "
                                  f"layer {i} than forward")
    if "token_type_ids" in engine.manifest.get("inputs", []):
        # The same with token type ids (a text pair's: 0, then 1), which forward_layers takes after the layers.
        module = torch.jit.load(out_path, map_location=device)
        ids = torch.tensor([seq], device=device)
        mask = torch.ones_like(ids)
        types = torch.zeros_like(ids)
        types[:, len(seq) // 2:] = 1
        with torch.no_grad():
            full_q, full_k = module.forward(ids, mask, types)
            for chosen in ([captured[-1]], sorted({captured[0], captured[-1]})):
                part_q, part_k = module.forward_layers(ids, mask, chosen, types)
                for slot, i in enumerate(chosen):
                    k = captured.index(i)
                    if not (torch.equal(part_q[slot], full_q[k]) and torch.equal(part_k[slot], full_k[k])):
                        raise ExportError(f"verification failed: forward_layers({chosen}) with token type ids gives "
                                          f"other queries or keys at layer {i} than forward")
    if not reduced:
        return "output_attentions", worst, allowed, {}
    return "float32 eager weights from the file's forward", worst, allowed, eager_rounding


# What export does, in order; `progress(stage)` is called as each begins.
STAGES = ("loading the model", "tracing", "writing the file", "verifying")


def export(model, out_path: str, layers: Layers = "all", dtype=None, device: str = "cpu",
           tokenizer: Optional[str] = None, verify_texts: Optional[Iterable[str]] = None,
           check: bool = True, progress: Optional[Callable[[str], None]] = None) -> dict:
    """Writes an attnprox model file for a Hugging Face model, through `transformers` (see the module docstring).

    model: a model directory, a hub id already in the local cache, or a loaded `transformers` model.
    layers: "all", "last", a layer number, a list of them or "i,j" (negative: from the end); layers are the
        attention calls in the model's order (an encoder–decoder model: encoder, then each decoder layer's self-
        and cross-attention). The file's forward stops after the last captured layer's queries and keys.
    dtype: "float32", "float16", "bfloat16" (default: the model's). device: where to trace ("cpu", "cuda"); the
        file runs on that kind of device.
    tokenizer: a directory with tokenizer.json to store in the file (default: the model directory's).
    verify_texts: texts to verify on, besides random ids (needs the directory's tokenizer with transformers).
    check: verify the written file against output_attentions=True (default); a file that fails is deleted.
    progress: called with the name of each stage (STAGES) as it begins.
    Returns the manifest, with "verification": per captured layer the largest difference ("max_abs_diff") and the
    bound it was held to ("allowed": 1e-5 in float32; in float16/bfloat16 the bound of the comparison that came
    closest to it, from float32 rounding and the queries' and keys' difference; "eager_rounding": what eager
    attention in the dtype could be off by from its own rounding at that layer's logits, for comparison).
    """
    step = progress or (lambda stage: None)
    transformers = _transformers()
    torch_dtype = parse_dtype(dtype)
    device = torch.device(device)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"{out_path}: the folder {out_dir} does not exist")
    if isinstance(model, (str, os.PathLike)) and os.path.sep in str(model) and not os.path.exists(model):
        raise FileNotFoundError(f"{model}: no such model directory")
    _register(transformers)
    step(STAGES[0])
    hf_model, name = _load_model(model, torch_dtype, device, transformers)
    config = hf_model.config
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    _set_implementation(hf_model, _CAPTURE)
    vocab_size = int(_config_value(config, "vocab_size", default=0))
    if vocab_size <= 0:
        raise ExportError(f"{name}: the config has no vocab_size")
    calls = _probe(hf_model, encoder_decoder, vocab_size, device)
    captured = parse_layers(layers, len(calls))
    tokenizer_dir = tokenizer or (str(model) if isinstance(model, (str, os.PathLike)) and os.path.isdir(model)
                                  else None)
    manifest = _manifest(hf_model, name, calls, captured, next(hf_model.parameters()).dtype, device, tokenizer_dir,
                         transformers)
    manifest["rope"] = _rope(hf_model, calls, captured, encoder_decoder, vocab_size, device, manifest["head_dim"])
    wrapper = _Captured(hf_model, captured, encoder_decoder, _takes_token_types(hf_model)).eval()
    step(STAGES[1])
    try:
        traced = _trace(wrapper, vocab_size, manifest["max_positions"], device)
    except Exception as e:  # noqa: BLE001  (tracing errors come in many types)
        raise ExportError(f"{name}: tracing to TorchScript failed: {type(e).__name__}: {e}") from None
    extra = {MANIFEST_NAME: json.dumps(manifest, indent=2)}
    tokenizer_file = tokenizer_json_of(tokenizer_dir) if tokenizer_dir else None  # or built from vocab.txt
    if tokenizer_file is not None:
        extra[TOKENIZER_NAME] = tokenizer_file[0]
        check_tokenizer(*tokenizer_file)
    step(STAGES[2])
    torch.jit.save(traced, out_path, _extra_files=extra)
    if check:
        step(STAGES[3])
        hf_tokenizer = None
        if verify_texts and tokenizer_dir:
            hf_tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
        inputs = _verification_inputs(vocab_size, manifest["max_positions"], device, list(verify_texts or []),
                                      hf_tokenizer)
        try:
            reference, worst, allowed, eager_rounding = verify(out_path, hf_model, calls, captured, encoder_decoder,
                                                               device,
                                               next(hf_model.parameters()).dtype, inputs,
                                               manifest["tokenizer"]["pad_id"])
        except BaseException:
            os.remove(out_path)
            raise
        manifest["verification"] = {"reference": reference,
                                    "max_abs_diff": {str(i): v for i, v in worst.items()},
                                    "allowed": {str(i): v for i, v in allowed.items()},
                                    **({"eager_rounding": {str(i): v for i, v in eager_rounding.items()}}
                                       if eager_rounding else {}),
                                    "inputs": [len(x) for x in inputs]}
    return manifest


__all__ = ["ExportError", "export", "verify"]
