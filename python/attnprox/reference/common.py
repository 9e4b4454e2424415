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


class CaptureModel(nn.Module):
    """What every reference model's `forward` does: run the layers it holds and return the queries
    `[B, H, N, d]` and keys `[B, Hkv, N, d]` of its captured layers, in layer order. Subclasses define
    `hidden_states`, which also appends to the two lists, and `final_norm`."""

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        queries: List[Tensor] = []
        keys: List[Tensor] = []
        self.hidden_states(input_ids, attention_mask, queries, keys)
        return queries, keys

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor, queries: List[Tensor],
                      keys: List[Tensor]) -> Tensor:
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
        return self.model.final_norm(self.model.hidden_states(input_ids, attention_mask, queries, keys))


def attention_bias(attention_mask: Tensor, causal: bool, window: int, dtype: torch.dtype) -> Optional[Tensor]:
    """Additive attention bias `[B, 1, N, N]`: 0 where query i may attend to key j, -inf elsewhere.

    Key j is visible to query i when it is a real token (mask 1), and, when causal, `j <= i`; a sliding window W
    (W > 0) keeps `i - j < W` when causal and `|i - j| <= W` when bidirectional (Hugging Face's conventions).
    Returns None when nothing is masked beyond plain causality (no padding, no window): the attention then
    uses its cheaper unmasked path.
    """
    n = attention_mask.shape[1]
    if window <= 0 and bool(attention_mask.all()):
        return None
    pos = torch.arange(n, device=attention_mask.device)
    distance = pos.view(n, 1) - pos.view(1, n)  # i - j
    allowed = torch.ones(n, n, dtype=torch.bool, device=attention_mask.device)
    if causal:
        allowed = distance >= 0
        if window > 0:
            allowed = allowed & (distance < window)
    elif window > 0:
        allowed = distance.abs() <= window
    allowed = allowed.view(1, 1, n, n) & (attention_mask != 0).view(-1, 1, 1, n)
    # A padding query can have no visible key (a window over padding only); let such rows see every key so that
    # their (unused) values stay finite instead of NaN.
    allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
    return bias.masked_fill(~allowed, float("-inf"))


class EagerAttention(nn.Module):
    """softmax(scaling · Q Kᵀ + bias) V with the softmax in float32, as HF's `eager_attention_forward`.

    q `[B, H, N, d]`, k and v `[B, Hkv, N, d]` (query head h reads key head h // (H / Hkv)) → `[B, N, H·d]`.
    """

    __constants__ = ["scaling", "groups", "causal"]

    def __init__(self, scaling: float, groups: int, causal: bool):
        super().__init__()
        self.scaling = scaling
        self.groups = groups
        self.causal = causal

    def forward(self, q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor]) -> Tensor:
        if self.groups > 1:
            k = k.repeat_interleave(self.groups, dim=1)
            v = v.repeat_interleave(self.groups, dim=1)
        logits = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        if bias is not None:
            logits = logits + bias
        elif self.causal:
            n = q.shape[2]
            future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
            logits = logits.masked_fill(future, float("-inf"))
        weights = torch.softmax(logits, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(weights, v)
        return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


class SdpaAttention(nn.Module):
    """The same attention through `torch.nn.functional.scaled_dot_product_attention` (fused kernels; never builds
    the N×N weights). Used when the exporting torch has it (2.1 and later)."""

    __constants__ = ["scaling", "groups", "causal"]

    def __init__(self, scaling: float, groups: int, causal: bool):
        super().__init__()
        self.scaling = scaling
        self.groups = groups
        self.causal = causal

    def forward(self, q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor]) -> Tensor:
        if self.groups > 1:
            k = k.repeat_interleave(self.groups, dim=1)
            v = v.repeat_interleave(self.groups, dim=1)
        if bias is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scaling)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scaling)
        return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def has_sdpa() -> bool:
    if not hasattr(F, "scaled_dot_product_attention"):
        return False
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 1)  # the `scale` argument arrived in 2.1


def make_attention(scaling: float, groups: int, causal: bool, fused: Optional[bool] = None) -> nn.Module:
    use_sdpa = has_sdpa() if fused is None else fused
    return (SdpaAttention if use_sdpa else EagerAttention)(scaling, groups, causal)


class Activation(nn.Module):
    """The activations HF configs name (`hidden_act`, `activation_function`, `activation`)."""

    __constants__ = ["kind"]
    KINDS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish", "quick_gelu")

    def __init__(self, kind: str):
        super().__init__()
        if kind not in self.KINDS:
            raise ReferenceError(f"activation '{kind}' is not supported by the reference architectures "
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
        raise ReferenceError("partial rotary embeddings are not supported by the reference architectures")
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
        raise ReferenceError(f"rope_type '{kind}' is not supported by the reference architectures "
                             "(default, linear, llama3); export through transformers instead")
    return inv_freq.tolist()
