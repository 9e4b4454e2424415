"""attnprox export, part 1: the capture. An attention function registered in transformers' attention-function
registry records the queries and keys each attention call receives (after rotary embeddings and q/k norms) and calls
the attention the model would have used; a mask function of ours hands each layer the batch's key mask, from which
the layer builds what it needs (attnprox.hf_export's docstring has the whole story). `_probe` runs one eager forward
recording every call."""
import sys
import threading
from typing import List, Optional, Sequence

import torch

from .errors import ExportError


_CAPTURE = "attnprox_capture"
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
