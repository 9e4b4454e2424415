"""Llama 3 and Qwen3 in plain torch: grouped-query attention, rotary positions, RMSNorm, gated MLP; Qwen3 adds
RMSNorm on each query and key head before the rotation (HF `modeling_llama`, `modeling_qwen3`). Mistral and
Qwen2 are the same architecture with a sliding window or q/k/v biases.

Submodule names follow HF's `LlamaModel` / `Qwen3Model` so that their state dicts load as is.
"""
from typing import List, Optional

from torch import Tensor, nn

from .common import (Activation, CaptureModel, RMSNorm, Rotary, apply_rotary, key_padding, layer_plan,
                     make_attention, rope_inverse_frequencies, skip_layer, stop_after_projection)
from .config import ArchConfig


class LlamaAttention(nn.Module):
    __constants__ = ["heads", "kv_heads", "head_dim"]

    def __init__(self, cfg: ArchConfig, layer: int, fused):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.num_heads * cfg.head_dim, cfg.hidden_size, bias=cfg.o_bias)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(cfg.head_dim, cfg.norm_eps)
            self.k_norm = RMSNorm(cfg.head_dim, cfg.norm_eps)
        else:
            self.q_norm = nn.Identity()
            self.k_norm = nn.Identity()
        self.attend = make_attention(cfg.scalings[layer], cfg.num_heads // cfg.num_kv_heads, True, fused,
                                     cfg.windows[layer])

    def project(self, x: Tensor, cos: Tensor, sin: Tensor) -> List[Tensor]:
        """q `[B, H, N, d]`, k and v `[B, Hkv, N, d]`; q and k normed (Qwen3) and rotated."""
        b, n = x.shape[0], x.shape[1]
        q = self.q_norm(self.q_proj(x).view(b, n, self.heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, n, self.kv_heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        return [apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v]


class LlamaMLP(nn.Module):
    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=cfg.mlp_bias)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=cfg.mlp_bias)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=cfg.mlp_bias)
        self.act_fn = Activation(cfg.activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    __constants__ = ["index", "capture", "complete"]

    def __init__(self, cfg: ArchConfig, layer: int, capture: bool, complete: bool, fused):
        super().__init__()
        self.index, self.capture, self.complete = layer, capture, complete
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.self_attn = LlamaAttention(cfg, layer, fused)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.mlp = LlamaMLP(cfg)

    def forward(self, x: Tensor, padding: Optional[Tensor], cos: Tensor, sin: Tensor, queries: List[Tensor],
                keys: List[Tensor], wanted: List[int], stop: int) -> Tensor:
        if skip_layer(self.index, stop):
            return x
        qkv = self.self_attn.project(self.input_layernorm(x), cos, sin)
        if self.capture and self.index in wanted:
            queries.append(qkv[0])
            keys.append(qkv[1])
        if stop_after_projection(self.index, stop, self.complete):
            return x
        x = x + self.self_attn.o_proj(self.self_attn.attend(qkv[0], qkv[1], qkv[2], padding))
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(CaptureModel):
    def __init__(self, cfg: ArchConfig, captured: List[int], complete: bool = False, fused=None):
        super().__init__(captured)
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.rotary_emb = Rotary(rope_inverse_frequencies(cfg.head_dim, cfg.rope), 1.0)
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg, i, c, full, fused) for i, c, full in
                                     layer_plan(cfg.num_layers, captured, complete)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor, queries: List[Tensor],
                      keys: List[Tensor], wanted: List[int], stop: int) -> Tensor:
        x = self.embed_tokens(input_ids)
        cos_sin = self.rotary_emb(input_ids.shape[1], x.device, x.dtype)
        padding = key_padding(attention_mask)
        for layer in self.layers:
            x = layer(x, padding, cos_sin[0], cos_sin[1], queries, keys, wanted, stop)
        return x

    def final_norm(self, x: Tensor) -> Tensor:
        return self.norm(x)
