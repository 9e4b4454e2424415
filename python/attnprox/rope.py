"""The rotary position embedding (RoPE) record of a model file (docs/model-file.md, "rope"), and its inverse.

The proximity family measures queries and keys before RoPE by default (docs/measurements.md §1); the engine gets
them by undoing the rotation the manifest records. This module writes that record for both exporters and holds
the same inverse in torch, for the exporters' checks:

- `rotary_record(inv_freq, rotary_dim, layout, attention_scaling)`: the manifest's "rope" object;
- `unavailable(reason)`: the record of a rotation a file cannot describe;
- `rotate(x, record)` and `unrotate(x, record)`: `x` `[B, heads, N, d]` (or `[heads, N, d]`) at positions
  0..N−1, as the model rotates it (float32 angles, cos and sin rounded to x's dtype) and back.
"""
from typing import List, Optional, Sequence

import torch

LAYOUTS = ("rotate_half", "interleaved")


def rotary_record(inv_freq: Sequence[float], rotary_dim: Optional[int] = None, layout: str = "rotate_half",
                  attention_scaling: float = 1.0) -> dict:
    """The manifest's "rope" object: `inv_freq` (rotary_dim / 2 float32 values, written exactly), the rotated
    dimensions (the first `rotary_dim` of each head), the layout of the rotated pairs ("rotate_half": (k,
    k + rotary_dim/2), as Llama and Qwen3; "interleaved": (2k, 2k + 1), as GPT-J), and the factor of cos and sin."""
    values = [float(v) for v in torch.tensor([float(v) for v in inv_freq], dtype=torch.float32).tolist()]
    dim = 2 * len(values) if rotary_dim is None else int(rotary_dim)
    if dim != 2 * len(values) or not values:
        raise ValueError(f"rotary_dim {dim} needs {dim // 2} inverse frequencies, {len(values)} given")
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {LAYOUTS}")
    return {"inv_freq": values, "rotary_dim": dim, "layout": layout, "attention_scaling": float(attention_scaling)}


def unavailable(reason: str) -> dict:
    """The record of a rotary embedding the file cannot describe: pre-RoPE queries and keys are refused, naming
    `reason`."""
    return {"unavailable": str(reason)}


def _tables(record: dict, n: int, dtype: torch.dtype, device) -> List[torch.Tensor]:
    inv_freq = torch.tensor(record["inv_freq"], dtype=torch.float32, device=device)
    angle = torch.arange(n, device=device).to(torch.float32).view(n, 1) * inv_freq.view(1, -1)
    scaling = float(record.get("attention_scaling", 1.0))
    cos = (angle.cos() * scaling).to(dtype).to(torch.float32)
    sin = (angle.sin() * scaling).to(dtype).to(torch.float32)
    return [cos, sin]


def _pairs(x: torch.Tensor, record: dict) -> List[torch.Tensor]:
    half = record["rotary_dim"] // 2
    if record["layout"] == "rotate_half":
        return [x[..., :half], x[..., half:2 * half]]
    pairs = x[..., :2 * half].reshape(*x.shape[:-1], half, 2)
    return [pairs[..., 0], pairs[..., 1]]


def _join(a: torch.Tensor, b: torch.Tensor, rest: torch.Tensor, record: dict) -> torch.Tensor:
    if record["layout"] == "rotate_half":
        rotated = torch.cat([a, b], dim=-1)
    else:
        rotated = torch.stack([a, b], dim=-1).flatten(-2)
    return torch.cat([rotated, rest], dim=-1)


def rotate(x: torch.Tensor, record: dict) -> torch.Tensor:
    """`x` rotated at positions 0..N−1 (the second-to-last dimension) as the record says, computed in float32."""
    cos, sin = _tables(record, x.shape[-2], x.dtype, x.device)
    work = x.to(torch.float32)
    a, b = _pairs(work, record)
    return _join(a * cos - b * sin, b * cos + a * sin, work[..., record["rotary_dim"]:], record).to(x.dtype)


def unrotate(x: torch.Tensor, record: dict) -> torch.Tensor:
    """The inverse of `rotate`: `x` as it was before the rotation (the engine's `unrotate`, in torch)."""
    cos, sin = _tables(record, x.shape[-2], x.dtype, x.device)
    work = x.to(torch.float32)
    a, b = _pairs(work, record)
    norm = cos * cos + sin * sin
    return _join((a * cos + b * sin) / norm, (b * cos - a * sin) / norm, work[..., record["rotary_dim"]:],
                 record).to(x.dtype)


__all__ = ["LAYOUTS", "rotary_record", "unavailable", "rotate", "unrotate"]
