"""attnprox export, part 3: loading the model, and the manifest of its file (docs/model-file.md) from the probe's
attention calls and the model's config, with the rotary embedding record (attnprox.hf_rope)."""
from typing import Optional

import torch

from .errors import ExportError
from .model_file import FORMAT, FORMAT_VERSION, dtype_names, tokenizer_facts
from .hf_capture import _Recorder, _Stop, _state
from .hf_trace import _config_value, _takes_token_types

_DTYPE_NAMES = dtype_names()


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


def _token_id(config, name: str) -> Optional[int]:
    """A special token's id from a transformers config (the first of a list), or None."""
    value = getattr(config, name, None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) and value >= 0 else None


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
