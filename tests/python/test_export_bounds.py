"""What transformers' eager attention in float16/bfloat16 may be off by from its own rounding
(hf_export._rounding_bound: the bound the exporter's reduced-precision check used before it compared with float32
eager weights, still reported as "eager_rounding"), checked against what it claims to bound: transformers' eager
attention (QKᵀ, then × scaling, each rounded to the dtype, a float32 softmax, the weights rounded to the dtype),
emulated here in torch, against the exact softmax in float64 of the same rounded queries and keys. transformers
itself is not needed. The check that replaced it: tests/python/test_hf_export_offline.py."""
import numpy as np
import pytest
import torch

from attnprox.hf_export import _UNIT_ROUNDOFF, _rounding_bound


class _Captured:
    """What _rounding_bound reads of an engine result: one layer's queries and keys as float32 arrays."""

    def __init__(self, queries: torch.Tensor, keys: torch.Tensor):
        self._q, self._k = queries.float().numpy(), keys.float().numpy()

    def queries(self, layer):
        return self._q

    def keys(self, layer):
        return self._k


def _eager_weights(queries, keys, scaling):
    """transformers' eager_attention_forward without mask or dropout, in the queries' dtype: the product
    accumulated in float32 and rounded to the dtype (as GPU kernels do), the scaling multiply rounded to the dtype
    (exactly rounded: float32 holds the product of two such numbers exactly), a float32 softmax, the weights
    rounded to the dtype."""
    dtype = queries.dtype
    keys = keys.repeat_interleave(queries.shape[0] // keys.shape[0], dim=0)
    product = torch.matmul(queries.float(), keys.float().transpose(1, 2)).to(dtype)
    logits = (product.float() * torch.tensor(scaling, dtype=dtype).float()).to(dtype)
    return torch.softmax(logits.float(), dim=-1).to(dtype)


def _exact_weights(queries, keys, scaling):
    q, k = queries.double(), keys.double().repeat_interleave(queries.shape[0] // keys.shape[0], dim=0)
    return torch.softmax(torch.matmul(q, k.transpose(1, 2)) * scaling, dim=-1)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("spread", [0.5, 2.0, 4.0])
def test_rounding_bound_covers_eager_rounding(dtype, spread):
    g = torch.Generator().manual_seed(7)
    heads, kv_heads, n, d = 8, 2, 48, 64
    scaling = d ** -0.5
    worst_ratio = 0.0
    for _ in range(5):
        queries = (torch.randn(heads, n, d, generator=g) * spread).to(dtype)
        keys = (torch.randn(kv_heads, n, d, generator=g) * spread).to(dtype)
        diff = float((_eager_weights(queries, keys, scaling).double() - _exact_weights(queries, keys, scaling))
                     .abs().max())
        bound = _rounding_bound(_Captured(queries, keys), 0, {"scaling": scaling, "softcap": None},
                                _UNIT_ROUNDOFF[dtype])
        assert diff <= bound, (diff, bound)
        worst_ratio = max(worst_ratio, diff / bound)
    # A worst-case bound, loose for random data, but not vacuous: where the logits are large enough for their
    # rounding to matter (spread >= 2: |logits| up to tens), the rounding uses a real part of it.
    if spread >= 2:
        assert worst_ratio > 0.02


def test_rounding_bound_grows_with_the_logits_and_stops_at_the_softcap():
    unit = _UNIT_ROUNDOFF[torch.bfloat16]
    q = torch.ones(1, 2, 4)
    small = _rounding_bound(_Captured(q, torch.ones(1, 2, 4)), 0, {"scaling": 0.5, "softcap": None}, unit)
    large = _rounding_bound(_Captured(q, 100 * torch.ones(1, 2, 4)), 0, {"scaling": 0.5, "softcap": None}, unit)
    capped = _rounding_bound(_Captured(q, 100 * torch.ones(1, 2, 4)), 0, {"scaling": 0.5, "softcap": 2.0}, unit)
    # L = 0.5 · 4 = 2, 200, and the cap 2.
    assert small == pytest.approx(np.expm1(4 * unit * 2) + unit)
    assert large == pytest.approx(np.expm1(4 * unit * 200) + unit)
    assert capped == pytest.approx(small)
    assert small < 5e-2 < large  # around the fixed bfloat16 bound the check used
