"""The "rope" record of a file written by `attnprox.export` (docs/model-file.md, "rope"), read from the model and
checked on it.

A transformers model keeps its rotary embedding in a module with an `inv_freq` buffer (`model.rotary_emb`;
`attention_scaling` and `rope_type` beside it), rotates the first `2·len(inv_freq)` dimensions of each head
(partial rotary: GPT-NeoX's `rotary_pct`, Phi's `partial_rotary_factor`), in pairs (k, k + rotary_dim/2)
("rotate_half": Llama, Qwen3, Mistral, Phi, GPT-NeoX) or (2k, 2k + 1) ("interleaved": Cohere, GLM, GPT-J). Which
layout a model uses is not written anywhere it can be read, so the record is found by trial: one forward records
the queries and keys each captured layer's attention receives (after RoPE) and, with forward hooks, the same
tensors before RoPE — the output of the attention's `q_norm` / `k_norm` where it has them (Qwen3, OLMo2,
Gemma 3: the place the original Attention Proximity code hooks), else of `q_proj` / `k_proj` (Llama, Mistral,
Phi), else the query and key parts of GPT-NeoX's fused `query_key_value` — and the record written is the layout
whose inverse turns the first into the second at every captured layer, within rounding. Otherwise the record is
`{"unavailable": reason}`: no such module to check against, inverse frequencies that change with the text's length
(rope types "dynamic", "longrope"), several rotary embeddings, or no layout that fits.
"""
from typing import Callable, Dict, List, Optional, Tuple

import torch

from .rope import LAYOUTS, rotary_record, unavailable, unrotate

_UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
# Config fields that say a model has a rotary embedding.
_ROTARY_CONFIG = ("rope_theta", "rope_parameters", "rope_scaling", "rotary_dim", "rotary_pct",
                  "partial_rotary_factor", "rotary_emb_base")


def inverse_frequencies(model) -> List[Tuple[str, object, torch.Tensor]]:
    """(module name, module, inv_freq) of every module that holds inverse frequencies (`original_inv_freq`, the
    copy dynamic rope types keep, is not one)."""
    found = []
    for name, module in model.named_modules():
        value = getattr(module, "inv_freq", None)
        if isinstance(value, torch.Tensor) and value.dim() == 1 and value.numel() > 0:
            found.append((name, module, value.detach().to(torch.float32).cpu()))
    return found


def _config_says_rotary(config) -> bool:
    if config is None:
        return False
    if getattr(config, "position_embedding_type", None) == "rotary":
        return True
    return any(getattr(config, name, None) is not None for name in _ROTARY_CONFIG)


def _heads(x: torch.Tensor, d: int) -> torch.Tensor:
    """A projection's or norm's output `[B, N, heads·d]` or `[B, N, heads, d]` → `[B, heads, N, d]`."""
    b, n = x.shape[0], x.shape[1]
    return x.reshape(b, n, -1, d).transpose(1, 2)


def pre_rope_modules(attention) -> Optional[Dict[str, Tuple[torch.nn.Module, Callable]]]:
    """Where an attention module's queries and keys can be read before RoPE: {"q": (module, take), "k": (...)},
    `take(output, d)` giving `[B, heads, N, d]`; None where it has no such modules."""
    def plain(x, d):
        return _heads(x, d)

    for q_name, k_name in (("q_norm", "k_norm"), ("q_layernorm", "k_layernorm"), ("q_proj", "k_proj")):
        q, k = getattr(attention, q_name, None), getattr(attention, k_name, None)
        if isinstance(q, torch.nn.Module) and isinstance(k, torch.nn.Module) \
                and not isinstance(q, torch.nn.Identity) and not isinstance(k, torch.nn.Identity):
            return {"q": (q, plain), "k": (k, plain)}
    fused = getattr(attention, "query_key_value", None)
    if isinstance(fused, torch.nn.Module):  # GPT-NeoX: [B, N, heads, 3·d], q | k | v per head
        def part(index):
            def take(x, d):
                b, n = x.shape[0], x.shape[1]
                return x.reshape(b, n, -1, 3 * d)[..., index * d:(index + 1) * d].transpose(1, 2)
            return take

        return {"q": (fused, part(0)), "k": (fused, part(1))}
    return None


def _close(got: torch.Tensor, want: torch.Tensor, unit: float) -> Tuple[bool, float]:
    if got.shape != want.shape:
        return False, float("inf")
    got, want = got.to(torch.float32), want.to(torch.float32)
    diff = float((got - want).abs().max())
    scale = float(want.abs().max()) + 1e-30
    return diff <= 16 * unit * scale, diff / scale


def record(model, attention_modules: List[torch.nn.Module], run: Callable[[], Tuple[List[torch.Tensor],
                                                                                      List[torch.Tensor]]],
           head_dim: int) -> Optional[dict]:
    """The manifest's "rope" for a model whose captured layers' attention modules are `attention_modules`, in
    order; `run()` runs one forward on one sequence and returns the queries and keys its attention function
    received at those layers (`[1, H, N, d]`, `[1, Hkv, N, d]`). None: no rotary embedding (checked where it can
    be)."""
    found = inverse_frequencies(model)
    config = getattr(model, "config", None)
    sources = [pre_rope_modules(m) for m in attention_modules]
    if not found:
        if not _config_says_rotary(config):
            return None
        return unavailable("the config describes a rotary embedding, but no module of the model holds its inverse "
                           "frequencies (inv_freq)")
    distinct = {tuple(v.tolist()) for _, _, v in found}
    if len(distinct) > 1:
        return unavailable("the model has several rotary embeddings (" + ", ".join(n or "model" for n, _, _ in found)
                           + "), which one manifest record cannot describe")
    name, module, inv_freq = found[0]
    rope_type = str(getattr(module, "rope_type", "default") or "default")
    if "dynamic" in rope_type or rope_type == "longrope":
        return unavailable(f"rope type '{rope_type}' changes its frequencies with the text's length")
    rotary_dim = 2 * inv_freq.numel()
    if rotary_dim > head_dim:
        return unavailable(f"{name or 'the rotary module'} has {inv_freq.numel()} frequencies for heads of "
                           f"{head_dim} dimensions")
    if any(s is None for s in sources):
        return unavailable("the attention has no q_norm/k_norm, q_proj/k_proj or query_key_value module to check "
                           "the rotation against")
    scaling = float(getattr(module, "attention_scaling", 1.0) or 1.0)
    captured: Dict[Tuple[int, str], torch.Tensor] = {}
    handles = []
    for slot, source in enumerate(sources):
        for kind in ("q", "k"):
            target, take = source[kind]

            def hook(_module, _inputs, output, slot=slot, kind=kind, take=take):
                out = output[0] if isinstance(output, tuple) else output
                captured[(slot, kind)] = take(out.detach(), head_dim)

            handles.append(target.register_forward_hook(hook))
    try:
        with torch.no_grad():
            queries, keys = run()
    finally:
        for handle in handles:
            handle.remove()
    if len(queries) != len(attention_modules):
        return unavailable("the check forward did not reach every captured layer")
    dtype = queries[0].dtype
    unit = _UNIT_ROUNDOFF.get(dtype, 2.0**-8)
    misses = []
    for layout in LAYOUTS:
        candidate = rotary_record(inv_freq.tolist(), rotary_dim, layout, scaling)
        worst = 0.0
        fits = True
        for slot in range(len(attention_modules)):
            for kind, after in (("q", queries[slot]), ("k", keys[slot])):
                before = captured.get((slot, kind))
                if before is None:
                    fits = False
                    worst = float("inf")
                    continue
                ok, relative = _close(unrotate(after, candidate), before, unit)
                fits = fits and ok
                worst = max(worst, relative)
        if fits:
            return candidate
        misses.append(f"{layout}: {worst:.3g}")
    return unavailable(f"no layout of the rotation read from {name or 'the rotary module'} turns the attention's "
                       f"queries and keys into its {type(sources[0]['q'][0]).__name__} outputs (largest relative "
                       f"difference {'; '.join(misses)})")


__all__ = ["inverse_frequencies", "pre_rope_modules", "record"]
