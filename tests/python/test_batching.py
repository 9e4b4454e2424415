"""Lists of inputs run in bounded micro-batches (Model.run, Model.stream), and truncation of long inputs."""
import numpy as np
import pytest

import attnprox
from attnprox.batching import micro_batches
from conftest import data_path

PROMPTS = [line.strip() for line in open(data_path("prompts.txt"), encoding="utf-8") if line.strip()]


def test_micro_batches_by_hand():
    # Lengths 5, 1, 3, 2 with a budget of 6: sorted 1, 2, 3, 5 → [1, 2] (2 rows × 2 = 4), [3] would make 3 × 3 = 9
    # with them, so it starts a batch: [3] (3), then 5: 2 × 5 = 10 > 6 → [5] alone.
    assert micro_batches([5, 1, 3, 2], 6) == [[1, 3], [2], [0]]
    # Every input alone when the budget is smaller than each; one batch when it is large.
    assert micro_batches([4, 4, 4], 3) == [[0], [1], [2]]
    assert micro_batches([4, 4, 4], 12) == [[0, 1, 2]]
    with pytest.raises(attnprox.InvalidArgumentError, match="token_budget must be a positive"):
        micro_batches([1], 0)


@pytest.mark.parametrize("budget", [1, 7, 50, 10**6])
def test_micro_batches_cover_every_input_once_within_the_budget(budget):
    rng = np.random.default_rng(budget)
    lengths = [int(x) for x in rng.integers(1, 40, size=300)]
    batches = micro_batches(lengths, budget)
    assert sorted(k for b in batches for k in b) == list(range(len(lengths)))
    for batch in batches:
        assert batch == sorted(batch)
        padded = len(batch) * max(lengths[k] for k in batch)
        assert padded <= budget or len(batch) == 1
    # Inputs are taken in order in groups of at least 8 budgets' worth of tokens: each batch lies in one group,
    # and the groups run in order.
    group, total, groups = 0, 0, []
    for length in lengths:
        groups.append(group)
        total += length
        if total >= 8 * budget:
            group, total = group + 1, 0
    batch_groups = [{groups[k] for k in batch} for batch in batches]
    assert all(len(g) == 1 for g in batch_groups)
    order = [g.pop() for g in batch_groups]
    assert order == sorted(order)


def test_run_of_a_list_runs_in_micro_batches_in_input_order(text_models, monkeypatch):
    model = attnprox.load(text_models["gpt2"])
    calls = []
    original = attnprox.Model._run_prepared

    def spy(self, prepared, *args, **kwargs):
        calls.append([len(p[1]) for p in prepared])
        return original(self, prepared, *args, **kwargs)

    monkeypatch.setattr(attnprox.Model, "_run_prepared", spy)
    results = model.run(text=PROMPTS, token_budget=40)
    assert len(calls) > 1 and sum(len(c) for c in calls) == len(PROMPTS)
    for sizes in calls:
        assert len(sizes) * max(sizes) <= 40 or len(sizes) == 1
    monkeypatch.undo()
    assert [r.text for r in results] == PROMPTS
    for prompt, result in zip(PROMPTS, results):
        alone = model.run(text=prompt)
        assert result.ids == alone.ids
        np.testing.assert_allclose(result.ap_tokens(), alone.ap_tokens(), atol=1e-6)


def test_stream_yields_every_input_once(text_models):
    model = attnprox.load(text_models["bert"])
    seen = dict(model.stream(text=PROMPTS, token_budget=64))
    assert sorted(seen) == list(range(len(PROMPTS)))
    for index, result in seen.items():
        assert result.text == PROMPTS[index]
    ids = [[101, 7592, 102], [101, 2088, 2003, 102], [101, 102]]
    streamed = dict(model.stream(ids=ids, token_budget=4))
    assert [streamed[k].ids for k in range(3)] == ids
    assert [(k, r.ids) for k, r in model.stream(ids=[101, 7592, 102])] == [(0, [101, 7592, 102])]


def test_bad_inputs_in_a_list(text_models):
    model = attnprox.load(text_models["gpt2"])
    texts = ["a fine text", "", "word " * 100, "another fine text"]
    with pytest.raises(attnprox.InvalidArgumentError, match=r"text\[1\]: the text gives no tokens"):
        model.run(text=texts)
    out = dict(model.stream(text=texts, errors="yield"))
    assert isinstance(out[1], attnprox.InvalidArgumentError)
    assert isinstance(out[2], attnprox.InvalidArgumentError) and "the model has 64 positions" in str(out[2])
    assert out[0].ap() == pytest.approx(model.run(text="a fine text").ap(), abs=1e-6)
    assert out[3].text == "another fine text"
    with pytest.raises(attnprox.InvalidArgumentError, match=r"ids\[1\]: .*outside the vocabulary"):
        model.run(ids=[[1, 2], [1, 10**6]])
    with pytest.raises(attnprox.InvalidArgumentError, match="errors must be"):
        list(model.stream(text=texts, errors="ignore"))
    with pytest.raises(attnprox.InvalidArgumentError, match="no texts given"):
        model.run(text=[])


def test_truncation_as_hugging_face(text_models):
    """truncation=True cuts the tokenized text to max_length tokens, special tokens included."""
    bert = attnprox.load(text_models["bert"])  # 64 positions, [CLS] … [SEP]
    text = open(data_path("onestopenglish", "Adv-Txt", "Amazon-adv.txt"), encoding="utf-8-sig").read()
    words = bert.tokenizer.encode(text)  # the text's tokens, no special tokens
    assert len(words) > 64
    with pytest.raises(attnprox.InvalidArgumentError, match=f"has {len(words) + 2} tokens, the model has 64"):
        bert.run(text=text)
    cut = bert.run(text=text, truncation=True)
    cls, sep = bert.tokenizer.token_to_id("[CLS]"), bert.tokenizer.token_to_id("[SEP]")
    assert cut.ids == [cls] + words[:62] + [sep]
    assert cut.text == text and len(cut.offsets) == 64
    short = bert.run(text=text, truncation=True, max_length=10)
    assert short.ids == [cls] + words[:8] + [sep]
    np.testing.assert_allclose(short.ap_tokens(), bert.run(ids=short.ids).ap_tokens(), atol=1e-6)
    fits = bert.run(text="the river", truncation=True, max_length=10)
    assert fits.ids == bert.run(text="the river").ids
    gpt2 = attnprox.load(text_models["gpt2"])  # no special tokens
    assert gpt2.run(text=text, truncation=True, max_length=7).ids == gpt2.tokenizer.encode(text)[:7]
    assert gpt2.run(ids=list(range(100)), truncation=True).ids == list(range(64))
    batch = gpt2.run(text=[text, "short"], truncation=True)
    assert len(batch[0]) == 64 and batch[1].ids == gpt2.tokenizer.encode("short")
    with pytest.raises(attnprox.InvalidArgumentError, match="max_length is given without truncation"):
        gpt2.run(text=text, max_length=7)
    with pytest.raises(attnprox.InvalidArgumentError, match="max_length 65 is more than the model's 64"):
        gpt2.run(text=text, truncation=True, max_length=65)
    with pytest.raises(attnprox.InvalidArgumentError, match="max_length must be a positive"):
        gpt2.run(text=text, truncation=True, max_length=0)
    with pytest.raises(attnprox.InvalidArgumentError, match="leaves no room for the text"):
        bert.run(text=text, truncation=True, max_length=2)


def test_the_default_budget_follows_the_device(text_models, monkeypatch):
    from attnprox.batching import default_token_budget

    assert default_token_budget("cpu") == 512 and default_token_budget("cuda:1") == 8192
    model = attnprox.load(text_models["gpt2"])
    budgets = []
    original = attnprox.model.micro_batches

    def spy(lengths, budget):
        budgets.append(budget)
        return original(lengths, budget)

    monkeypatch.setattr(attnprox.model, "micro_batches", spy)
    model.run(text=PROMPTS[:3])
    assert budgets == [512]
