"""The default model (models/default) is trained, measurably — each figure against a baseline computed in the same
test, on this machine's CPU:

- held-out perplexity on 50 OneStopEnglish texts (never seen in training), computed with the project's own
  reference architecture on the committed directory, at least 3× lower than a unigram model of the training text
  (its token counts are kept beside the model);
- a previous-token head: some (layer, head) whose mean weight on position i−1 is ≥ 0.5 (queries i ≥ 2, so that the
  first token, which every head can park attention on, does not count as "previous");
- an induction head: on `<|endoftext|>` + R + R (R: 50 random tokens), some head's mean weight from each position
  of the second copy to the token after its earlier occurrence ≥ 0.3, and the loss on the second copy at least 2×
  lower than on the first;
- the share of attention on the first token (the attention sink), reported, computed twice: from the engine's
  rebuilt weights and from the reference architecture's own softmax.

The weights come through the path a user's model takes: the build exports the directory with export_reference and
`attnprox.load()` loads that file.
"""
import glob
import json
import math
import os

import numpy as np
import pytest

from conftest import ROOT, data_path

MODEL_DIR = os.path.join(ROOT, "models", "default")
SPECIAL = "<|endoftext|>"


@pytest.fixture(scope="module")
def model():
    import attnprox

    return attnprox.load()


@pytest.fixture(scope="module")
def reference():
    """The committed directory in the reference architecture, every layer complete, in float32."""
    import torch
    from attnprox.reference.common import PlainForward
    from attnprox.reference.model import load_reference_model

    net, cfg, _ = load_reference_model(MODEL_DIR, complete=True, dtype=torch.float32, fused=False)
    return PlainForward(net).eval(), net, cfg


def logits_of(reference, ids):
    """Next-token logits [N, V] of one sequence: final hidden states times the tied embedding matrix."""
    import torch

    plain, net, _ = reference
    with torch.no_grad():
        t = torch.tensor([ids])
        hidden = plain(t, torch.ones_like(t))[0]
        return hidden @ net.embed_tokens.weight.t()


def evaluation_ids(model, count=50):
    """Token ids of the first `count` OneStopEnglish articles (sorted by name) at the intermediate level, read as
    users read them (byte-order mark dropped), `<|endoftext|>` first, cut to the model's positions."""
    files = sorted(glob.glob(os.path.join(data_path("onestopenglish"), "Int-Txt", "Int-Txt", "*-int.txt")))[:count]
    assert len(files) == count
    texts = [open(f, encoding="utf-8-sig").read() for f in files]
    return [model.tokenizer.encode(t, add_special_tokens=True)[:model.max_positions] for t in texts]


def test_the_default_model_is_the_committed_directory(model):
    import attnprox

    config = json.load(open(os.path.join(MODEL_DIR, "config.json")))
    assert model.family == "qwen3"
    assert model.num_layers == config["num_hidden_layers"] == len(model.captured_layers)
    assert (model.num_heads, model.num_kv_heads) == (config["num_attention_heads"], config["num_key_value_heads"])
    assert model.max_positions == config["max_position_embeddings"]
    assert model.tokenizer is not None and model.tokenizer.vocab_size == config["vocab_size"]
    assert attnprox.load("default").path == model.path == attnprox.default_model_path()
    # Every text starts with <|endoftext|> (id 0), the token the model was trained to see first.
    assert model.run(text="A river bank.").ids[0] == 0
    size = sum(os.path.getsize(f) for f in glob.glob(os.path.join(MODEL_DIR, "*")))
    assert size <= 30 * 2**20, f"models/default holds {size / 2**20:.1f} MiB, more than 30 MiB"


def test_perplexity_is_at_least_3x_lower_than_a_unigram_model(model, reference):
    import torch

    counts = np.load(os.path.join(MODEL_DIR, "unigram_counts.npz"))["counts"].astype(np.float64)
    unigram_logp = np.log((counts + 1) / (counts + 1).sum())  # add-one smoothing over the vocabulary
    model_nll, unigram_nll, predicted = 0.0, 0.0, 0
    for ids in evaluation_ids(model):
        logp = torch.log_softmax(logits_of(reference, ids).double(), dim=-1).numpy()
        targets = np.asarray(ids[1:])
        model_nll -= logp[np.arange(len(targets)), targets].sum()
        unigram_nll -= unigram_logp[targets].sum()
        predicted += len(targets)
    model_ppl, unigram_ppl = math.exp(model_nll / predicted), math.exp(unigram_nll / predicted)
    print(f"OneStopEnglish (50 texts, {predicted} tokens): perplexity {model_ppl:.1f}, unigram {unigram_ppl:.1f}, "
          f"ratio {unigram_ppl / model_ppl:.2f}")
    assert model_ppl * 3 <= unigram_ppl


def previous_token_scores(model, sequences):
    """[layers, heads] mean of P[i, i-1] over queries i ≥ 2 of every sequence."""
    total, count = None, 0
    for ids in sequences:
        r = model.run(ids=ids)
        n = len(r)
        rows = np.arange(2, n)
        scores = np.stack([r.attention(layer)[:, rows, rows - 1].sum(axis=1) for layer in model.captured_layers])
        total = scores if total is None else total + scores
        count += len(rows)
    return total / count


def test_a_previous_token_head(model):
    scores = previous_token_scores(model, evaluation_ids(model, 10))
    layer, head = np.unravel_index(scores.argmax(), scores.shape)
    print(f"previous-token head: layer {layer} head {head}, mean weight on i-1 {scores.max():.3f}")
    assert scores.max() >= 0.5


def test_an_induction_head(model, reference):
    import torch

    rng = np.random.default_rng(7)
    span, sequences = 50, 20
    score, first_loss, second_loss = None, 0.0, 0.0
    for _ in range(sequences):
        repeated = rng.integers(1, model.vocab_size, size=span).tolist()
        ids = [0] + repeated + repeated
        r = model.run(ids=ids)
        queries = np.arange(1 + span, 1 + 2 * span)  # the second copy: token k at 1 + span + k
        keys = queries - span + 1  # the token after its earlier occurrence, at 1 + k + 1
        s = np.stack([r.attention(layer)[:, queries, keys].mean(axis=1) for layer in model.captured_layers])
        score = s if score is None else score + s
        logp = torch.log_softmax(logits_of(reference, ids).double(), dim=-1).numpy()
        nll = -logp[np.arange(len(ids) - 1), np.asarray(ids[1:])]  # nll[t-1]: the loss of token t
        first_loss += nll[1:span].mean()  # tokens 1.. of the first copy (positions 2..span)
        second_loss += nll[span + 1:2 * span].mean()  # tokens 1.. of the second copy
    score /= sequences
    first_loss, second_loss = first_loss / sequences, second_loss / sequences
    layer, head = np.unravel_index(score.argmax(), score.shape)
    print(f"induction head: layer {layer} head {head}, mean weight {score.max():.3f}; loss on the first copy "
          f"{first_loss:.2f}, on the second {second_loss:.2f} ({first_loss / second_loss:.1f}x lower)")
    assert score.max() >= 0.3
    assert second_loss * 2 <= first_loss


def test_the_attention_sink_is_reported_the_same_by_engine_and_reference(model, reference):
    import torch

    _, net, cfg = reference
    r = model.run(ids=evaluation_ids(model, 1)[0])
    engine = [float(r.attention(layer)[:, 1:, 0].mean()) for layer in model.captured_layers]
    # The reference architecture's own attention: softmax(scaling · q kᵀ + causal mask) from its projections.
    captured = []
    hooks = []
    for layer in net.layers:
        attend = layer.self_attn.attend

        def keep(module, inputs, output, captured=captured):
            q, k = inputs[0], inputs[1]
            groups = q.shape[1] // k.shape[1]
            k = k.repeat_interleave(groups, dim=1)
            logits = (q @ k.transpose(-1, -2)) * module.scaling
            n = q.shape[2]
            logits = logits.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
            captured.append(torch.softmax(logits, dim=-1)[0])

        hooks.append(attend.register_forward_hook(keep))
    logits_of(reference, r.ids)
    for h in hooks:
        h.remove()
    own = [float(p[:, 1:, 0].mean()) for p in captured]
    print("attention on the first token, per layer: " + ", ".join(f"{x:.3f}" for x in engine))
    assert np.allclose(engine, own, atol=1e-5)
