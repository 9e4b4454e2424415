"""attnprox export, part 4: verification. The written file, run by the engine, must rebuild transformers'
`output_attentions=True` (eager attention) of the same model on several inputs, within bounds computed from the
queries and keys in float16/bfloat16."""
import math
from typing import List, Optional

import torch

from .errors import ExportError
from .hf_capture import _CAPTURE, _eager_attention, _set_implementation, _state, _transformers_mask
from .hf_manifest import _DTYPE_NAMES

# Verification bound on |rebuilt − output_attentions| in float32 (1e-5: docs/measurements.md §2). In float16 and
# bfloat16 the bound of each comparison is computed from its queries and keys (_float32_bound).
TOLERANCE = {torch.float32: 1e-5}
# Unit roundoff of the reduced-precision dtypes (round to nearest: 2^-(significand bits)), and of float32.
_UNIT_ROUNDOFF = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
_FLOAT32_UNIT = 2.0**-24


class _Reference:
    """What one verification forward records per attention call, in the file's order: the queries and keys the
    call received, and transformers' eager attention weights computed in float32 from them (the model's own
    eager_attention_forward with transformers' own eager mask in float32): the reference in float16 and bfloat16,
    where an eager forward in the dtype rounds its logits (its error grows with them) and drifts from the file's
    forward through every earlier layer."""

    def __init__(self):
        self.queries: List[torch.Tensor] = []
        self.keys: List[torch.Tensor] = []
        self.weights: List[torch.Tensor] = []

    def record(self, module, query, key, value, attention_mask, marker, kwargs) -> None:
        eager = _eager_attention(module)
        if eager is None:
            raise ExportError(f"{type(module).__name__}: its modeling module has no eager_attention_forward, which "
                              "the float16/bfloat16 verification computes its reference with; export in float32")
        mask = attention_mask if marker is None else _transformers_mask(marker, torch.float32)
        if mask is not None and mask.dtype == torch.bool:
            mask = torch.where(mask, torch.zeros((), device=mask.device), torch.finfo(torch.float32).min)
        elif mask is not None:
            mask = mask.float()
        args = {k: v for k, v in kwargs.items() if k != "dropout"}
        weights = eager(module, query.float(), key.float(), value.float(), mask, dropout=0.0, **args)[1]
        self.queries.append(query)
        self.keys.append(key)
        self.weights.append(weights.float())


def _reference_run(model, ids, mask, encoder_decoder: bool) -> _Reference:
    """A forward of the model through the capture's attention (the file's kernels and masks), recording the
    reference of every attention call (_Reference)."""
    reference = _Reference()
    _state.reference = reference
    try:
        with torch.no_grad():
            kwargs = dict(input_ids=ids, attention_mask=mask, use_cache=False)
            if encoder_decoder:
                kwargs.update(decoder_input_ids=ids, decoder_attention_mask=mask)
            model(**kwargs)
    finally:
        _state.reference = None
    return reference


def _reference_attentions(model, ids, mask, encoder_decoder: bool):
    """output_attentions=True with transformers' eager attention, in the order of the file's layers."""
    _set_implementation(model, "eager")
    try:
        with torch.no_grad():
            kwargs = dict(input_ids=ids, attention_mask=mask, output_attentions=True, use_cache=False)
            if encoder_decoder:
                kwargs.update(decoder_input_ids=ids, decoder_attention_mask=mask)
            out = model(**kwargs)
    finally:
        _set_implementation(model, _CAPTURE)
    if encoder_decoder:
        ordered = list(out.encoder_attentions)
        for self_attn, cross in zip(out.decoder_attentions, out.cross_attentions):
            ordered += [self_attn, cross]
        return ordered
    return list(out.attentions)


def _float32_bound(queries, keys, scaling: float, query_diff: float = 0.0, key_diff: float = 0.0) -> float:
    """How far two float32 softmax attentions of the same layer may lie apart when one is computed from queries and
    keys `queries` [H, N, d], `keys` [Hkv, N, d] and the other from queries and keys that differ from them by at
    most `query_diff`, `key_diff` per element (masks, sinks, soft-cap alike):

    - each float32 dot product of d terms errs by at most γ_d · Σ_a |q_a k_a|, γ_d = d·u/(1 − d·u), u = 2⁻²⁴;
    - the inputs' difference moves a logit by at most query_diff·‖k‖₁ + key_diff·‖q‖₁ + d·query_diff·key_diff;
    - so each logit, scaled, moves by at most e = |scaling| · (2γ_d Σ|q||k| + the above) (a soft-cap c·tanh(x/c)
      is 1-Lipschitz and cannot enlarge it), and a softmax whose logits move by at most e moves each weight by
      at most expm1(2e); 1e-6 covers the two softmaxes' own float32 rounding.

    Unlike a comparison with attention computed in the reduced dtype, this does not grow with the rounding of the
    logits to that dtype: it stays far below 1 for logits in the hundreds, so a wrong weight checks as wrong."""
    import numpy as np

    q = np.abs(np.asarray(queries, dtype=np.float64))
    k = np.abs(np.asarray(keys, dtype=np.float64))
    k = np.repeat(k, q.shape[0] // k.shape[0], axis=0)
    d = q.shape[-1]
    gamma = d * _FLOAT32_UNIT / (1 - d * _FLOAT32_UNIT)
    products = np.matmul(q, k.transpose(0, 2, 1))  # Σ_a |q_ia||k_ja|, [H, N, N]
    moved = 2 * gamma * products
    if query_diff or key_diff:
        moved = (moved + query_diff * k.sum(-1)[:, None, :] + key_diff * q.sum(-1)[:, :, None]
                 + d * query_diff * key_diff)
    e = abs(scaling) * float(moved.max()) if moved.size else 0.0
    return math.expm1(min(2 * e, 700.0)) + 1e-6  # (past 700 it is infinite for any purpose)


def _verification_inputs(vocab_size: int, max_positions: int, device, texts, hf_tokenizer):
    inputs = []
    if texts and hf_tokenizer is not None:
        for text in texts:
            ids = hf_tokenizer(text)["input_ids"][:max_positions]
            inputs.append([int(i) for i in ids])
    g = torch.Generator().manual_seed(0)
    for n in (1, 6, 23):
        n = min(n, max_positions)
        inputs.append(torch.randint(0, vocab_size, (n,), generator=g).tolist())
    return inputs


def _rounding_bound(result, layer: int, call: dict, unit: float) -> float:
    """How far transformers' eager attention in a reduced-precision dtype may lie from the exact softmax of the
    captured queries and keys, from its own rounding alone (the verification's "eager_rounding": what a comparison
    with eager attention in the dtype would have to allow; it passes 1 at |logits| ≳ 44 in bfloat16): it rounds
    each logit to the dtype twice (the product QKᵀ, then the scaled product) before its float32 softmax, an error
    of at most e = 2u·L on logits of magnitude up to L; the softmax then moves a weight by at most a factor exp(±2e), so by at most expm1(4u·L); rounding the
    weight to the dtype adds u."""
    import numpy as np

    queries, keys = result.queries(layer), result.keys(layer)  # [H, N, d], [Hkv, N, d] as float32
    keys = np.repeat(keys, queries.shape[0] // keys.shape[0], axis=0)
    largest = float(np.abs(np.matmul(queries, keys.transpose(0, 2, 1))).max()) * abs(call["scaling"])
    if call.get("softcap"):
        largest = min(largest, abs(call["softcap"]))
    return math.expm1(min(4 * unit * largest, 700.0)) + unit  # (past 700 it is infinite for any purpose)


def _padded(inputs, pad_id: int, device):
    """The engine's padded batch of `inputs`: right padding with `pad_id`, and its mask."""
    longest = max(len(seq) for seq in inputs)
    ids = torch.full((len(inputs), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(inputs), longest), dtype=torch.long)
    for b, seq in enumerate(inputs):
        ids[b, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[b, :len(seq)] = 1
    return ids.to(device), mask.to(device)


def verify(out_path: str, model, calls, captured, encoder_decoder: bool, device, dtype, inputs,
           pad_id: Optional[int] = None):
    """See `_verify`; float32 products run in full float32 meanwhile (no TF32, whose rounding the bounds do not
    allow for), in the engine and in the reference alike (one setting of the process)."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        return _verify(out_path, model, calls, captured, encoder_decoder, device, dtype, inputs, pad_id)
    finally:
        torch.set_float32_matmul_precision(precision)


def _verify(out_path: str, model, calls, captured, encoder_decoder: bool, device, dtype, inputs,
            pad_id: Optional[int] = None):
    """Loads the written file with the attnprox engine and compares its rebuilt attention with transformers' eager
    attention weights, one sequence at a time and as one padded batch.

    In float32 the reference is output_attentions=True (the padded batch compared with each sequence's), held to
    1e-5. In float16 and bfloat16 it is transformers' eager attention computed in float32 from the queries and keys
    of a forward through the file's kernels (_Reference): of the same sequence, and of the same padded batch for
    the batched run, so that the batch's own rounding is the reference's too. Each comparison is held to what
    float32 rounding and the difference between the file's and the reference's queries and keys explain
    (_float32_bound), which does not grow with the logits' rounding to the dtype.

    Also checks that forward_layers gives the queries and keys forward gives. Returns the reference used and, per
    captured layer, the largest difference and the bound of the comparison that came closest to its bound. Raises
    ExportError when a comparison exceeds its bound. In float16 and bfloat16 also returns, per layer, what eager
    attention in the dtype could be off by from its own rounding (_rounding_bound), for comparison."""
    import numpy as np

    from .model import load

    engine = load(out_path, device=str(device))
    reduced = dtype in _UNIT_ROUNDOFF
    worst = {i: 0.0 for i in captured}
    allowed = {i: TOLERANCE.get(dtype, 0.0) for i in captured}
    eager_rounding = {i: 0.0 for i in captured}
    closest = {i: -1.0 for i in captured}  # the largest difference / bound
    failures = []

    def compare(result, i, want, reference=None, b=0):
        n = len(result)
        got = result.attention(i)
        diff = float(np.abs(got - want).max()) if want.size else 0.0
        bound = TOLERANCE[torch.float32]
        if reference is not None:
            q_ref = reference.queries[i][b, :, :n].float().cpu().numpy()
            k_ref = reference.keys[i][b, :, :n].float().cpu().numpy()
            query_diff = float(np.abs(result.queries(i) - q_ref).max())
            key_diff = float(np.abs(result.keys(i) - k_ref).max())
            bound = _float32_bound(q_ref, k_ref, calls[i]["scaling"], query_diff, key_diff)
        worst[i] = max(worst[i], diff)
        if diff / bound > closest[i]:
            closest[i], allowed[i] = diff / bound, bound
        if not diff <= bound:
            failures.append((diff / bound if bound > 0 else math.inf, i, diff, bound))

    # one padded batch of every input, as the reference's (run's micro-batches would split a long list)
    batched = engine.run(ids=inputs, token_budget=len(inputs) * max(len(seq) for seq in inputs))
    batch_reference = None
    if reduced:
        batch_reference = _reference_run(model, *_padded(inputs, pad_id or 0, device), encoder_decoder)
        if len(batch_reference.weights) != len(calls):
            raise ExportError(f"the reference has {len(batch_reference.weights)} layers, the capture saw "
                              f"{len(calls)} attention calls: the layers cannot be matched")
    for b, (seq, result_batched) in enumerate(zip(inputs, batched)):
        ids = torch.tensor([seq], device=device)
        result = engine.run(ids=seq)
        n = len(seq)
        if reduced:
            single = _reference_run(model, ids, torch.ones_like(ids), encoder_decoder)
            for i in captured:
                eager_rounding[i] = max(eager_rounding[i], _rounding_bound(result, i, calls[i], _UNIT_ROUNDOFF[dtype]))
                compare(result, i, single.weights[i][0].cpu().numpy(), single, 0)
                compare(result_batched, i, batch_reference.weights[i][b, :, :n, :n].cpu().numpy(),
                        batch_reference, b)
            continue
        reference = _reference_attentions(model, ids, torch.ones_like(ids), encoder_decoder)
        if len(reference) != len(calls):
            raise ExportError(f"the reference has {len(reference)} layers, the capture saw {len(calls)} "
                              "attention calls: the layers cannot be matched")
        for i in captured:
            want = reference[i][0].float().cpu().numpy()
            compare(result, i, want)
            compare(result_batched, i, want)
    if failures:
        _, i, diff, bound = max(failures)
        raise ExportError(f"verification failed: at layer {i} ({calls[i]['class']}) the attention rebuilt from the "
                          f"file differs from transformers' eager attention by {diff:.3g} (allowed {bound:.3g} in "
                          f"{_DTYPE_NAMES[dtype]}); the model's attention is not what its captured queries and keys "
                          "imply (an extra bias or a custom mask?)")
    # forward_layers must give what forward gives, for one layer and for the first and last.
    seq = inputs[-1]
    full = engine.run(ids=seq)
    for chosen in ([captured[-1]], sorted({captured[0], captured[-1]})):
        part = engine.run(ids=seq, layers=chosen)
        for i in chosen:
            if not (np.array_equal(part.queries(i), full.queries(i)) and np.array_equal(part.keys(i), full.keys(i))):
                raise ExportError(f"verification failed: forward_layers({chosen}) gives other queries or keys at "
                                  f"layer {i} than forward")
    if "token_type_ids" in engine.manifest.get("inputs", []):
        # The same with token type ids (a text pair's: 0, then 1), which forward_layers takes after the layers.
        module = torch.jit.load(out_path, map_location=device)
        ids = torch.tensor([seq], device=device)
        mask = torch.ones_like(ids)
        types = torch.zeros_like(ids)
        types[:, len(seq) // 2:] = 1
        with torch.no_grad():
            full_q, full_k = module.forward(ids, mask, types)
            for chosen in ([captured[-1]], sorted({captured[0], captured[-1]})):
                part_q, part_k = module.forward_layers(ids, mask, chosen, types)
                for slot, i in enumerate(chosen):
                    k = captured.index(i)
                    if not (torch.equal(part_q[slot], full_q[k]) and torch.equal(part_k[slot], full_k[k])):
                        raise ExportError(f"verification failed: forward_layers({chosen}) with token type ids gives "
                                          f"other queries or keys at layer {i} than forward")
    if not reduced:
        return "output_attentions", worst, allowed, {}
    return "float32 eager weights from the file's forward", worst, allowed, eager_rounding
