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

The code is in four parts: attnprox.hf_capture (steps 2–3), attnprox.hf_trace (4), attnprox.hf_manifest (the
manifest, with the rotary embedding record of attnprox.hf_rope) and attnprox.hf_verify (5); `export` below runs them.
"""
import json
import os
from typing import Callable, Iterable, Optional

import torch

from .errors import ExportError
from .files import folder_files, save_module
# The format names, re-exported for the modules that took them from here (attnprox.model_file owns them).
from .model_file import (FORMAT, FORMAT_VERSION, MANIFEST_NAME, TOKENIZER_NAME, check_tokenizer,  # noqa: F401
                         dtype_names, parse_dtype, tokenizer_facts)
from .reference.model import Layers, parse_layers
from .reference.tokenizer_files import tokenizer_json_of
# The four parts (each can be read and tested alone); their names stay reachable from here.
from .hf_capture import (_CAPTURE, _UNSUPPORTED_KWARGS, _PROBE_POSITIONS, _Recorder, _Stop, _active,  # noqa: F401
                         _base_attention, _capture_attention, _describe_call, _eager_attention, _is_causal,
                         _keep_rows, _key_mask, _layer_mask, _marker_of, _mask_for, _mask_pattern, _number,
                         _pattern_is, _probe, _register, _set_implementation, _state, _transformers,
                         _transformers_mask, _untraced)
from .hf_trace import (_Captured, _LayerChoice, _LayerChoiceWithTypes, _config_value, _keep_flags,  # noqa: F401
                       _kept, _takes_token_types, _trace)
from .hf_manifest import _DTYPE_NAMES, _load_model, _manifest, _module_names, _rope, _token_id  # noqa: F401
from .hf_verify import (TOLERANCE, _FLOAT32_UNIT, _UNIT_ROUNDOFF, _Reference, _float32_bound,  # noqa: F401
                        _padded, _reference_attentions, _reference_run, _rounding_bound, _verification_inputs,
                        _verify, verify)


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
    save_module(traced, out_path, extra, inputs=folder_files(tokenizer_dir) + folder_files(
        model if isinstance(model, (str, os.PathLike)) else None))
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
