"""`attnprox.export`: a Hugging Face model → an attnprox model file, through `transformers` itself.

How it works (the file it writes: docs/model-file.md):

1. The model is loaded with `transformers` (`AutoModel`: the base model, no head; an encoder–decoder model runs
   its decoder on the same ids as its encoder, so that every captured layer is N × N).
2. An attention function is registered in the attention-function registry of `transformers`
   (`AttentionInterface`), and the model is switched to it. The function records the query and key tensors it
   receives — exactly what the model's attention multiplies, after rotary embeddings and q/k norms — and then
   calls the attention the model would have used anyway: SDPA, or the model's own eager attention where SDPA
   cannot express it (attention sinks, soft-caps). Its mask comes from the same registry.
3. A first, eager run records each attention call: its module, shapes, scaling, sliding window, soft-cap,
   sinks, whether it is causal and whether it is cross-attention. The layers of the model file are these calls
   in the order the model makes them (an encoder–decoder model: the encoder's layers, then each decoder layer's
   self-attention followed by its cross-attention).
4. The model is traced to TorchScript (`torch.jit.trace`) on a padded batch. Computation stops at the last
   captured layer's queries and keys (the registered function raises, and the wrapper returns what it has).
5. The manifest and `tokenizer.json` are stored in the file, and the file is verified before `export` returns:
   the attnprox engine loads it and rebuilds the attention of every captured layer for several inputs (other
   lengths than the trace's, a padded batch), which must equal `output_attentions=True` of the same model with
   `transformers`' eager attention (in float16 and bfloat16: the same eager weights computed on the file's own
   forward, within what their rounding explains; see `verify`). A file that fails is deleted, and the error
   names the layer and the difference.

Models whose attention is not `softmax(scaling · Q Kᵀ + mask)` with the extras the manifest can say (sliding
windows, soft-caps, sinks) — relative position biases (T5), ALiBi (BLOOM, MPT) — cannot be captured: the export
refuses them with the reason.
"""
import json
import math
import os
import sys
import threading
from typing import Callable, Iterable, List, Optional, Sequence

import torch

from .errors import ExportError
from .reference.export import (FORMAT, FORMAT_VERSION, MANIFEST_NAME, TOKENIZER_NAME, check_tokenizer,
                               parse_dtype, tokenizer_facts)
from .reference.model import Layers, parse_layers
from .reference.tokenizer_files import tokenizer_json_of

_CAPTURE = "attnprox_capture"
_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
# Bound on |rebuilt − output_attentions| by dtype (float32 1e-5: docs/measurements.md §2). In float16 and bfloat16
# a layer's bound is at least what the reference's own rounding can explain (_rounding_bound).
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 5e-2}
# Unit roundoff of the reduced-precision dtypes (round to nearest: 2^-(significand bits)).
_UNIT_ROUNDOFF = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
# Keyword arguments some models hand their attention function that the manifest cannot express.
_UNSUPPORTED_KWARGS = {"position_bias": "a relative position bias (T5-style) is added to the attention logits",
                       "alibi": "ALiBi biases are added to the attention logits"}


class _Stop(Exception):
    """Raised by the capture function after the last captured layer: nothing after it is computed."""


class _Recorder:
    """What the capture function records during one forward."""

    def __init__(self, wanted: Optional[Sequence[int]] = None, probe: bool = False):
        self.wanted = set(wanted) if wanted is not None else None
        self.last = max(wanted) if wanted else None
        self.probe = probe
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
    """The attention function the model would use without capture: SDPA, or the model's eager attention where
    SDPA cannot express it (sinks, soft-caps) or the model does not support SDPA."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    needs_eager = (getattr(module, "sinks", None) is not None or kwargs.get("softcap") is not None
                   or kwargs.get("s_aux") is not None)
    if not needs_eager:
        return ALL_ATTENTION_FUNCTIONS["sdpa"]
    eager = _eager_attention(module)
    if eager is None:
        raise ExportError(f"{type(module).__name__} needs eager attention, but its modeling module has no "
                          "eager_attention_forward to call")
    return eager


def _capture_attention(module, query, key, value, attention_mask, **kwargs):
    weights = getattr(_state, "weights", None)
    if weights is not None:  # verification: transformers' eager weights on the file's own forward
        base = _base_attention(module, kwargs)
        output = base(module, query, key, value, attention_mask, **kwargs)
        eager = _eager_attention(module)
        weights.append(output[1] if base is eager else eager(module, query, key, value, attention_mask, **kwargs)[1])
        return output
    recorder = _active()
    if recorder is not None:
        index = recorder.count
        recorder.count += 1
        if recorder.probe:
            recorder.calls.append(_describe_call(module, query, key, attention_mask, kwargs))
        if recorder.wanted is None or index in recorder.wanted:
            recorder.queries.append(query)
            recorder.keys.append(key)
        if recorder.last is not None and index >= recorder.last:
            raise _Stop()
    return _base_attention(module, kwargs)(module, query, key, value, attention_mask, **kwargs)


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


def _register(transformers) -> None:
    from transformers import AttentionInterface
    try:
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    except ImportError:
        raise ExportError(f"transformers {transformers.__version__} has no attention-mask registry "
                          "(masking_utils); attnprox export needs transformers 4.53 or newer") from None
    AttentionInterface.register(_CAPTURE, _capture_attention)
    # The capture function calls SDPA or the model's eager attention; eager's additive float mask serves both.
    AttentionMaskInterface.register(_CAPTURE, ALL_MASK_ATTENTION_FUNCTIONS["eager"])


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
    """forward(input_ids, attention_mask[, token_type_ids]) → (queries, keys) of the captured layers: the
    model-file contract (token_type_ids for models with segment embeddings, `token_types`)."""

    def __init__(self, model, wanted: Sequence[int], encoder_decoder: bool, token_types: bool = False):
        super().__init__()
        self.model = model
        self.wanted = list(wanted)
        self.encoder_decoder = encoder_decoder
        self.token_types = token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        recorder = _Recorder(self.wanted)
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
    pair's: 0 then 1, where the model takes them)."""
    n = max(4, min(11, max_positions))
    ids = (torch.arange(2 * n, device=device) * 13 + 5).remainder(vocab_size).view(2, n)
    mask = torch.ones_like(ids)
    mask[1, n - 3:] = 0
    inputs = (ids, mask)
    if wrapper.token_types:
        types = torch.zeros_like(ids)
        types[:, n // 2:] = 1
        types[1, n - 3:] = 0
        inputs = (ids, mask, types)
    with torch.no_grad():
        return torch.jit.trace(wrapper, inputs, strict=False, check_trace=False)


def _same_stream_weights(model, ids, mask, encoder_decoder: bool) -> list:
    """transformers' eager attention weights of every attention call, computed from the queries and keys of the
    forward the file runs (each call's output still comes from the attention the file uses): in float16 and
    bfloat16, an end-to-end eager forward drifts from the file's through rounding in every earlier layer, which
    would hide a real difference under that drift."""
    _state.weights = []
    try:
        with torch.no_grad():
            kwargs = dict(input_ids=ids, attention_mask=mask, use_cache=False)
            if encoder_decoder:
                kwargs.update(decoder_input_ids=ids, decoder_attention_mask=mask)
            model(**kwargs)
        return _state.weights
    finally:
        _state.weights = None


def _reference_attentions(model, ids, mask, encoder_decoder: bool, same_stream: bool = False):
    """The reference attention weights, in the order of the file's layers: output_attentions=True with
    transformers' eager attention, or with same_stream its eager weights on the file's own forward."""
    if same_stream:
        return _same_stream_weights(model, ids, mask, encoder_decoder)
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
    captured queries and keys, from its own rounding alone: it rounds each logit to the dtype twice (the product
    QKᵀ, then the scaled product) before its float32 softmax, an error of at most e = 2u·L on logits of magnitude
    up to L; the softmax then moves a weight by at most a factor exp(±2e), so by at most expm1(4u·L); rounding the
    weight to the dtype adds u."""
    import numpy as np

    queries, keys = result.queries(layer), result.keys(layer)  # [H, N, d], [Hkv, N, d] as float32
    keys = np.repeat(keys, queries.shape[0] // keys.shape[0], axis=0)
    largest = float(np.abs(np.matmul(queries, keys.transpose(0, 2, 1))).max()) * abs(call["scaling"])
    if call.get("softcap"):
        largest = min(largest, abs(call["softcap"]))
    return math.expm1(4 * unit * largest) + unit


def verify(out_path: str, model, calls, captured, encoder_decoder: bool, device, dtype, inputs):
    """Loads the written file with the attnprox engine and compares its rebuilt attention with transformers' eager
    attention weights, one sequence at a time and as one padded batch. In float32 the reference is
    output_attentions=True; in float16 and bfloat16 it is the same eager weights computed on the file's own forward
    (_same_stream_weights), where the model's modeling module has eager_attention_forward. Returns the reference
    used and, per captured layer, the largest difference and the bound it was held to: the dtype's tolerance, in
    float16 and bfloat16 raised to what the reference's own rounding can explain at that layer's logits
    (_rounding_bound). The padded batch is held to the same bound, though in reduced precision its forward also
    rounds differently from the one-sequence reference (other matrix shapes). Raises ExportError when a layer
    exceeds its bound."""
    from .model import load

    engine = load(out_path, device=str(device))
    worst = {i: 0.0 for i in captured}
    allowed = {i: TOLERANCE[dtype] for i in captured}
    unit = _UNIT_ROUNDOFF.get(dtype)
    same_stream = unit is not None and all(_eager_attention(c["module"]) is not None for c in calls)
    batched = engine.run(ids=inputs)
    for seq, result_batched in zip(inputs, batched):
        ids = torch.tensor([seq], device=device)
        reference = _reference_attentions(model, ids, torch.ones_like(ids), encoder_decoder, same_stream)
        if len(reference) != len(calls):
            raise ExportError(f"the reference has {len(reference)} layers, the capture saw {len(calls)} "
                              "attention calls: the layers cannot be matched")
        result = engine.run(ids=seq)
        for i in captured:
            want = reference[i][0].float().cpu().numpy()
            if unit:
                allowed[i] = max(allowed[i], _rounding_bound(result, i, calls[i], unit))
            for got in (result.attention(i), result_batched.attention(i)):
                diff = float(abs(got - want).max()) if want.size else 0.0
                worst[i] = max(worst[i], diff)
    bad = {i: v for i, v in worst.items() if not v <= allowed[i]}
    if bad:
        i = max(bad, key=lambda j: bad[j] / allowed[j])
        raise ExportError(f"verification failed: at layer {i} ({calls[i]['class']}) the attention rebuilt from the "
                          f"file differs from transformers' eager attention by {bad[i]:.3g} (allowed "
                          f"{allowed[i]:.3g} in {_DTYPE_NAMES[dtype]}); the model's attention is not what its captured "
                          "queries and keys imply (an extra bias or a custom mask?)")
    reference = "eager weights on the file's forward" if same_stream else "output_attentions"
    return reference, worst, allowed


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
    bound it was held to ("allowed": 1e-5 in float32; in float16/bfloat16 the larger of 2e-2/5e-2 and what the
    reference's own rounding explains at that layer's logits).
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
            reference, worst, allowed = verify(out_path, hf_model, calls, captured, encoder_decoder, device,
                                               next(hf_model.parameters()).dtype, inputs)
        except BaseException:
            os.remove(out_path)
            raise
        manifest["verification"] = {"reference": reference,
                                    "max_abs_diff": {str(i): v for i, v in worst.items()},
                                    "allowed": {str(i): v for i, v in allowed.items()},
                                    "inputs": [len(x) for x in inputs]}
    return manifest


__all__ = ["ExportError", "export", "verify"]
