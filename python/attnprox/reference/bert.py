"""BERT and DistilBERT in plain torch: bidirectional, post-LN encoders with learned positions
(HF `modeling_bert`, `modeling_distilbert`).

Submodule names follow HF's `BertModel` and `DistilBertModel` so that their state dicts load as is. BERT's
forward takes `token_type_ids` (the segment of each token: 0 for a text, 1 for the second text of a pair) as its
third input; without it every token is of segment 0, as in HF when `token_type_ids` is not given.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from .common import (Activation, CaptureModel, check_layers, key_padding, layer_plan, make_attention, skip_layer,
                     stop_after_projection)
from .config import ArchConfig


class QKVProjection(nn.Module):
    """Three linear maps to q, k, v `[B, H, N, d]`; the names of the maps are the family's."""

    __constants__ = ["heads", "head_dim"]

    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.num_heads, cfg.head_dim

    def split_heads(self, t: Tensor) -> Tensor:
        return t.view(t.shape[0], t.shape[1], self.heads, self.head_dim).transpose(1, 2)


class BertSelfAttention(QKVProjection):
    def __init__(self, cfg: ArchConfig):
        super().__init__(cfg)
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        return self.split_heads(self.query(x)), self.split_heads(self.key(x)), self.split_heads(self.value(x))


class DenseNorm(nn.Module):
    """LayerNorm(dense(x) + residual): BERT's `BertSelfOutput` and `BertOutput`."""

    def __init__(self, n_in: int, n_out: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        self.LayerNorm = nn.LayerNorm(n_out, eps=eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: ArchConfig, layer: int, fused):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = DenseNorm(cfg.hidden_size, cfg.hidden_size, cfg.norm_eps)
        self.attend = make_attention(cfg.scalings[layer], 1, False, fused)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = Activation(cfg.activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    __constants__ = ["index", "capture", "complete"]

    def __init__(self, cfg: ArchConfig, layer: int, capture: bool, complete: bool, fused):
        super().__init__()
        self.index, self.capture, self.complete = layer, capture, complete
        self.attention = BertAttention(cfg, layer, fused)
        self.intermediate = BertIntermediate(cfg)
        self.output = DenseNorm(cfg.intermediate_size, cfg.hidden_size, cfg.norm_eps)

    def forward(self, x: Tensor, padding: Optional[Tensor], queries: List[Tensor], keys: List[Tensor],
                wanted: List[int], stop: int) -> Tensor:
        if skip_layer(self.index, stop):
            return x
        q, k, v = self.attention.self(x)
        if self.capture and self.index in wanted:
            queries.append(q)
            keys.append(k)
        if stop_after_projection(self.index, stop, self.complete):
            return x
        x = self.attention.output(self.attention.attend(q, k, v, padding), x)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, layers: List[nn.Module]):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: ArchConfig, token_types: bool):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden_size)
        if token_types:
            self.token_type_embeddings = nn.Embedding(max(cfg.type_vocab_size, 1), cfg.hidden_size)
        else:
            self.token_type_embeddings = None
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)

    def forward(self, input_ids: Tensor, token_type_ids: Optional[Tensor] = None) -> Tensor:
        x = self.word_embeddings(input_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                x = x + self.token_type_embeddings.weight[0]
            else:
                x = x + self.token_type_embeddings(token_type_ids)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = x + self.position_embeddings(positions).unsqueeze(0)
        return self.LayerNorm(x)


class Bert(CaptureModel):
    def __init__(self, cfg: ArchConfig, captured: List[int], complete: bool = False, fused=None):
        super().__init__(captured)
        self.embeddings = BertEmbeddings(cfg, token_types=True)
        self.encoder = BertEncoder([BertLayer(cfg, i, c, full, fused) for i, c, full in
                                    layer_plan(cfg.num_layers, captured, complete)])

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                token_type_ids: Optional[Tensor] = None) -> Tuple[List[Tensor], List[Tensor]]:
        return self.forward_layers(input_ids, attention_mask, self.captured, token_type_ids)

    @torch.jit.export
    def forward_layers(self, input_ids: Tensor, attention_mask: Tensor, layers: List[int],
                       token_type_ids: Optional[Tensor] = None) -> Tuple[List[Tensor], List[Tensor]]:
        """CaptureModel.forward_layers with the segment of each token (None: segment 0), which the engine passes
        after `layers` for files whose manifest lists token_type_ids (docs/model-file.md)."""
        check_layers(layers, self.captured)
        queries: List[Tensor] = []
        keys: List[Tensor] = []
        self.hidden_states(input_ids, attention_mask, queries, keys, layers, layers[-1], token_type_ids)
        return queries, keys

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor, queries: List[Tensor],
                      keys: List[Tensor], wanted: List[int], stop: int,
                      token_type_ids: Optional[Tensor] = None) -> Tensor:
        x = self.embeddings(input_ids, token_type_ids)
        padding = key_padding(attention_mask)
        for layer in self.encoder.layer:
            x = layer(x, padding, queries, keys, wanted, stop)
        return x



class DistilBertSelfAttention(QKVProjection):
    def __init__(self, cfg: ArchConfig, layer: int, fused):
        super().__init__(cfg)
        self.q_lin = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.k_lin = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.v_lin = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.out_lin = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.attend = make_attention(cfg.scalings[layer], 1, False, fused)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        return self.split_heads(self.q_lin(x)), self.split_heads(self.k_lin(x)), self.split_heads(self.v_lin(x))


class DistilBertFFN(nn.Module):
    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.lin1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.lin2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.act = Activation(cfg.activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))


class DistilBertLayer(nn.Module):
    __constants__ = ["index", "capture", "complete"]

    def __init__(self, cfg: ArchConfig, layer: int, capture: bool, complete: bool, fused):
        super().__init__()
        self.index, self.capture, self.complete = layer, capture, complete
        self.attention = DistilBertSelfAttention(cfg, layer, fused)
        self.sa_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.ffn = DistilBertFFN(cfg)
        self.output_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)

    def forward(self, x: Tensor, padding: Optional[Tensor], queries: List[Tensor], keys: List[Tensor],
                wanted: List[int], stop: int) -> Tensor:
        if skip_layer(self.index, stop):
            return x
        q, k, v = self.attention(x)
        if self.capture and self.index in wanted:
            queries.append(q)
            keys.append(k)
        if stop_after_projection(self.index, stop, self.complete):
            return x
        x = self.sa_layer_norm(self.attention.out_lin(self.attention.attend(q, k, v, padding)) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class DistilBertTransformer(nn.Module):
    def __init__(self, layers: List[nn.Module]):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class DistilBert(CaptureModel):
    def __init__(self, cfg: ArchConfig, captured: List[int], complete: bool = False, fused=None):
        super().__init__(captured)
        self.embeddings = BertEmbeddings(cfg, token_types=False)
        self.transformer = DistilBertTransformer([DistilBertLayer(cfg, i, c, full, fused) for i, c, full in
                                                  layer_plan(cfg.num_layers, captured, complete)])

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor, queries: List[Tensor],
                      keys: List[Tensor], wanted: List[int], stop: int) -> Tensor:
        x = self.embeddings(input_ids)
        padding = key_padding(attention_mask)
        for layer in self.transformer.layer:
            x = layer(x, padding, queries, keys, wanted, stop)
        return x

