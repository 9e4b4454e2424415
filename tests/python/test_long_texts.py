"""Texts longer than the model's positions: Model.run_windows, against a brute-force NumPy reference built from
runs of each window's ids and the definitions in docs/long-texts.md."""
import os

import numpy as np
import pytest

import attnprox
import reference_numpy as ref
from conftest import data_path


def long_text():
    folder = data_path("onestopenglish", "Adv-Txt")
    first = sorted(name for name in os.listdir(folder) if name.endswith(".txt"))[0]
    with open(os.path.join(folder, first), encoding="utf-8-sig") as f:
        return f.read()


def reference_spans(n, span, stride):
    """Windows written out from the definition: starts 0, stride, 2·stride, … while the window fits, then one
    more ending at n when the last did not reach it."""
    starts = [s for s in range(0, n, stride) if s + span <= n] or [0]
    if starts[-1] + span < n:
        starts.append(n - span)
    return [(s, min(s + span, n)) for s in starts]


def reference_measurements(model, pieces, before, after_ids, before_ids):
    """(ap_tokens, ap, ape_tokens, ape, ape_normalized) of the whole text from each window run alone."""
    n = max(e for _, (_, e) in pieces)
    ap_sum, ap_count = np.zeros(n), np.zeros(n)
    ape_sum, ape_count = np.zeros(n), np.zeros(n)
    weighted_ap, lengths = 0.0, 0
    ape_values, ape_normalized = [], []
    for window_ids, (s, e) in pieces:
        r = model.run(ids=before_ids + window_ids + after_ids)
        q, k = r.queries(-1, rope=False), r.keys(-1, rope=False)  # what the proximity family measures by default
        ap_i = ref.ap_tokens(q, k)
        rows = ref.ape_rows(ref.proximity(q, k), "shift")
        n_w = len(r)
        weighted_ap += n_w * ap_i.mean()
        lengths += n_w
        for t in range(s, e):
            ap_sum[t] += ap_i[before + t - s]
            ap_count[t] += 1
            value = rows[before + t - s]
            if np.isfinite(value):
                ape_sum[t] += value
                ape_count[t] += 1
        defined = rows[np.isfinite(rows)]
        ape_values += list(defined)
        ape_normalized += list(defined / np.log(n_w - 1))
    with np.errstate(invalid="ignore"):
        ape_tokens = ape_sum / ape_count
    return ap_sum / ap_count, weighted_ap / lengths, ape_tokens, np.mean(ape_values), np.mean(ape_normalized)


@pytest.mark.parametrize("window, stride", [(20, 7), (64, None), (33, 31)])
def test_windows_of_a_bert_text_against_numpy(text_models, window, stride):
    model = attnprox.load(text_models["bert"])
    text = long_text()
    words = model.tokenizer.encode(text)
    cls, sep = model.tokenizer.token_to_id("[CLS]"), model.tokenizer.token_to_id("[SEP]")
    w = model.run_windows(text=text, window=window, stride=stride)
    span = window - 2
    spans = reference_spans(len(words), span, stride or span // 2)
    assert w.n == len(words) and w.ids == words
    assert [s for s, _ in w.windows] == spans and len(spans) > 2
    for (s, e), r in w.windows:
        assert r.ids == [cls] + words[s:e] + [sep]
        assert r.text == text
        for piece, (a, b) in zip(r.token_texts[1:-1], r.offsets[1:-1]):
            assert text[a:b] == piece  # offsets index the whole text
    pieces = [(words[s:e], (s, e)) for s, e in spans]
    ap_tokens, ap, ape_tokens, ape, ape_normalized = reference_measurements(model, pieces, 1, [sep], [cls])
    np.testing.assert_allclose(w.ap_tokens(), ap_tokens, rtol=1e-5, atol=1e-5)
    assert w.ap() == pytest.approx(ap, rel=1e-5, abs=1e-6)
    got = w.ape()
    np.testing.assert_allclose(got.tokens, ape_tokens, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w.ape_tokens(), ape_tokens, rtol=1e-5, atol=1e-5)
    assert float(got) == pytest.approx(ape, rel=1e-5) and got.normalized == pytest.approx(ape_normalized, rel=1e-5)
    assert got.undefined_rows == int(np.isnan(ape_tokens).sum())


def test_windows_of_ids_on_a_model_without_special_tokens(text_models):
    model = attnprox.load(text_models["gpt2"])
    ids = model.tokenizer.encode(long_text())[:150]
    w = model.run_windows(ids=ids, window=40, stride=15)
    spans = reference_spans(150, 40, 15)
    assert [s for s, _ in w.windows] == spans and w.windows[-1][0] == (110, 150)
    ap_tokens, ap, ape_tokens, _, _ = reference_measurements(model, [(ids[s:e], (s, e)) for s, e in spans], 0, [], [])
    np.testing.assert_allclose(w.ap_tokens(), ap_tokens, rtol=1e-5, atol=1e-5)
    assert w.ap() == pytest.approx(ap, rel=1e-5, abs=1e-6)
    assert w.text is None and w.tokens is None


def test_one_window_is_a_plain_run(text_models):
    model = attnprox.load(text_models["bert"])
    text = "The bank by the river was steep."
    w = model.run_windows(text=text)
    plain = model.run(text=text)
    assert len(w.windows) == 1 and w.windows[0][0] == (0, len(plain) - 2)
    assert w.ap() == pytest.approx(plain.ap(), abs=1e-9)
    np.testing.assert_allclose(w.ap_tokens(), plain.ap_tokens()[1:-1], atol=1e-9)
    assert float(w.ape()) == pytest.approx(float(plain.ape()), abs=1e-9)


def test_window_errors(text_models):
    model = attnprox.load(text_models["bert"])
    text = long_text()
    with pytest.raises(attnprox.InvalidArgumentError, match="window 65 is longer than the model's 64 positions"):
        model.run_windows(text=text, window=65)
    with pytest.raises(attnprox.InvalidArgumentError, match="window 2 leaves no room for the text"):
        model.run_windows(text=text, window=2)
    with pytest.raises(attnprox.InvalidArgumentError, match="stride 19 is longer than a window's 18 text tokens"):
        model.run_windows(text=text, window=20, stride=19)
    with pytest.raises(attnprox.InvalidArgumentError, match="stride must be a positive"):
        model.run_windows(text=text, stride=0)
    with pytest.raises(attnprox.InvalidArgumentError, match="one text"):
        model.run_windows(text=[text])
    with pytest.raises(attnprox.InvalidArgumentError, match="the text gives no tokens"):
        model.run_windows(text="   ")


def test_windows_keep_the_layers_asked_for(text_models):
    """run_windows keeps the layers asked for in every window."""
    model = attnprox.load(text_models["bert"])
    text = " ".join(["The bank by the river was steep.", "Emily took some French lessons in Paris."] * 12)
    whole = model.run_windows(text=text, window=32)
    kept = model.run_windows(text=text, window=32, layers=[0])
    assert len(kept.windows) == len(whole.windows) > 1
    assert all(r.layers == [0] for _, r in kept.windows)
    np.testing.assert_allclose(kept.ap_tokens(), whole.ap_tokens(0), atol=1e-6)
    assert kept.ap() == pytest.approx(whole.ap(0), rel=1e-9)
