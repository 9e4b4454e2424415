"""Building blocks shared by the reference architectures, written for TorchScript (`torch.jit.script`).

Every block mirrors the Hugging Face `transformers` eager implementation of the same family, operation for
operation, so that the same weights give the same queries and keys to float32 rounding.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ExportError


class ReferenceModelError(ExportError, ValueError):
    """A model directory the reference architectures cannot represent: an `attnprox.ExportError` (no model file
    can be written for it) that is also a ValueError, as it always was. `ReferenceError` is its former name,
    deprecated (it shadows Python's built-in ReferenceError)."""


ReferenceError = ReferenceModelError


def layer_plan(num_layers: int, captured: List[int], complete: bool) -> List[Tuple[int, bool, bool]]:
    """(layer, is captured, runs completely) for every layer a model must hold: the layers up to the last
    captured one, which stops after its queries and keys; every layer, all complete, when `complete`."""
    last = max(captured) if captured else num_layers - 1
    count = num_layers if complete else last + 1
    return [(i, i in captured, complete or i < last) for i in range(count)]


def check_layers(layers: List[int], captured: List[int]) -> None:
    """forward_layers' `layers`: a non-empty, strictly ascending part of the captured layers."""
    if len(layers) == 0:
        raise ValueError("forward_layers: no layers asked for")
    for k in range(len(layers)):
        if layers[k] not in captured or (k > 0 and layers[k] <= layers[k - 1]):
            raise ValueError("forward_layers: layers must be captured layers in strictly ascending order")


class CaptureModel(nn.Module):
    """What every reference model's `forward` does: run the layers it holds and return the queries
    `[B, H, N, d]` and keys `[B, Hkv, N, d]` of its captured layers, in layer order. `forward_layers` returns
    those of a chosen part of the captured layers and stops after the last of them. Subclasses define
    `hidden_states`, which also appends to the two lists (see `Layers`), and `final_norm`; a model with segment
    embeddings (BERT) also takes `token_type_ids` as the last, optional argument of both."""

    captured: List[int]

    def __init__(self, captured: List[int]):
        super().__init__()
        self.captured = list(captured)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        return self.forward_layers(input_ids, attention_mask, self.captured)

    @torch.jit.export
    def forward_layers(self, input_ids: Tensor, attention_mask: Tensor,
                       layers: List[int]) -> Tuple[List[Tensor], List[Tensor]]:
        """Queries and keys of `layers`, a strictly ascending, non-empty part of the captured layers; nothing
        after the last of them is computed."""
        check_layers(layers, self.captured)
        queries: List[Tensor] = []
        keys: List[Tensor] = []
        self.hidden_states(input_ids, attention_mask, queries, keys, layers, layers[-1])
        return queries, keys

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor, queries: List[Tensor],
                      keys: List[Tensor], wanted: List[int], stop: int) -> Tensor:
        raise NotImplementedError

    def final_norm(self, x: Tensor) -> Tensor:
        return x


class PlainForward(nn.Module):
    """The model's own forward with nothing captured: every layer, then the final norm (no LM head); the
    baseline the capture overhead is measured against."""

    def __init__(self, model: CaptureModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        queries: List[Tensor] = []
        keys: List[Tensor] = []
        return self.model.final_norm(self.model.hidden_states(input_ids, attention_mask, queries, keys, [], -1))


def skip_layer(index: int, stop: int) -> bool:
    """A layer after the one the forward stops at (`stop` -1: none) is not run at all."""
    return 0 <= stop < index


def stop_after_projection(index: int, stop: int, complete: bool) -> bool:
    """The layer the forward stops at, and a model's last captured layer (built without the rest), end after
    their queries and keys."""
    return index == stop or not complete


def key_padding(attention_mask: Tensor) -> Optional[Tensor]:
    """The real tokens `[B, N]` (bool) when some are padding, None when none is: the attention then needs no
    mask beyond causality. Padding must be on the right (each row 1…1 0…0), as the engine pads: positions are
    0..n-1 for the real tokens, and a causal layer never lets a real token see the padding."""
    if bool(attention_mask.all()):
        return None
    real = attention_mask != 0
    if bool((real[:, 1:] & ~real[:, :-1]).any()):
        raise ValueError("attention_mask: padding must be on the right (each row 1...1 0...0)")
    return real


# Elements of one tile of attention logits ([B, H, rows, keys] in float32: 64 MiB) in the row-blocked attention.
ATTENTION_TILE = 1 << 24


def tile_rows(elements_per_row_key: int, n: int, window: int, budget: int) -> int:
    """Query rows per tile so that a tile of logits holds at most `budget` elements: rows · keys ·
    `elements_per_row_key` (batch × heads), with keys = n without a window, else at most rows + 2·window."""
    per = max(1, budget // max(1, elements_per_row_key))
    if window <= 0:
        rows = per // max(1, n)
    else:  # rows · (rows + 2W) <= per
        rows = int(math.sqrt(float(window * window + per))) - window
    return max(1, min(n, rows))


def visible_block(first: int, last: int, key_first: int, key_last: int, causal: bool, window: int,
                  device: torch.device) -> Tensor:
    """Which keys key_first..key_last-1 the queries first..last-1 may see `[rows, keys]` (bool), from positions:
    causal `j <= i` and, with a window W, `i - j < W`; bidirectional with a window `|i - j| <= W` (Hugging Face's
    conventions)."""
    distance = (torch.arange(first, last, device=device).view(-1, 1)
                - torch.arange(key_first, key_last, device=device).view(1, -1))  # i - j
    if causal:
        visible = distance >= 0
        if window > 0:
            visible = visible & (distance < window)
        return visible
    if window > 0:
        return distance.abs() <= window
    return torch.ones([last - first, key_last - key_first], dtype=torch.bool, device=device)


class Attention(nn.Module):
    """softmax(scaling · Q Kᵀ + M) V of one layer, with the mask M built here, per layer, from positions: causal,
    the layer's sliding window, and the padded keys of a batch (bidirectional layers; a causal layer never sees
    right padding). No N × N tensor is made: without a window or padding the fused path (`fused`, torch's
    `scaled_dot_product_attention`, torch 2.1+) calls it with `is_causal` (flash kernels) or no mask; otherwise, and
    always on the eager path (matmul and a float32 softmax, as HF's `eager_attention_forward`), the queries go in
    tiles of rows against the keys they can see, each tile's mask built for it.

    q `[B, H, N, d]`, k and v `[B, Hkv, N, d]` (query head h reads key head h // (H / Hkv)) → `[B, N, H·d]`.
    """

    __constants__ = ["scaling", "groups", "causal", "window", "fused", "tile"]

    def __init__(self, scaling: float, groups: int, causal: bool, window: int, fused: bool,
                 tile: int = ATTENTION_TILE):
        super().__init__()
        self.scaling = scaling
        self.groups = groups
        self.causal = causal
        self.window = window
        self.fused = fused
        self.tile = tile

    def forward(self, q: Tensor, k: Tensor, v: Tensor, padding: Optional[Tensor]) -> Tensor:
        if self.groups > 1:
            k = k.repeat_interleave(self.groups, dim=1)
            v = v.repeat_interleave(self.groups, dim=1)
        b, n = q.shape[0], q.shape[2]
        if self.causal:
            padding = None  # right padding: a real token's keys are all real
        window = self.window
        if window >= (n if self.causal else n - 1):
            window = 0  # a window as long as the text keeps every key
        if self.fused:  # (a constant: the branch is compiled only where torch has SDPA)
            if window == 0 and padding is None:
                out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scaling)
            elif window == 0 and padding is not None:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=padding.view(b, 1, 1, n),
                                                     scale=self.scaling)
            else:
                out = self.tiled(q, k, v, padding, window)
        else:
            out = self.tiled(q, k, v, padding, window)
        return out.transpose(1, 2).reshape(b, n, -1)

    def tiled(self, q: Tensor, k: Tensor, v: Tensor, padding: Optional[Tensor], window: int) -> Tensor:
        """The attention in tiles of query rows, each against the keys it can see (causal: up to its last row;
        a window: within W of it)."""
        b, heads, n = q.shape[0], q.shape[1], q.shape[2]
        rows = tile_rows(b * heads, n, window, self.tile)
        outs: List[Tensor] = []
        for first in range(0, n, rows):
            last = min(n, first + rows)
            key_first, key_last = 0, n
            if self.causal:
                key_last = last
                if window > 0:
                    key_first = max(0, first - window + 1)
            elif window > 0:
                key_first, key_last = max(0, first - window), min(n, last + window)
            visible = visible_block(first, last, key_first, key_last, self.causal, window, q.device).view(
                1, 1, last - first, key_last - key_first)
            if padding is not None:
                visible = visible & padding[:, key_first:key_last].view(b, 1, 1, key_last - key_first)
            # A (padding) query that sees no key sees every key of its tile instead, so that its unused values stay
            # finite: a NaN there would reach real tokens through 0 · NaN in the next layers' products.
            visible = visible | ~visible.any(dim=-1, keepdim=True)
            qt, kt, vt = q[:, :, first:last], k[:, :, key_first:key_last], v[:, :, key_first:key_last]
            if self.fused:  # (a constant, as in forward)
                outs.append(F.scaled_dot_product_attention(qt, kt, vt, attn_mask=visible, scale=self.scaling))
            else:
                logits = torch.matmul(qt, kt.transpose(2, 3)) * self.scaling
                logits = logits.masked_fill(~visible, float("-inf"))
                weights = torch.softmax(logits, dim=-1, dtype=torch.float32).to(q.dtype)
                outs.append(torch.matmul(weights, vt))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


def has_sdpa() -> bool:
    if not hasattr(F, "scaled_dot_product_attention"):
        return False
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 1)  # the `scale` argument arrived in 2.1


def make_attention(scaling: float, groups: int, causal: bool, fused: Optional[bool] = None,
                   window: int = 0) -> nn.Module:
    """The attention of one layer: fused (SDPA) when `fused`, or by default when the exporting torch has it."""
    return Attention(scaling, groups, causal, window, has_sdpa() if fused is None else fused)


class Activation(nn.Module):
    """The activations HF configs name (`hidden_act`, `activation_function`, `activation`)."""

    __constants__ = ["kind"]
    KINDS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish", "quick_gelu")

    def __init__(self, kind: str):
        super().__init__()
        if kind not in self.KINDS:
            raise ReferenceModelError(f"activation '{kind}' is not supported by the reference architectures "
                                 f"(supported: {', '.join(self.KINDS)})")
        self.kind = "silu" if kind == "swish" else kind

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "gelu":
            return F.gelu(x)
        if self.kind == "gelu_new":
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
        if self.kind == "gelu_pytorch_tanh":
            return F.gelu(x, approximate="tanh")
        if self.kind == "gelu_fast":
            return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))
        if self.kind == "quick_gelu":
            return x * torch.sigmoid(1.702 * x)
        if self.kind == "relu":
            return F.relu(x)
        return F.silu(x)


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight, computed in float32 (HF `LlamaRMSNorm`)."""

    __constants__ = ["eps"]

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x32 = x.to(torch.float32)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


class Rotary(nn.Module):
    """Rotary position embeddings: cos/sin tables `[N, d]` for positions 0..N-1 from inverse frequencies
    `inv_freq[d/2]` kept as a list of floats, so that casting the module to a low precision dtype leaves them
    exact (HF keeps them in float32 too)."""

    __constants__ = ["attention_scaling"]

    def __init__(self, inv_freq: List[float], attention_scaling: float):
        super().__init__()
        self.inv_freq = inv_freq
        self.attention_scaling = attention_scaling

    def forward(self, n: int, device: torch.device, dtype: torch.dtype) -> List[Tensor]:
        inv_freq = torch.tensor(self.inv_freq, dtype=torch.float32, device=device)
        positions = torch.arange(n, device=device).to(torch.float32)
        freqs = positions.view(n, 1) * inv_freq.view(1, -1)  # [N, d/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = (emb.cos() * self.attention_scaling).to(dtype)
        sin = (emb.sin() * self.attention_scaling).to(dtype)
        return [cos, sin]


def rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x `[B, heads, N, d]` rotated by position: x·cos + rotate_half(x)·sin (HF `apply_rotary_pos_emb`)."""
    return x * cos + rotate_half(x) * sin


def rope_inverse_frequencies(head_dim: int, rope: dict) -> List[float]:
    """Inverse frequencies of HF's rope types `default`, `linear` and `llama3` (`modeling_rope_utils`)."""
    kind = rope.get("rope_type", rope.get("type", "default"))
    theta = float(rope["rope_theta"])
    dim = int(head_dim * float(rope.get("partial_rotary_factor", 1.0)))
    if dim != head_dim:
        raise ReferenceModelError("partial rotary embeddings are not supported by the reference architectures")
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim))
    if kind == "default":
        pass
    elif kind == "linear":
        inv_freq = inv_freq / float(rope["factor"])
    elif kind == "llama3":
        factor = float(rope["factor"])
        low, high = float(rope["low_freq_factor"]), float(rope["high_freq_factor"])
        old_context = float(rope["original_max_position_embeddings"])
        low_wavelen, high_wavelen = old_context / low, old_context / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_context / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv_freq = torch.where(medium, smoothed, scaled)
    else:
        raise ReferenceModelError(f"rope_type '{kind}' is not supported by the reference architectures "
                             "(default, linear, llama3); export through transformers instead")
    return inv_freq.tolist()
