"""GPT-2 in plain torch: learned positions, multi-head attention, causal, pre-LN (HF `modeling_gpt2`).

Submodule names follow HF's `GPT2Model` so that its state dict loads as is.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from .common import (Activation, CaptureModel, key_padding, layer_plan, make_attention, skip_layer,
                     stop_after_projection)
from .config import ArchConfig


class Conv1D(nn.Module):
    """GPT-2's linear layer with a transposed weight `[in, out]`: x · W + b."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return out.view(list(x.shape[:-1]) + [self.weight.shape[1]])


class GPT2Attention(nn.Module):
    __constants__ = ["heads", "head_dim"]

    def __init__(self, cfg: ArchConfig, layer: int, fused):
        super().__init__()
        self.heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.c_attn = Conv1D(cfg.hidden_size, 3 * cfg.hidden_size)
        self.c_proj = Conv1D(cfg.hidden_size, cfg.hidden_size)
        self.attend = make_attention(cfg.scalings[layer], 1, True, fused)

    def project(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """q, k, v `[B, H, N, d]`."""
        b, n = x.shape[0], x.shape[1]
        qkv = self.c_attn(x).view(b, n, 3, self.heads, self.head_dim)
        return qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)


class GPT2MLP(nn.Module):
    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.c_fc = Conv1D(cfg.hidden_size, cfg.intermediate_size)
        self.c_proj = Conv1D(cfg.intermediate_size, cfg.hidden_size)
        self.act = Activation(cfg.activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class GPT2Block(nn.Module):
    __constants__ = ["index", "capture", "complete"]

    def __init__(self, cfg: ArchConfig, layer: int, capture: bool, complete: bool, fused):
        super().__init__()
        self.index, self.capture, self.complete = layer, capture, complete
        self.ln_1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.attn = GPT2Attention(cfg, layer, fused)
        self.ln_2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x: Tensor, padding: Optional[Tensor], queries: List[Tensor], keys: List[Tensor],
                wanted: List[int], stop: int) -> Tensor:
        if skip_layer(self.index, stop):
            return x
        q, k, v = self.attn.project(self.ln_1(x))
        if self.capture and self.index in wanted:
            queries.append(q)
            keys.append(k)
        if stop_after_projection(self.index, stop, self.complete):
            return x
        x = x + self.attn.c_proj(self.attn.attend(q, k, v, padding))
        return x + self.mlp(self.ln_2(x))


class GPT2(CaptureModel):
    """Layers 0..len(blocks)-1 of GPT-2; `forward` returns the queries and keys of the captured layers."""

    def __init__(self, cfg: ArchConfig, captured: List[int], complete: bool = False, fused=None):
        super().__init__(captured)
        self.wte = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.wpe = nn.Embedding(cfg.max_positions, cfg.hidden_size)
        self.h = nn.ModuleList([GPT2Block(cfg, i, c, full, fused) for i, c, full in
                                layer_plan(cfg.num_layers, captured, complete)])
        self.ln_f = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor, queries: List[Tensor],
                      keys: List[Tensor], wanted: List[int], stop: int) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions).unsqueeze(0)
        padding = key_padding(attention_mask)
        for block in self.h:
            x = block(x, padding, queries, keys, wanted, stop)
        return x

    def final_norm(self, x: Tensor) -> Tensor:
        return self.ln_f(x)
