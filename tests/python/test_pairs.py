"""Sentence pairs for encoders: run(text=..., text_pair=...) encodes the pair as Hugging Face does and gives BERT
its token type ids, checked against the plain-torch reference BERT and a NumPy computation of the first layer."""
import json
import os

import numpy as np
import pytest

import attnprox
from conftest import rewrite_model_file

A = "The bank by the river was steep."
B = "Emily took some French lessons in Paris."


def bert_dir(text_models):
    return os.path.join(os.path.dirname(text_models["bert"]), "bert")  # the HF directory the file came from


def test_pair_ids_types_and_offsets(text_models):
    model = attnprox.load(text_models["bert"])
    tok = model.tokenizer
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    a, b = tok.encode(A), tok.encode(B)  # each text alone, no special tokens
    r = model.run(text=A, text_pair=B)
    assert r.ids == [cls] + a + [sep] + b + [sep]
    assert r.token_type_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert r.sequence_ids == [None] + [0] * len(a) + [None] + [1] * len(b) + [None]
    assert r.text == A and r.text_pair == B
    for piece, sequence, (start, end) in zip(r.token_texts, r.sequence_ids, r.offsets):
        if sequence is not None:
            assert (A, B)[sequence][start:end] == piece
    assert "Paris" in r.token_texts and "paris" in r.token_labels
    assert tok.encode(A, pair=B, add_special_tokens=True) == r.ids
    enc = tok.encode_with_offsets(A, add_special_tokens=True, pair=B)
    assert list(enc.type_ids) == r.token_type_ids and list(enc.sequence_ids)[:2] == [-1, 0]
    single = model.run(text=A)
    assert single.token_type_ids == [0] * len(single) and single.text_pair is None


def test_pair_run_equals_the_reference_bert(text_models):
    """The model file's queries and keys for a pair equal those of the eager plain-torch BERT given the same ids and
    token type ids; and layer 0's queries equal a NumPy computation from the weights."""
    import torch

    from attnprox.reference.model import load_reference_model
    from attnprox.reference.safetensors import load_file

    model = attnprox.load(text_models["bert"])
    r = model.run(text=A, text_pair=B)
    reference, cfg, captured = load_reference_model(bert_dir(text_models))
    ids = torch.tensor([r.ids])
    with torch.no_grad():
        queries, keys = reference(ids, torch.ones_like(ids), torch.tensor([r.token_type_ids]))
        flat_queries, _ = reference(ids, torch.ones_like(ids))
    for k, layer in enumerate(captured):
        np.testing.assert_allclose(r.queries(layer), queries[k][0].numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(r.keys(layer), keys[k][0].numpy(), rtol=1e-5, atol=1e-5)
    # The types matter: segment 0 everywhere gives other queries for the second text.
    assert not np.allclose(flat_queries[-1][0].numpy(), r.queries(-1), atol=1e-3)

    w = {name: t.double().numpy() for name, t in load_file(os.path.join(bert_dir(text_models),
                                                                         "model.safetensors")).items()}
    prefix = "" if "embeddings.word_embeddings.weight" in w else "bert."
    n = len(r)
    x = (w[prefix + "embeddings.word_embeddings.weight"][r.ids] +
         w[prefix + "embeddings.token_type_embeddings.weight"][r.token_type_ids] +
         w[prefix + "embeddings.position_embeddings.weight"][:n])
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
    x = x * w[prefix + "embeddings.LayerNorm.weight"] + w[prefix + "embeddings.LayerNorm.bias"]
    q = x @ w[prefix + "encoder.layer.0.attention.self.query.weight"].T + w[prefix + "encoder.layer.0.attention.self.query.bias"]
    heads = model.num_heads
    q = q.reshape(n, heads, -1).transpose(1, 0, 2)
    np.testing.assert_allclose(r.queries(0), q, rtol=1e-4, atol=1e-5)


def test_pairs_in_a_list_and_truncated(text_models):
    model = attnprox.load(text_models["bert"])
    texts, pairs = [A, "The sky is blue.", B], [B, "Write a story.", A]
    results = model.run(text=texts, text_pair=pairs, token_budget=40)
    for text, pair, result in zip(texts, pairs, results):
        alone = model.run(text=text, text_pair=pair)
        assert result.ids == alone.ids and result.text_pair == pair
        np.testing.assert_allclose(result.ap_tokens(), alone.ap_tokens(), atol=1e-6)
    tok = model.tokenizer
    a, b = tok.encode(A), tok.encode(B)
    cut = model.run(text=A, text_pair=B, truncation=True, max_length=11)
    # 11 − 3 special tokens = 8: the shorter text keeps up to half (4), the longer the rest (4): longest_first
    n1, n2 = (4, 4)
    assert cut.ids[1:-1] == a[:n1] + [tok.token_to_id("[SEP]")] + b[:n2]
    assert len(cut) == 11


def test_pair_errors(text_models, tmp_path):
    model = attnprox.load(text_models["bert"])
    with pytest.raises(attnprox.InvalidArgumentError, match="text_pair goes with text"):
        model.run(ids=[1, 2], text_pair="x")
    with pytest.raises(attnprox.InvalidArgumentError, match="text has 2 texts and text_pair 1"):
        model.run(text=[A, B], text_pair=[A])
    with pytest.raises(attnprox.InvalidArgumentError, match="text_pair must be a str"):
        model.run(text=A, text_pair=[B])
    old = rewrite_model_file(text_models["bert"], str(tmp_path / "old.apx"),
                             manifest=lambda m: m.pop("inputs"))
    with pytest.raises(attnprox.UnsupportedError, match="export it again to run a text pair"):
        attnprox.load(old).run(text=A, text_pair=B)
    assert attnprox.load(old).run(text=A).ids == model.run(text=A).ids  # single texts as ever
    single_only = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": {"type": "Whitespace"},
                   "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}],
                                      "pair": [], "special_tokens": {}},
                   "decoder": None, "model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1}, "unk_token": "a"}}
    with pytest.raises(attnprox.UnsupportedError, match="no pair template"):
        attnprox.Tokenizer.from_json(json.dumps(single_only)).encode("a", pair="b", add_special_tokens=True)


def test_models_without_segments_read_a_pair_as_one_sequence(text_models):
    gpt2 = attnprox.load(text_models["gpt2"])  # its forward takes ids and mask only
    assert gpt2.manifest["inputs"] == ["input_ids", "attention_mask"]
    r = gpt2.run(text=A, text_pair=B)
    assert r.ids == gpt2.tokenizer.encode(A) + gpt2.tokenizer.encode(B)
    assert r.token_type_ids == [0] * len(r)  # the model is given none
    np.testing.assert_allclose(r.queries(-1), gpt2.run(ids=r.ids).queries(-1), atol=1e-6)
    assert attnprox.load(text_models["bert"]).manifest["inputs"][-1] == "token_type_ids"


def test_pair_runs_keep_the_layers_asked_for(text_models):
    """A text pair with layers=: the BERT file's forward_layers gets the token type ids after the layers, and the
    layers kept are those a full pair run gives; in lists, streams and with truncation, and chosen at load."""
    import torch

    path = text_models["bert"]
    model = attnprox.load(path)
    assert model.captured_layers == [0, 1]
    full = model.run(text=A, text_pair=B)
    first = model.run(text=A, text_pair=B, layers=[0])
    assert first.layers == [0] and first.token_type_ids == full.token_type_ids and first.text_pair == B
    np.testing.assert_array_equal(first.queries(0), full.queries(0))
    np.testing.assert_array_equal(first.keys(0), full.keys(0))
    with pytest.raises(attnprox.OutOfRangeError, match="layer 1 was not kept by this run"):
        first.attention(1)
    # the types reached forward_layers: segment 0 everywhere gives other queries for the second text
    flat = model.run(ids=first.ids, layers=[0])
    second = [k for k, s in enumerate(first.sequence_ids) if s == 1]
    assert not np.allclose(flat.queries(0)[:, second], first.queries(0)[:, second], atol=1e-3)
    # the file's forward_layers itself, the types after the layers; without them (an engine that passes three
    # arguments) every token is of segment 0
    module = torch.jit.load(path)
    ids = torch.tensor([first.ids])
    with torch.no_grad():
        q, _ = module.forward_layers(ids, torch.ones_like(ids), [0], torch.tensor([first.token_type_ids]))
        q_flat, _ = module.forward_layers(ids, torch.ones_like(ids), [0])
    np.testing.assert_allclose(q[0][0].numpy(), first.queries(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(q_flat[0][0].numpy(), flat.queries(0), rtol=1e-6, atol=1e-6)
    # lists in micro-batches, streams, truncation, the choice at load
    texts, pairs = [A, "The sky is blue.", B], [B, "Write a story.", A]
    listed = model.run(text=texts, text_pair=pairs, token_budget=40, layers="last")
    for text, pair, result in zip(texts, pairs, listed):
        alone = model.run(text=text, text_pair=pair)
        assert result.layers == [1] and result.ids == alone.ids
        np.testing.assert_allclose(result.ap_tokens(), alone.ap_tokens(1), atol=1e-6)
    streamed = dict(model.stream(text=texts, text_pair=pairs, token_budget=40, layers=0))
    assert sorted(streamed) == [0, 1, 2] and all(r.layers == [0] for r in streamed.values())
    cut = model.run(text=A, text_pair=B, truncation=True, max_length=11, layers=[1])
    assert len(cut) == 11 and cut.layers == [1]
    np.testing.assert_allclose(cut.queries(1), model.run(text=A, text_pair=B, truncation=True, max_length=11)
                               .queries(1), atol=1e-6)
    at_load = attnprox.load(path, layers=0).run(text=A, text_pair=B)
    assert at_load.layers == [0]
    np.testing.assert_array_equal(at_load.queries(0), full.queries(0))
    with pytest.raises(attnprox.OutOfRangeError, match="layer 5 requested"):
        model.run(text=A, text_pair=B, layers=5)


def test_a_pair_run_keeping_the_first_layer_computes_no_attention(text_models):
    """forward_layers with token types stops after the last layer asked for: no attention at all for layer 0."""
    import torch

    model = attnprox.load(text_models["bert"])

    def attention_ops(**kw):
        with torch.autograd.profiler.profile() as prof:
            model.run(text=A, text_pair=B, **kw)
        return sum(1 for e in prof.function_events if e.name in ("aten::_softmax", "aten::softmax")
                   or "scaled_dot_product" in e.name)

    if attention_ops() == 0:
        pytest.skip("the profiler does not see the engine's own thread here")
    assert attention_ops(layers=[0]) == 0
    assert attention_ops(layers=[1]) > 0

