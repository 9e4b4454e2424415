"""The "rope" record `attnprox export` writes (attnprox.hf_rope), without transformers: small attention modules in
plain torch laid out as transformers' are (a rotary module with `inv_freq` and `attention_scaling`, `q_proj` /
`k_proj`, optionally `q_norm` / `k_norm` or a fused `query_key_value`), whose rotation is written here by hand
(rotate_half and interleaved pairs, partial rotary). The record must name the layout the model used, and
`attnprox.rope.unrotate` with it must give back the queries and keys before the rotation; what cannot be described
or checked is `{"unavailable": reason}`."""
import math

import pytest
import torch
from torch import nn

from attnprox import hf_rope
from attnprox.rope import rotate, rotary_record, unrotate

HEADS, KV_HEADS, D, HIDDEN, N = 4, 2, 8, 24, 12


class Rotary(nn.Module):
    def __init__(self, dim, base=10000.0, scaling=1.0, rope_type="default"):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.attention_scaling = scaling
        self.rope_type = rope_type


def turned(x, inv_freq, dim, layout, scaling):
    """x [B, heads, N, d] rotated by hand (float64 angles from float32 ones), the pairs as `layout` says."""
    n = x.shape[2]
    angle = (torch.arange(n, dtype=torch.float32).view(n, 1) * inv_freq.view(1, -1)).double()
    c, s = scaling * angle.cos(), scaling * angle.sin()
    out = x.double().clone()
    half = dim // 2
    idx_a = torch.arange(half) if layout == "rotate_half" else 2 * torch.arange(half)
    idx_b = idx_a + half if layout == "rotate_half" else idx_a + 1
    a, b = out[..., idx_a].clone(), out[..., idx_b].clone()
    out[..., idx_a] = a * c - b * s
    out[..., idx_b] = b * c + a * s
    return out.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, kind="proj"):
        super().__init__()
        self.kind = kind
        if kind == "fused":
            self.query_key_value = nn.Linear(HIDDEN, HEADS * 3 * D)
        else:
            self.q_proj = nn.Linear(HIDDEN, HEADS * D)
            self.k_proj = nn.Linear(HIDDEN, KV_HEADS * D)
        if kind == "norm":
            self.q_norm = nn.LayerNorm(D)
            self.k_norm = nn.LayerNorm(D)

    def project(self, x):
        b, n = x.shape[:2]
        if self.kind == "fused":
            qkv = self.query_key_value(x).view(b, n, HEADS, 3 * D).transpose(1, 2)
            return qkv[..., :D], qkv[..., D:2 * D]
        q = self.q_proj(x).view(b, n, -1, D)
        k = self.k_proj(x).view(b, n, -1, D)
        if self.kind == "norm":
            q, k = self.q_norm(q), self.k_norm(k)
        return q.transpose(1, 2), k.transpose(1, 2)


class Model(nn.Module):
    def __init__(self, kind="proj", layout="rotate_half", dim=D, scaling=1.0, rope_type="default", layers=2,
                 rotary=True):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(50, HIDDEN)
        self.layers = nn.ModuleList([Attention(kind) for _ in range(layers)])
        if rotary:
            self.rotary_emb = Rotary(dim, scaling=scaling, rope_type=rope_type)
        self.layout, self.dim, self.scaling = layout, dim, scaling
        self.config = type("Config", (), {"rope_theta": 10000.0} if rotary else {})()

    def forward(self, ids):
        """The queries and keys each layer's attention receives (after RoPE), as the capture records them."""
        x = self.embed(ids)
        queries, keys = [], []
        for layer in self.layers:
            q, k = layer.project(x)
            if hasattr(self, "rotary_emb"):
                q = turned(q, self.rotary_emb.inv_freq, self.dim, self.layout, self.scaling)
                k = turned(k, self.rotary_emb.inv_freq, self.dim, self.layout, self.scaling)
            queries.append(q)
            keys.append(k)
            x = x + 0.1 * torch.tanh(x)
        return queries, keys


def record_of(model, layers=None):
    chosen = list(range(len(model.layers))) if layers is None else layers
    ids = torch.arange(N).view(1, N) * 3 % 50

    def run():
        q, k = model(ids)
        return [q[i] for i in chosen], [k[i] for i in chosen]

    return hf_rope.record(model, [model.layers[i] for i in chosen], run, D)


@pytest.mark.parametrize("kind", ["proj", "norm", "fused"])
@pytest.mark.parametrize("layout", ["rotate_half", "interleaved"])
def test_the_layout_the_model_used_is_recorded(kind, layout):
    if kind == "fused":
        model = Model(kind, layout)
        model.layers[0].query_key_value.weight.data.normal_()
    else:
        model = Model(kind, layout)
    rope = record_of(model)
    assert rope.get("layout") == layout, rope
    assert rope["rotary_dim"] == D and rope["attention_scaling"] == 1.0
    assert rope["inv_freq"] == model.rotary_emb.inv_freq.tolist()
    # The record undoes what the model did: the queries before RoPE, from the module the hooks read.
    with torch.no_grad():
        ids = torch.arange(N).view(1, N) * 3 % 50
        after = model(ids)[0][0]
        before = model.layers[0].project(model.embed(ids))[0]
    assert (after - before).abs().max() > 1e-2
    assert torch.allclose(unrotate(after, rope), before, atol=1e-5)


def test_partial_rotary_and_attention_scaling():
    model = Model("proj", "rotate_half", dim=4, scaling=1.3)
    rope = record_of(model)
    assert rope["rotary_dim"] == 4 and len(rope["inv_freq"]) == 2
    assert rope["attention_scaling"] == pytest.approx(1.3)
    x = torch.randn(1, 2, N, D)
    assert torch.allclose(unrotate(rotate(x, rope), rope), x, atol=1e-5)
    assert torch.equal(rotate(x, rope)[..., 4:], x[..., 4:])


def test_what_cannot_be_described_or_checked_is_unavailable():
    assert "length" in record_of(Model(rope_type="dynamic"))["unavailable"]
    assert "length" in record_of(Model(rope_type="longrope"))["unavailable"]
    wrong = Model("proj", "rotate_half")
    wrong.layout = "neither"  # the model turns pairs no layout describes
    wrong.forward = lambda ids: ([torch.flip(q, [-1]) for q in Model.forward(wrong, ids)[0]],
                                 Model.forward(wrong, ids)[1])
    assert "no layout" in record_of(wrong)["unavailable"]
    model = Model()
    unchecked = hf_rope.record(model, [nn.Module(), nn.Module()], lambda: model(torch.arange(N).view(1, N)), D)
    assert "to check the rotation against" in unchecked["unavailable"]  # no q_proj/k_proj, q_norm, query_key_value
    model.extra = Rotary(4)  # a second, different rotary embedding
    assert "several rotary embeddings" in record_of(model)["unavailable"]


def test_models_without_rotary_embeddings():
    assert record_of(Model(rotary=False)) is None
    model = Model(rotary=False)
    model.config.rotary_pct = 0.25  # the config says rotary, but nothing holds its frequencies
    assert "no module" in record_of(model)["unavailable"]


def test_rotary_record_checks_its_fields():
    assert rotary_record([1.0, 0.5])["rotary_dim"] == 4
    with pytest.raises(ValueError, match="needs 3 inverse frequencies"):
        rotary_record([1.0, 0.5], rotary_dim=6)
    with pytest.raises(ValueError, match="layout"):
        rotary_record([1.0], layout="spiral")
    assert rotary_record([1 / 3])["inv_freq"][0] == float(torch.tensor(1 / 3, dtype=torch.float32))
    assert math.isclose(rotary_record([1.0], attention_scaling=2)["attention_scaling"], 2.0)
