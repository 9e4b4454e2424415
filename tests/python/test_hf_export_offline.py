"""`attnprox.export` end to end without transformers: a stand-in for the parts of transformers the exporter uses
(the attention-function and mask registries, `sdpa_attention_forward`'s choice of `is_causal`, the eager mask, a
model that makes its masks through the registry and calls its attention through it), written from transformers'
own code, with a small decoder that has grouped-query heads, a sliding-window layer and a layer with attention
sinks (eager attention), and an encoder. What it pins: the traced file has no N × N mask where a layer needs none,
`forward_layers` keeps the layers asked for, the padded batch equals single runs, float32 verification against
output_attentions, and the float16/bfloat16 verification against float32 eager weights, which fails where a file's
attention is not what its queries and keys imply although the logits are large. The real transformers families are
checked on the GPU machine (tests/gpu/check_exporter.py)."""
import math
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

import attnprox
from attnprox import hf_export


# --- the stand-in for transformers -------------------------------------------------------------------------------

class _Registry(dict):
    def register(self, name, fn):
        self[name] = fn


ATTENTION = _Registry()
MASKS = _Registry()


def _visible(batch_size, q_length, kv_length, mask_function, attention_mask, device):
    """transformers' sdpa_mask without its shortcuts: mask_function on broadcast indices, and the padding."""
    b = torch.arange(batch_size, device=device).view(-1, 1, 1, 1)
    q = torch.arange(q_length, device=device).view(1, 1, -1, 1)
    kv = torch.arange(kv_length, device=device).view(1, 1, 1, -1)
    visible = mask_function(b, 0, q, kv).expand(batch_size, 1, q_length, kv_length)
    if attention_mask is not None:
        visible = visible & attention_mask.bool()[:, None, None, :]
    return visible


def eager_mask(batch_size, q_length, kv_length, mask_function=None, attention_mask=None, dtype=torch.float32,
               device="cpu", **kwargs):
    visible = _visible(batch_size, q_length, kv_length, mask_function, attention_mask, device)
    return torch.where(visible, torch.tensor(0.0, dtype=dtype, device=device), torch.finfo(dtype).min)


def sdpa_mask(batch_size, q_length, kv_length, mask_function=None, attention_mask=None, device="cpu", **kwargs):
    return _visible(batch_size, q_length, kv_length, mask_function, attention_mask, device)


MASKS.update(eager=eager_mask, sdpa=sdpa_mask)


def _math_attention(query, key, value, mask, scaling, is_causal):
    """torch's scaled_dot_product_attention (math), which torch 1.13 lacks."""
    logits = torch.matmul(query, key.transpose(2, 3)) * scaling
    if is_causal:
        n_q, n_k = query.shape[2], key.shape[2]
        causal = torch.ones(n_q, n_k, dtype=torch.bool, device=query.device).tril()
        logits = logits.masked_fill(~causal, float("-inf"))
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
    return torch.matmul(torch.softmax(logits.float(), dim=-1).to(query.dtype), value)


def repeat_kv(x, groups):
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)


def sdpa_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                           **kwargs):
    key, value = repeat_kv(key, module.num_key_value_groups), repeat_kv(value, module.num_key_value_groups)
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    is_causal = query.shape[2] > 1 and attention_mask is None and is_causal
    if torch.jit.is_tracing() and isinstance(is_causal, torch.Tensor):
        is_causal = is_causal.item()
    out = _math_attention(query, key, value, attention_mask, scaling, bool(is_causal))
    return out.transpose(1, 2).contiguous(), None


ATTENTION["sdpa"] = sdpa_attention_forward


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """transformers' eager attention (gpt-oss's, with sinks when the module has them)."""
    key, value = repeat_kv(key, module.num_key_value_groups), repeat_kv(value, module.num_key_value_groups)
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask[:, :, :, : key.shape[-2]]
    if getattr(module, "sinks", None) is not None:
        sinks = module.sinks.reshape(1, -1, 1, 1).expand(query.shape[0], -1, query.shape[-2], -1)
        combined = torch.cat([weights, sinks], dim=-1)
        combined = combined - combined.max(dim=-1, keepdim=True).values
        weights = torch.softmax(combined, dim=-1, dtype=combined.dtype)[..., :-1]
    else:
        weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights, value)
    return out.transpose(1, 2).contiguous(), weights


class _Output(types.SimpleNamespace):
    pass


class ToyConfig(types.SimpleNamespace):
    pass


class ToyAttention(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        self.config, self.layer = config, layer
        self.heads, self.kv_heads, self.head_dim = config.heads, config.kv_heads, config.head_dim
        self.num_key_value_groups = config.heads // config.kv_heads
        self.is_causal = config.causal
        self.scaling = self.head_dim ** -0.5
        self.sliding_window = config.windows[layer]
        self.q_proj = nn.Linear(config.hidden, config.heads * config.head_dim)
        self.k_proj = nn.Linear(config.hidden, config.kv_heads * config.head_dim)
        self.v_proj = nn.Linear(config.hidden, config.kv_heads * config.head_dim)
        self.o_proj = nn.Linear(config.heads * config.head_dim, config.hidden)
        self.sinks = nn.Parameter(torch.randn(config.heads)) if layer in config.sink_layers else None

    def forward(self, x, mask, cos_sin=None):
        b, n = x.shape[0], x.shape[1]
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        if cos_sin is not None:  # transformers' apply_rotary_pos_emb: x·cos + rotate_half(x)·sin
            cos, sin = cos_sin
            half = self.head_dim // 2

            def turn(t):
                return t * cos + torch.cat((-t[..., half:], t[..., :half]), dim=-1) * sin

            q, k = turn(q), turn(k)
        v = self.v_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        impl = self.config._attn_implementation
        attend = eager_attention_forward if impl == "eager" else ATTENTION[impl]
        out, weights = attend(self, q, k, v, mask, scaling=self.scaling, dropout=0.0,
                              sliding_window=self.sliding_window)
        return self.o_proj(out.reshape(b, n, -1)), weights


class ToyRotary(nn.Module):
    """transformers' rotary module: `inv_freq` (float32), `attention_scaling`, cos and sin of positions 0..N−1."""

    def __init__(self, dim, theta):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim),
                             persistent=False)
        self.attention_scaling = 1.0
        self.rope_type = "default"

    def forward(self, x):
        positions = torch.arange(x.shape[1], device=x.device).float()
        freqs = positions[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


class ToyModel(nn.Module):
    """Embedding, then layers of attention + MLP with residuals; masks through the registry, one per kind of layer
    (full, sliding), as transformers' models make them."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden)
        self.layers = nn.ModuleList([ToyAttention(config, i) for i in range(config.layers)])
        self.mlps = nn.ModuleList([nn.Sequential(nn.Linear(config.hidden, 2 * config.hidden), nn.GELU(),
                                                 nn.Linear(2 * config.hidden, config.hidden))
                                   for _ in range(config.layers)])
        if getattr(config, "rope_theta", None):
            self.rotary_emb = ToyRotary(config.head_dim, config.rope_theta)

    def set_attn_implementation(self, name):
        self.config._attn_implementation = name

    def _mask(self, x, attention_mask, window, chunk):
        causal = self.config.causal

        def mask_function(b, h, q, kv):
            visible = kv <= q if causal else q >= 0
            if window:
                visible = visible & ((q - kv < window) if causal else ((q - kv).abs() <= window))
            if chunk:  # Llama 4's chunked attention: within blocks of `chunk` positions
                visible = visible & (kv // chunk == q // chunk)
            return visible

        return MASKS[self.config._attn_implementation](
            batch_size=x.shape[0], q_length=x.shape[1], kv_length=x.shape[1], q_offset=0, kv_offset=0,
            mask_function=mask_function, attention_mask=attention_mask.bool(), allow_is_causal_skip=True,
            dtype=x.dtype, config=self.config, use_vmap=False, device=x.device)

    def forward(self, input_ids, attention_mask=None, use_cache=False, output_attentions=False):
        return self.layers_from(self.embed(input_ids), input_ids, attention_mask, output_attentions)

    def layers_from(self, x, input_ids, attention_mask, output_attentions):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kinds = list(zip(self.config.windows, self.config.chunks))
        masks = {kind: self._mask(x, attention_mask, *kind) for kind in set(kinds)}
        cos_sin = self.rotary_emb(x) if getattr(self.config, "rope_theta", None) else None
        attentions = []
        for layer, mlp, kind in zip(self.layers, self.mlps, kinds):
            out, weights = layer(x, masks[kind], cos_sin)
            x = x + out
            x = x + mlp(x)
            attentions.append(weights)
        return _Output(last_hidden_state=x, attentions=attentions if output_attentions else None)


@pytest.fixture
def fake_transformers(monkeypatch):
    module = types.ModuleType("transformers")
    module.__version__ = "0.0-stand-in"
    module.AttentionInterface = ATTENTION
    masking = types.ModuleType("transformers.masking_utils")
    masking.ALL_MASK_ATTENTION_FUNCTIONS = MASKS
    masking.AttentionMaskInterface = MASKS
    modeling = types.ModuleType("transformers.modeling_utils")
    modeling.ALL_ATTENTION_FUNCTIONS = ATTENTION
    module.masking_utils, module.modeling_utils = masking, modeling
    for name, m in (("transformers", module), ("transformers.masking_utils", masking),
                    ("transformers.modeling_utils", modeling)):
        monkeypatch.setitem(sys.modules, name, m)
    return module


def toy(causal=True, windows=(0, 0, 5, 0), sink_layers=(3,), seed=0, std=0.1, dtype=torch.float32, chunks=None,
        rope_theta=None):
    torch.manual_seed(seed)
    config = ToyConfig(vocab_size=97, hidden=32, heads=4, kv_heads=2, head_dim=8, layers=len(windows),
                       causal=causal, windows=list(windows), sink_layers=set(sink_layers),
                       chunks=list(chunks or [0] * len(windows)), rope_theta=rope_theta,
                       model_type="toy",
                       max_position_embeddings=4096, is_encoder_decoder=False, bos_token_id=None,
                       eos_token_id=None, pad_token_id=None, _attn_implementation="eager", _name_or_path="toy")
    model = ToyModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std)
    return model.to(dtype).eval()


# --- the tests ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [True, False])
def test_export_verifies_and_keeps_what_is_asked(fake_transformers, tmp_path, causal):
    model = toy(causal=causal, sink_layers=(3,) if causal else ())
    path = str(tmp_path / "toy.apx")
    manifest = hf_export.export(model, path)
    v = manifest["verification"]
    assert v["reference"] == "output_attentions"
    assert max(v["max_abs_diff"].values()) <= 1e-5
    assert [layer["sliding_window"] for layer in manifest["layers"]] == [None, None, 5, None]
    engine = attnprox.load(path)
    ids = [5, 9, 13, 2, 77, 31, 8, 8, 40, 3, 60, 12, 6]
    full = engine.run(ids=ids)
    last = attnprox.load(path, layers="last")
    r = last.run(ids=ids)
    assert r.layers == [3]
    np.testing.assert_array_equal(r.queries(3), full.queries(3))
    two = engine.run(ids=ids, layers=[0, 2])
    np.testing.assert_array_equal(two.keys(2), full.keys(2))
    # a padded batch equals single runs
    batch = engine.run(ids=[ids, ids[:7], ids[:3]])
    for seq, got in zip([ids, ids[:7], ids[:3]], batch):
        alone = engine.run(ids=seq)
        for layer in range(4):
            np.testing.assert_allclose(got.attention(layer), alone.attention(layer), atol=1e-5)


def _square_inputs(module, n, *args):
    with torch.autograd.profiler.profile(record_shapes=True) as prof:
        with torch.no_grad():
            module(*args)
    return sorted({(e.name, tuple(s)) for e in prof.function_events for s in e.input_shapes
                   if isinstance(s, (list, tuple)) and sum(1 for x in s if x == n) >= 2})


def test_traced_file_has_no_n_by_n_mask_where_no_layer_needs_one(fake_transformers, tmp_path):
    """Only the stand-in's math attention (torch 1.13 has no SDPA) may hold N × N: the file's own masks do not."""
    model = toy(windows=(0, 0, 0, 0), sink_layers=())
    path = str(tmp_path / "plain.apx")
    hf_export.export(model, path)
    module = torch.jit.load(path)
    n = 300
    ids = torch.randint(0, 97, (1, n))
    found = _square_inputs(module, n, ids, torch.ones_like(ids))
    assert not any(shape[:2] == (1, 1) and shape[-2:] == (n, n) for _, shape in found), found  # no batch mask
    # the same model through transformers' own masks (the old export) would have built one:
    old = eager_mask(1, n, n, lambda b, h, q, kv: kv <= q, torch.ones(1, n), torch.float32)
    assert tuple(old.shape) == (1, 1, n, n)


def test_a_mask_more_than_causal_and_windows_is_transformers_own(fake_transformers, tmp_path):
    """A mask function the per-layer masks cannot rebuild (layers 0 and 1 attend within chunks of 4 positions, as
    Llama 4's): the file uses transformers' own mask there, so that the captured layers 2 and 3, plain causal,
    verify (with a causal mask in its place their queries and keys would differ from transformers')."""
    model = toy(windows=(0, 0, 0, 0), sink_layers=(), chunks=(4, 4, 0, 0))
    path = str(tmp_path / "chunked.apx")
    manifest = hf_export.export(model, path, layers=[2, 3])
    assert max(manifest["verification"]["max_abs_diff"].values()) <= 1e-5
    n = 64
    ids = torch.randint(0, 97, (1, n))
    found = _square_inputs(torch.jit.load(path), n, ids, torch.ones_like(ids))
    assert any(shape == (1, 1, n, n) for _, shape in found), found
    # the probe tells the patterns apart
    chunked = hf_export._mask_pattern(lambda b, h, q, kv: (kv <= q) & (kv // 4 == q // 4))
    assert not hf_export._pattern_is(chunked, True, None)
    window = hf_export._mask_pattern(lambda b, h, q, kv: (kv <= q) & (q - kv < 4096))
    assert hf_export._pattern_is(window, True, 4096) and not hf_export._pattern_is(window, True, None)
    assert not hf_export._pattern_is(window, True, 40)
    assert hf_export._pattern_is(hf_export._mask_pattern(lambda b, h, q, kv: q >= 0), False, None)
    assert hf_export._mask_pattern(lambda b, h, q, kv: torch.zeros(3)[kv]) is None  # indexes the batch's tokens


def test_forward_layers_of_a_traced_file_cuts_what_is_not_kept(fake_transformers, tmp_path):
    model = toy()
    path = str(tmp_path / "toy.apx")
    hf_export.export(model, path)
    module = torch.jit.load(path)
    ids = torch.randint(0, 97, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        queries, keys = module(ids, mask)
        q, k = module.forward_layers(ids, mask, [1, 3])
    assert len(q) == 2 and torch.equal(q[0], queries[1]) and torch.equal(k[1], keys[3])
    with pytest.raises(Exception, match="forward_layers"):
        module.forward_layers(ids, mask, [3, 1])


def _cpu_matmul_in(dtype) -> bool:
    try:
        torch.nn.functional.linear(torch.ones(2, 2, dtype=dtype), torch.ones(2, 2, dtype=dtype))
        return True
    except RuntimeError:  # torch 1.13 has no float16 matrix products on the CPU
        return False


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_verification_against_float32_eager(fake_transformers, tmp_path, dtype):
    if not _cpu_matmul_in(dtype):
        pytest.skip(f"this torch has no {dtype} matrix products on the CPU")
    model = toy(dtype=dtype, std=0.2)
    manifest = hf_export.export(model, str(tmp_path / "low.apx"))
    v = manifest["verification"]
    assert v["reference"] == "float32 eager weights from the file's forward"
    for i, allowed in v["allowed"].items():
        assert v["max_abs_diff"][i] <= allowed < 1e-2  # float32 rounding, the file's Q/K being the reference's


def test_reduced_precision_verification_fails_on_a_wrong_attention_at_large_logits(fake_transformers, tmp_path,
                                                                                     monkeypatch):
    """A model whose eager attention is not what its queries and keys imply (its logits scaled by 1.02, which the
    manifest cannot say), with logits in the hundreds: the bfloat16 check fails, where the old bound on eager
    weights in bfloat16 passed 1 and allowed anything."""
    model = toy(dtype=torch.bfloat16, std=1.2, windows=(0, 0, 0, 0), sink_layers=())
    real_eager = eager_attention_forward

    def skewed(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        return real_eager(module, query, key, value, attention_mask, scaling * 1.02, dropout, **kwargs)

    monkeypatch.setitem(globals(), "eager_attention_forward", skewed)  # the modeling module's eager function
    path = str(tmp_path / "skewed.apx")
    with pytest.raises(attnprox.ExportError, match="verification failed"):
        hf_export.export(model, path)
    # The same model, its attention what its queries and keys imply, verifies; the old bound at these logits, from
    # the same queries and keys, allows everything.
    monkeypatch.setitem(globals(), "eager_attention_forward", real_eager)
    manifest = hf_export.export(model, path)
    assert max(manifest["verification"]["eager_rounding"].values()) > 1
    result = attnprox.load(path).run(ids=list(range(3, 40)))
    old = hf_export._rounding_bound(result, 3, {"scaling": 8 ** -0.5, "softcap": None},
                                    hf_export._UNIT_ROUNDOFF[torch.bfloat16])
    assert old > 1


def test_float32_bound_is_tight_where_logits_are_large():
    """_float32_bound against float32 softmaxes of the same bfloat16 queries and keys, computed two ways (a
    different summation order), and its growth with the inputs' difference."""
    g = torch.Generator().manual_seed(2)
    q = (torch.randn(4, 40, 64, generator=g) * 6).to(torch.bfloat16).float()
    k = (torch.randn(2, 40, 64, generator=g) * 6).to(torch.bfloat16).float()
    scaling = 64 ** -0.5
    kk = k.repeat_interleave(2, dim=0)
    a = torch.softmax(torch.matmul(q, kk.transpose(1, 2)) * scaling, -1)
    b = torch.softmax((q.unsqueeze(2) * kk.unsqueeze(1)).flip(-1).sum(-1) * scaling, -1)  # another order
    largest = float((torch.matmul(q, kk.transpose(1, 2)) * scaling).abs().max())
    bound = hf_export._float32_bound(q.numpy(), k.numpy(), scaling)
    assert largest > 100  # logits where the old bound passed 1
    assert float((a - b).abs().max()) <= bound < 0.05
    assert hf_export._float32_bound(q.numpy(), k.numpy(), scaling, 1e-3, 1e-3) > bound


class ToySegmentModel(ToyModel):
    """ToyModel with segment embeddings, as BERT's: its forward reads `token_type_ids` (type_vocab_size 2)."""

    def __init__(self, config):
        super().__init__(config)
        self.token_type = nn.Embedding(config.type_vocab_size, config.hidden)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, use_cache=False, output_attentions=False):
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = self.embed(input_ids) + self.token_type(types)
        return self.layers_from(x, input_ids, attention_mask, output_attentions)


def test_traced_file_with_token_types_and_forward_layers(fake_transformers, tmp_path):
    """A model with segment embeddings: the traced file's forward and forward_layers both take token_type_ids,
    last and optional (absent: segment 0), and forward_layers with them gives what forward gives."""
    torch.manual_seed(4)
    config = ToyConfig(vocab_size=97, hidden=32, heads=4, kv_heads=2, head_dim=8, layers=4, causal=False,
                       windows=[0, 0, 0, 0], sink_layers=set(), chunks=[0] * 4, model_type="toy", type_vocab_size=2,
                       max_position_embeddings=4096, is_encoder_decoder=False, bos_token_id=None,
                       eos_token_id=None, pad_token_id=None, _attn_implementation="eager", _name_or_path="toy")
    model = ToySegmentModel(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.1)
    model.eval()
    path = str(tmp_path / "segments.apx")
    manifest = hf_export.export(model, path)  # its verification compares forward_layers with forward, with types
    assert manifest["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert max(manifest["verification"]["max_abs_diff"].values()) <= 1e-5
    module = torch.jit.load(path)
    ids = torch.randint(0, 97, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    types = torch.zeros_like(ids)
    types[:, 4:6] = 1
    with torch.no_grad():
        queries, keys = module(ids, mask, types)
        zeros, _ = module(ids, mask)
        q, k = module.forward_layers(ids, mask, [1, 3], types)
        q_zeros, _ = module.forward_layers(ids, mask, [1, 3])
    assert len(q) == 2 and torch.equal(q[0], queries[1]) and torch.equal(k[1], keys[3])
    assert torch.equal(q_zeros[1], zeros[3])
    assert not torch.allclose(queries[1], zeros[1], atol=1e-4)  # the types reach the traced graph
    with pytest.raises(Exception, match="forward_layers"):
        module.forward_layers(ids, mask, [3, 1], types)
    # through the engine: ids run as segment 0, with the layers asked for
    result = attnprox.load(path).run(ids=ids[0].tolist(), layers=[1, 3])
    assert result.layers == [1, 3]
    np.testing.assert_allclose(result.queries(1), zeros[1][0].numpy(), rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        single_keys = module(ids[:1], mask[:1])[1]
    np.testing.assert_allclose(result.keys(3), single_keys[3][0].numpy(), rtol=1e-6, atol=1e-6)


def test_a_rotary_model_records_its_rotation_and_measures_before_rope(fake_transformers, tmp_path):
    """A toy with transformers' rotary module and rotate_half: the file records the rotation (hf_rope, checked on
    q_proj / k_proj), and the engine's defaults equal the proximity of the q_proj / k_proj outputs — what the
    original Attention Proximity code hooks on a model without q/k norms — while rope=True gives the proximity of
    what the attention used."""
    model = toy(windows=(0, 0, 0), sink_layers=(), std=0.15, rope_theta=10000.0)
    path = str(tmp_path / "rotary.apx")
    manifest = hf_export.export(model, path)
    rope = manifest["rope"]
    assert rope["layout"] == "rotate_half" and rope["rotary_dim"] == 8
    assert rope["inv_freq"] == model.rotary_emb.inv_freq.tolist()
    ids = [5, 9, 2, 33, 17, 8, 41, 3, 3, 60, 12]
    seen = {}
    last = model.layers[-1]
    hooks = [last.q_proj.register_forward_hook(lambda m, i, o: seen.__setitem__("q", o)),
             last.k_proj.register_forward_hook(lambda m, i, o: seen.__setitem__("k", o))]
    with torch.no_grad():
        model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    n = len(ids)
    q = seen["q"].view(1, n, 4, 8).transpose(1, 2)[0].double().numpy()
    k = seen["k"].view(1, n, 2, 8).transpose(1, 2)[0].double().numpy()
    kk = np.repeat(k, 2, axis=0)
    a = (q @ kk.transpose(0, 2, 1) / math.sqrt(8)).mean(0)
    a = (a + a.T) / 2
    ap_tokens = (a.sum(1) - np.diag(a)) / (n - 1)
    result = attnprox.load(path).run(ids=ids)
    np.testing.assert_allclose(result.ap_tokens(), ap_tokens, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.queries(rope=False), q, rtol=1e-5, atol=1e-5)
    after = result.queries()
    assert np.abs(after[:, 1:] - q[:, 1:]).max() > 1e-3  # the attention's queries were turned
    assert abs(result.ap(rope=True) - result.ap()) > 1e-4
