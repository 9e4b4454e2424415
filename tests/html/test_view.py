"""Tests of the HTML view (attnprox.html_view): the document itself (self-contained, escaped, validated payload,
arrays stored within their stated error, what a page embeds), and the interactions end to end in headless Chromium
through tests/html/test_view.mjs on pages of ready-made matrices and of queries and keys, checked against NumPy.

    ATTNPROX_JS_MODULES=$PWD/build/js /usr/bin/python3 -m pytest -q tests/html

The views of model runs (Result.view(), attnprox.compare(), the command line) are tested in test_view_results.py,
a long text's page (size, time, scaling) in test_view_long.py.
"""
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("ATTNPROX_BUILD_DIR", ROOT / "build"))
if (BUILD / "python" / "attnprox").is_dir():  # the build's package, as tests/python/conftest.py imports it
    sys.path.insert(0, str(BUILD / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "python"))
import browser  # noqa: E402
import reference_numpy as ref  # noqa: E402
from attnprox import html_view  # noqa: E402

# Twelve tokens: plain ones, whitespace, non-ASCII, and markup that must stay text.
LABELS = ["tok0", " the", '<b>&"', " caf\u00e9", " \u65e5\u672c\u8a9e", "tok5", "\n", "  ", "</script>", " it's",
          " \U0001f600", "tok11"]
# A long text: the heatmap's labels must thin out.
LONG_LABELS = [("\n" if i % 40 == 39 else f" w{i}") for i in range(300)]
SCREENSHOTS = ("01-initial.png", "02-click.png", "03-shift-click.png", "04-ctrl-click.png", "05-drag.png",
               "06-double-click.png", "07-blue-white-red.png", "08-ape.png")
VIRIDIS_TOP, BWR_BOTTOM, BWR_TOP = "rgb(253, 231, 37)", "rgb(33, 102, 172)", "rgb(178, 24, 43)"


def make_payload(labels, seed=11, causal=False):
    """A payload of ready-made matrices as a producer would make it, from a random symmetric matrix (diagonal raised,
    as q_i . k_i often is) and random softmax attention (masked above the diagonal when `causal`), with statistics
    computed the way the library defines them."""
    n = len(labels)
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, n))
    proximity = (raw + raw.T) / 2 + 2.0 + 4.0 * np.eye(n)
    ap_tokens = (proximity.sum(axis=1) - np.diag(proximity)) / (n - 1)
    logits = 2.0 * rng.normal(size=(n, n))
    if causal:
        logits = np.where(np.arange(n)[None, :] <= np.arange(n)[:, None], logits, -np.inf)
    attention = np.exp(logits - logits.max(axis=1, keepdims=True))
    attention /= attention.sum(axis=1, keepdims=True)
    entropy = -(attention * np.log(np.where(attention > 0, attention, 1.0))).sum(axis=1)
    visible = np.arange(1, n + 1) if causal else np.full(n, n)
    iape = ref.ape_rows(proximity, "shift")
    candidates = np.where(visible[:, None] >= 2, attention, -1.0)  # queries that see two keys or more
    max_query, max_key = np.unravel_index(np.argmax(candidates), attention.shape)
    normalized = np.where(visible > 1, entropy / np.log(np.maximum(visible, 2)), 0.0)
    return {
        "title": "synthetic \u00b7 layer 11 <i>&</i>",
        "tokens": list(labels),
        "proximity": proximity.tolist(),
        "ap_tokens": ap_tokens.tolist(),
        "attention": attention.tolist(),
        "causal": causal,
        "sliding_window": None,
        "stats": {
            "tokens": n, "ap": float(ap_tokens.mean()), "ape": float(iape.mean()),
            "ape_normalized": float((iape / math.log(n - 1)).mean()), "ape_undefined_rows": 0,
            "mean_entropy": float(entropy.mean()), "mean_normalized_entropy": float(normalized.mean()),
            "max_weight": float(attention[max_query, max_key]), "max_query": int(max_query), "max_key": int(max_key),
            "most_attended": int(np.argmax(attention.sum(axis=0))), "layer": 11, "temperature": 1.0,
        },
    }


def make_qk_payload(n=9, seed=5, heads=4, kv_heads=2, d=8):
    """A payload of queries and keys: three layers (causal with a sliding window and sinks; causal with a soft-cap;
    bidirectional with a window), so that the page's attention meets every part of SPEC section 2."""
    rng = np.random.default_rng(seed)
    layers = []
    for number, extra in ((0, {"causal": True, "sliding_window": 4, "sinks": rng.normal(size=heads).tolist()}),
                          (2, {"causal": True, "softcap": 3.0}),
                          (5, {"causal": False, "sliding_window": 3})):
        layer = {"layer": number, "queries": rng.normal(size=(heads, n, d)) * 1.5,
                 "keys": rng.normal(size=(kv_heads, n, d)) * 1.5, "scaling": d ** -0.5}
        layer.update(extra)
        layers.append(layer)
    labels = [f" t{j}" for j in range(n)]
    return {"title": "queries and keys", "tokens": labels, "layers": layers, "temperature": 0.7, "policy": "clamp",
            "model": "synthetic", "ids": list(range(100, 100 + n)),
            "state": {"layer": 2, "kind": "attention", "head": 1, "selection": [3]}}


def embedded_data(page: str) -> dict:
    """The page's data as its script receives it."""
    match = re.search(r"attnproxView\(root, (.*)\);\n\}\)\(\);", page)
    assert match, "the page does not call attnproxView"
    return json.loads(match.group(1))


# ---- The document, without a browser. ----

def test_self_contained():
    page = html_view.render_html(make_payload(LABELS))
    assert page.startswith("<!DOCTYPE html>")
    assert page.isascii()
    assert not re.search(r"https?://", page, re.IGNORECASE)
    assert not re.search(r"<(link|img|iframe)\b|\bsrc\s*=|@import|url\(", page, re.IGNORECASE)
    assert "<script>" in page and "<style>" in page


def test_labels_and_title_escaped():
    payload = make_payload(LABELS)
    page = html_view.render_html(payload, title="<b>view</b> & \u00e9")
    assert page.count("</script") == 1  # the page's own closing tag: "</script>" the label stays inside a string
    assert '<b>&"' not in page and "<b>view</b>" not in page and "<i>" not in page
    assert "<title>&lt;b&gt;view&lt;/b&gt; &amp; &#233;</title>" in page
    data = embedded_data(page)
    (panel,) = data["panels"]
    assert panel["tokens"] == LABELS and panel["text"] == "".join(LABELS)
    assert data["title"] == panel["title"] == payload["title"]
    assert panel["stats"] == payload["stats"]
    (layer,) = panel["layers"]
    assert layer["layer"] == 11 and layer["ap_tokens"] == payload["ap_tokens"]
    for name in ("proximity", "attention"):  # stored within their stated error
        decoded = html_view.decode_array(layer[name])
        error = np.abs(decoded - np.asarray(payload[name])).max()
        assert error <= layer[name]["max_error"] * (1 + 1e-12) and layer[name]["max_error"] <= 6 * 2.0 ** -24 * 8


def test_unique_root_ids():
    payload = make_payload(LABELS)
    ids = [re.search(r'<div class="apx-view" id="(apx-[0-9a-f]+)"', html_view.render_html(payload)).group(1)
           for _ in range(2)]
    assert ids[0] != ids[1]


def test_numpy_arrays_and_undefined_ape():
    payload = make_payload(LABELS)
    for key in ("proximity", "attention", "ap_tokens"):
        payload[key] = np.asarray(payload[key], dtype=np.float32)
    payload["stats"].update(ape=None, ape_normalized=float("nan"), ape_undefined_rows=12,
                            max_query=np.int64(3), temperature=np.float32(0.5))
    stats = embedded_data(html_view.render_html(payload))["panels"][0]["stats"]
    assert stats["ape"] is None and stats["ape_normalized"] is None
    assert stats["max_query"] == 3 and stats["temperature"] == 0.5


@pytest.mark.parametrize("encoding, bound", [("float32", 2.0 ** -24), ("float16", 2.0 ** -11), ("uint8", None)])
@pytest.mark.parametrize("magnitude", [1e-3, 1.0, 3e4, 1e9])
def test_arrays_are_stored_within_their_stated_error(encoding, bound, magnitude):
    """Each array's decoded values (as the page decodes them) are within the max_error it states, and that error
    is within the encoding's own bound: relative 2^-24 (float32) or 2^-11 (float16: no overflow, whatever the
    magnitude, as the power-of-two scale brings the largest value under 2^15), half a step for uint8."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(3, 40, 7)) * magnitude
    values[0, 0, 0] = 0.0
    encoded = html_view.encode_array(values, encoding)
    assert encoded["dtype"] == encoding and encoded["shape"] == [3, 40, 7]
    decoded = html_view.decode_array(encoded)
    assert decoded.dtype == np.float32 and np.isfinite(decoded).all()
    error = np.abs(decoded.astype(np.float64) - values)
    assert error.max() == pytest.approx(encoded["max_error"], rel=1e-12, abs=0)
    if bound is None:
        assert error.max() <= encoded["scale"] / 2 * (1 + 1e-6) + np.abs(values).max() * 2.0 ** -24
    else:
        tiny = encoded["scale"] * 2.0 ** -24  # float16's subnormals: an absolute step below 2^-14 * scale
        assert (error <= np.abs(values) * bound + tiny).all()
    assert decoded[0, 0, 0] == 0.0 or encoding == "uint8"


def test_the_page_plans_what_it_embeds():
    # 3 layers of 100 values: float32 (1,200 bytes, 1,600 in base64) fits 2,000 bytes; float16 fits 900.
    assert html_view.plan_layers([[100, 100, 100]], [2], 2000) == ("float32", [[0, 1, 2]])
    assert html_view.plan_layers([[100, 100, 100]], [2], 900) == ("float16", [[0, 1, 2]])
    # Two layers fit (2 * 100 * 2 bytes = 400, 536 in base64): the kept one and then from the last one down.
    assert html_view.plan_layers([[100, 100, 100]], [0], 540) == ("float16", [[0, 2]])
    assert html_view.plan_layers([[100, 100, 100]], [1], 10) == ("float16", [[1]])
    # Two panels take turns.
    assert html_view.plan_layers([[100, 100], [100, 100]], [0, 0], 1100) == ("float16", [[0, 1], [0, 1]])
    assert html_view.plan_layers([[100, 100, 100], [100, 100, 100]], [0, 0], 1100) == ("float16", [[0, 2], [0, 2]])


def test_page_data_drops_layers_past_the_size_limit_and_names_them():
    payload = make_qk_payload(n=60, heads=4, kv_heads=2, d=16)  # 6 * 60 * 16 = 5,760 values per layer
    roomy = html_view.page_data(payload)
    assert [l["layer"] for l in roomy["panels"][0]["layers"]] == [0, 2, 5]
    assert roomy["panels"][0]["layers"][0]["queries"]["dtype"] == "float32"
    fixed = html_view.fixed_bytes(html_view._validated(make_qk_payload(n=60, heads=4, kv_heads=2, d=16)))
    tight = html_view.page_data(payload, max_bytes=fixed + 2 * 15400)  # two layers of float16 (15,360 bytes each)
    (panel,) = tight["panels"]
    assert [l["layer"] for l in panel["layers"]] == [2, 5] and panel["omitted_layers"] == [0]
    assert panel["layers"][0]["queries"]["dtype"] == "float16"
    assert len(html_view.render_page(tight, "t")) <= fixed + 2 * 15400


def _malformed():
    """(name, change to a valid payload, text the error names)."""
    def setting(path, value):
        def change(p):
            *parents, last = path
            for key in parents:
                p = p[key]
            p[last] = value
        return change

    def delete(path):
        def change(p):
            *parents, last = path
            for key in parents:
                p = p[key]
            del p[last]
        return change

    def asymmetric(p):
        p["proximity"][0][1] += 0.5

    def unnormalised(p):
        p["attention"][4] = [x * 2 for x in p["attention"][4]]

    def transposed_attention(p):
        p["attention"] = np.asarray(p["attention"]).T.tolist()

    n = len(LABELS)
    return [
        ("empty dict", lambda p: p.clear(), "missing"),
        ("no tokens key", delete(["tokens"]), "'tokens'"),
        ("title not str", setting(["title"], 3), "title"),
        ("tokens empty", setting(["tokens"], []), "tokens"),
        ("token not str", setting(["tokens", 3], 7), r"tokens'\]\[3\]"),
        ("proximity wrong shape", setting(["proximity"], [[0.0] * n] * (n - 1)), "shape"),
        ("proximity ragged", setting(["proximity", 2], [1.0]), "proximity"),
        ("proximity strings", setting(["proximity", 2, 2], "1.5"), "proximity"),
        ("proximity None", setting(["proximity", 2, 2], None), "proximity"),
        ("proximity NaN", setting(["proximity", 2, 2], float("nan")), "finite"),
        ("proximity asymmetric", asymmetric, "symmetric"),
        ("attention negative", setting(["attention", 1, 1], -0.1), "negative"),
        ("attention rows", unnormalised, "row 4"),
        ("attention transposed", transposed_attention, "sum to 1"),
        ("ap_tokens short", setting(["ap_tokens"], [0.0] * (n - 1)), "ap_tokens"),
        ("stats not dict", setting(["stats"], [1, 2]), "stats"),
        ("stats key missing", delete(["stats", "mean_entropy"]), "mean_entropy"),
        ("stats tokens", setting(["stats", "tokens"], n + 1), "tokens"),
        ("stats float for int", setting(["stats", "layer"], 1.5), "layer"),
        ("stats bool", setting(["stats", "max_key"], True), "max_key"),
        ("stats ap None", setting(["stats", "ap"], None), "'ap'"),
        ("stats ap infinite", setting(["stats", "ap"], float("inf")), "finite"),
        ("stats query out of range", setting(["stats", "max_query"], n), "max_query"),
        ("stats undefined rows", setting(["stats", "ape_undefined_rows"], -1), "ape_undefined_rows"),
        ("causal not bool", setting(["causal"], "yes"), "causal"),
        ("window zero", setting(["sliding_window"], 0), "sliding_window"),
        ("weight on a masked key", setting(["causal"], True), "query 0 weight on key 1, which it cannot see"),
        ("text without offsets", setting(["text"], "".join(LABELS)), "needs payload\\['offsets'\\]"),
        ("offsets outside the text", lambda p: p.update(text="abc", offsets=[[0, 1]] * (n - 1) + [[2, 9]]),
         r"offsets'\]\[11\] = \[2, 9\] lies outside the text \(3 characters\)"),
        ("state kind", setting(["state"], {"kind": "heat"}), "'kind'\\] must be one of proximity, attention"),
        ("state selection", setting(["state"], {"selection": [0, n]}), f"token {n}, the text has {n} tokens"),
        ("state head", setting(["state"], {"head": 0}), "ready-made matrices"),
    ]


@pytest.mark.parametrize("name,change,message", _malformed(), ids=[m[0] for m in _malformed()])
def test_malformed_payload_raises(name, change, message):
    payload = make_payload(LABELS)
    change(payload)
    with pytest.raises(ValueError, match=message):
        html_view.render_html(payload)


def _malformed_qk():
    def layer(key, value):
        def change(p):
            p["layers"][1][key] = value
        return change

    return [
        ("queries of another N", layer("queries", np.zeros((4, 8, 8))), "N = 9 tokens"),
        ("key heads", layer("keys", np.zeros((3, 9, 8))), "multiple of 3 key heads"),
        ("head size", layer("keys", np.zeros((2, 9, 4))), "head size 8, keys 4"),
        ("queries NaN", layer("queries", np.full((4, 9, 8), np.nan)), "not finite"),
        ("scaling missing", lambda p: p["layers"][1].pop("scaling"), "missing 'scaling'"),
        ("sinks per head", layer("sinks", [0.0, 1.0]), "one logit per query head \\(4\\), found 2"),
        ("softcap", layer("softcap", -1.0), "softcap"),
        ("repeated layer", layer("layer", 0), "repeats a layer number"),
        ("mixed forms", lambda p: p["layers"].append({"layer": 9, "proximity": np.eye(9),
                                                      "attention": np.eye(9)}), "mixes"),
        ("state layer", lambda p: p["state"].update(layer=3), "one of the layers \\[0, 2, 5\\]"),
        ("state head", lambda p: p["state"].update(head=4), "a head 0..3"),
        ("temperature", lambda p: p.update(temperature=0), "temperature"),
        ("policy", lambda p: p.update(policy="none"), "policy"),
        ("two panels at most", lambda p: p.update(panels=[dict(p)] * 3), "one or two panels"),
    ]


@pytest.mark.parametrize("name,change,message", _malformed_qk(), ids=[m[0] for m in _malformed_qk()])
def test_malformed_queries_and_keys_raise(name, change, message):
    payload = make_qk_payload()
    change(payload)
    with pytest.raises(ValueError, match=message):
        html_view.render_html(payload)


def test_payload_not_a_mapping():
    with pytest.raises(ValueError, match="dict"):
        html_view.render_html([1, 2, 3])


# ---- The interactions, in headless Chromium: a page of ready-made matrices. ----

def _word_token(labels):
    """A token whose word spans two tokens ("<CJK>tok5"), and that word; else one token alone."""
    return (5, [4, 5]) if labels == LABELS else (5, [5])


@pytest.mark.parametrize("labels, causal", [(LABELS, False), (LONG_LABELS, False), (LABELS, True)],
                         ids=["n12", "n300", "n12-causal"])
def test_view_in_chromium(tmp_path, labels, causal):
    """Every gesture on a page of ready-made matrices, each state checked against NumPy on the payload: the
    selection gestures and their undo, double-click on a word, the scales and their handles, the histogram and its
    links to the tokens, the colour schemes, AP_i / iAPE_i, the statistics, the labels, the export, and the page
    shown twice inline as a notebook shows it."""
    browser.require()
    payload = make_payload(labels, causal=causal)
    n = len(labels)
    out = browser.artefacts(f"html-view-n{n}{'-causal' if causal else ''}", tmp_path)
    page = out / "view.html"
    page.write_text(html_view.render_html(payload, title="attnprox view test"), encoding="ascii")
    (layer,) = embedded_data(page.read_text(encoding="ascii"))["panels"][0]["layers"]
    a = html_view.decode_array(layer["proximity"]).astype(np.float64)  # what the page holds
    p = html_view.decode_array(layer["attention"]).astype(np.float64)
    assert np.abs(a - np.asarray(payload["proximity"])).max() <= layer["proximity"]["max_error"] * (1 + 1e-12)
    assert np.abs(p - np.asarray(payload["attention"])).max() <= layer["attention"]["max_error"] * (1 + 1e-12)
    tolerance = 1e-9 * max(1.0, np.abs(a).max())
    visible = np.tril(np.ones((n, n), bool)) if causal else np.ones((n, n), bool)
    word_token, word = _word_token(labels)

    steps = [
        {"name": "initial", "do": "look"}, {"name": "shot 1", "do": "screenshot", "file": SCREENSHOTS[0]},
        {"name": "click 2", "do": "click", "token": 2},
        {"name": "shot 2", "do": "screenshot", "file": SCREENSHOTS[1]},
        {"name": "shift-click 5", "do": "click", "token": 5, "modifiers": ["Shift"]},
        {"name": "shot 3", "do": "screenshot", "file": SCREENSHOTS[2]},
        {"name": "ctrl-click 3", "do": "click", "token": 3, "modifiers": ["Control"]},
        {"name": "shot 4", "do": "screenshot", "file": SCREENSHOTS[3]},
        {"name": "drag", "do": "drag", "scale": "scale", "to": 0.5, "colours": True},
        {"name": "shot 5", "do": "screenshot", "file": SCREENSHOTS[4]},
        {"name": "reset", "do": "activate", "testid": "scale-reset"},
        {"name": "heat drag", "do": "drag", "scale": "heatmap-scale", "to": 0.5},
        {"name": "heat reset", "do": "activate", "testid": "heatmap-scale-reset"},
        {"name": "meta-click 3", "do": "click", "token": 3, "modifiers": ["Meta"]},
        {"name": "meta-click 3 again", "do": "click", "token": 3, "modifiers": ["Meta"]},
        {"name": "undo 1", "do": "press", "key": "Control+z"},
        {"name": "undo 2", "do": "press", "key": "Control+z"},
        {"name": "undo 3", "do": "press", "key": "Control+z"},
        {"name": "undo 4", "do": "press", "key": "Meta+z"},
        {"name": "undo 5", "do": "press", "key": "Control+z"},
        {"name": "undo 6", "do": "press", "key": "Control+z"},
        {"name": "double-click", "do": "dblclick", "token": word_token},
        {"name": "shot 6", "do": "screenshot", "file": SCREENSHOTS[5]},
        {"name": "ctrl-double-click", "do": "dblclick", "token": 0, "modifiers": ["Control"]},
        {"name": "undo ctrl-double-click", "do": "press", "key": "Control+z"},
        {"name": "undo double-click", "do": "press", "key": "Control+z"},
        {"name": "click 2 again", "do": "click", "token": 2},
        {"name": "hover bin", "do": "hover-bin", "bin": None},  # filled in below
        {"name": "hover token", "do": "hover-token", "token": 7},
        {"name": "leave", "do": "leave"},
        {"name": "scheme", "do": "choose", "testid": "scheme", "value": "blue-white-red", "colours": True},
        {"name": "shot 7", "do": "screenshot", "file": SCREENSHOTS[6]},
        {"name": "clear", "do": "activate", "testid": "clear-selection"},
        {"name": "ape", "do": "choose", "testid": "measure", "value": "ape"},
        {"name": "shot 8", "do": "screenshot", "file": SCREENSHOTS[7]},
        {"name": "ap", "do": "choose", "testid": "measure", "value": "ap"},
        {"name": "row label 0", "do": "activate", "testid": "row-label-0"},
        {"name": "click 0 again", "do": "click", "token": 0},
        {"name": "click 4", "do": "click", "token": 4},
        {"name": "clear button", "do": "activate", "testid": "clear-selection"},
        {"name": "click 1", "do": "click", "token": 1},
        {"name": "ctrl-click 4", "do": "click", "token": 4, "modifiers": ["Control"]},
        {"name": "export", "do": "export", "file": "export.json"},
        {"name": "inline", "do": "inline-twice"},
    ]
    # The bin hovered: token 6's under S = {2} (found before the run: the scale fits the unselected values).
    subset_2 = a[2]
    lo, hi = browser.fitted(np.delete(subset_2, 2))
    hovered_bin = browser.bin_of(subset_2[6], lo, hi)
    next(s for s in steps if s["name"] == "hover bin")["bin"] = hovered_bin
    record = browser.run(page, steps, out)

    def expect(step, selection, focus):
        state = browser.panel(record, step)
        want = sorted(selection)
        assert state["selection"] == want and state["count"] == len(want), f"{step}: {state['selection']}"
        assert state["outlined"] == want, f"{step}: outlined {state['outlined']}"
        shown = browser.values(state)
        expected = np.asarray(payload["ap_tokens"]) if not want else a[want].mean(axis=0)
        browser.assert_close(shown, expected, tolerance, f"{step}: colour values")
        if focus is None:
            assert state["arcs"] == [] and state["focus"] == [], f"{step}: arcs {state['arcs']}"
        else:
            assert state["focus"] == [focus]
            arcs = [(arc["key"], arc["weight"]) for arc in state["arcs"]]
            expected_arcs = browser.top_arcs(p[focus], visible[focus])
            assert [k for k, _ in arcs] == [k for k, _ in expected_arcs], f"{step}: arcs {arcs}"
            browser.assert_close([w for _, w in arcs], [w for _, w in expected_arcs], 1e-12, f"{step}: arc weights")
            assert all("\u2014" in arc["text"] for arc in state["arcs"])
        # The histogram counts the unselected values over the scale's range.
        scale = record["by_name"][step]["state"]["scale"]
        kept = [shown[j] for j in range(n) if j not in want]
        counts = np.zeros(browser.BINS, int)
        for v in kept:
            counts[browser.bin_of(v, scale["min"], scale["max"])] += 1
        assert state["histogram"]["counts"] == counts.tolist(), f"{step}: histogram"
        if not record["by_name"][step]["state"]["scale"]["mode"].endswith("by hand"):
            assert (scale["min"], scale["max"]) == pytest.approx(browser.fitted(np.asarray(kept)), abs=tolerance)
        return state

    # The page as written: one span per token, the labels as text, no markup from them.
    facts = record["page"]["panels"][0]
    plain = lambda label: label != "" and not re.search(r"[\s\x00-\x1f\x7f]", label)  # noqa: E731
    assert len(facts["texts"]) == n
    assert all(facts["texts"][j] == label for j, label in enumerate(labels) if plain(label))
    assert facts["foreign"] == [], f"markup in the text: {facts['foreign']}"
    assert facts["written"].replace("\u21b5", "") == "".join(labels)  # the text as written, line breaks included
    assert record["page"]["title"] == payload["title"]

    expect("initial", [], None)
    expect("click 2", [2], 2)
    expect("shift-click 5", [2, 3, 4, 5], 5)
    expect("ctrl-click 3", [2, 4, 5], 5)

    # The text's scale: the max handle dragged to the middle of the bar, then reset.
    before = record["by_name"]["ctrl-click 3"]["state"]["scale"]
    dragged_state = record["by_name"]["drag"]["state"]
    dragged = dragged_state["scale"]
    assert before["min"] < dragged["max"] < before["max"] and dragged["min"] == before["min"]
    assert dragged["mode"] == "range set by hand" and "above" in dragged["clamped"]
    drag_panel = dragged_state["panels"][0]
    shown = browser.values(drag_panel)
    beyond = [drag_panel["colours"][j] for j in range(n) if shown[j] >= dragged["max"] and j not in (2, 4, 5)]
    assert beyond and all(c == VIRIDIS_TOP for c in beyond), beyond
    browser.assert_close(shown, a[[2, 4, 5]].mean(axis=0), tolerance, "drag: the values stay")
    assert record["by_name"]["reset"]["state"]["scale"] == before

    # The heatmap's scale: A's range; dragging its max re-colours the heatmap until reset.
    heat = record["by_name"]["ctrl-click 3"]["state"]["heat_scale"]
    assert (heat["min"], heat["max"]) == (a.min(), a.max()) and heat["scaling"] == "linear"
    heat_dragged = record["by_name"]["heat drag"]["state"]
    assert heat["min"] < heat_dragged["heat_scale"]["max"] < heat["max"]
    digest = browser.panel(record, "ctrl-click 3")["heatmap"]["digest"]
    assert heat_dragged["panels"][0]["heatmap"]["digest"] != digest
    assert record["by_name"]["heat reset"]["state"]["heat_scale"]["max"] == heat["max"]
    assert browser.panel(record, "heat reset")["heatmap"]["digest"] == digest

    # Cmd toggles like ctrl; the focus returns to the last added token still selected; undo walks back.
    expect("meta-click 3", [2, 3, 4, 5], 3)
    expect("meta-click 3 again", [2, 4, 5], 5)
    expect("undo 1", [2, 3, 4, 5], 3)
    expect("undo 2", [2, 4, 5], 5)
    expect("undo 3", [2, 3, 4, 5], 5)
    expect("undo 4", [2], 2)
    expect("undo 5", [], None)
    expect("undo 6", [], None)  # nothing left to undo

    # Double-click: the word; ctrl adds a word; undo returns to the state before each double-click.
    expect("double-click", word, word_token)
    expect("ctrl-double-click", sorted(set(word) | {0}), 0)
    expect("undo ctrl-double-click", word, word_token)
    expect("undo double-click", [], None)

    # The histogram and the tokens: hovering a bin outlines its tokens, hovering a token marks its bin.
    hovered = expect("hover bin", [2], 2)
    shown = browser.values(hovered)
    assert hovered["histogram"]["active"] == hovered_bin
    assert hovered["bin_hit"] == [j for j in range(n) if j != 2 and browser.bin_of(shown[j], lo, hi) == hovered_bin]
    assert 6 in hovered["bin_hit"]
    assert browser.panel(record, "hover token")["histogram"]["marked"] == browser.bin_of(shown[7], lo, hi)
    assert browser.panel(record, "leave")["histogram"]["marked"] == -1

    # The blue-white-red scheme: the ends of the range take its end colours; the heatmap is re-coloured.
    scheme = expect("scheme", [2], 2)
    colours, shown = scheme["colours"], browser.values(scheme)
    others = [j for j in range(n) if j != 2]
    assert colours[min(others, key=lambda j: shown[j])] == BWR_BOTTOM
    assert colours[max(others, key=lambda j: shown[j])] == BWR_TOP
    assert scheme["heatmap"]["digest"] != browser.panel(record, "click 2 again")["heatmap"]["digest"]

    # iAPE_i from the page's matrix under the payload's policy (shift), against NumPy.
    ape_state = browser.panel(record, "ape")
    browser.assert_close(browser.values(ape_state), ref.ape_rows(a, "shift"), 1e-9, "iAPE_i")
    assert "iAPE_i" in ape_state["quantity"]
    assert browser.panel(record, "ape")["pills"]["ape"] == pytest.approx(np.nanmean(ref.ape_rows(a, "shift")))
    expect("ap", [], None)

    # Statistics, labels, the clear gestures.
    stats = facts["stats"]
    s = payload["stats"]
    assert stats["stat-ap"]["text"] == f"{s['ap']:.4f}" and float(stats["stat-ap"]["value"]) == s["ap"]
    assert stats["stat-tokens"]["text"] == str(n) and stats["stat-layer"]["text"] == str(s["layer"])
    assert stats["stat-ape"]["text"].startswith(f"{s['ape']:.4f}")
    boxes = facts["row_labels"]
    assert boxes and all(top >= boxes[k - 1][1] - 0.5 for k, (top, _) in enumerate(boxes) if k)
    if n > 100:
        assert len(boxes) < n  # thinned out
    expect("row label 0", [0], 0)
    expect("click 0 again", [], None)
    expect("clear button", [], None)

    # The export: what the page shows, as a file.
    exported = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert record["by_name"]["export"]["suggested"].endswith(".json")
    assert exported["format"] == "attnprox-view" and exported["version"] == 1
    assert exported["tokens"] == labels and exported["text"] == "".join(labels) and exported["text_from_tokens"]
    assert exported["char_spans"] == [[sum(map(len, labels[:j])), sum(map(len, labels[:j + 1]))] for j in range(n)]
    assert exported["kind"] == "proximity" and exported["layer"] == 11 and exported["head"] == "mean"
    assert exported["layers"] == [11] and exported["selection"] == [1, 4] and exported["measure"] == "ap"
    assert exported["policy"] == "shift" and exported["temperature"] == 1.0 and exported["ids"] is None
    browser.assert_close(exported["ap_tokens"], payload["ap_tokens"], 0, "export: AP_i")
    browser.assert_close([np.nan if v is None else v for v in exported["ape_tokens"]], ref.ape_rows(a, "shift"),
                         1e-9, "export: iAPE_i")
    assert exported["ap"] == pytest.approx(np.mean(payload["ap_tokens"]), rel=1e-12)
    browser.assert_close(exported["subset_proximity"], a[[1, 4]].mean(axis=0), tolerance, "export: AP^(S)")
    browser.assert_close(exported["values"], a[[1, 4]].mean(axis=0), tolerance, "export: values")
    browser.assert_close(exported["matrix"], a, 1e-6 * np.abs(a), "export: the matrix (7 significant digits)")
    assert exported["colour"]["scheme"] == "blue-white-red" and exported["colour"]["heatmap_scaling"] == "linear"
    assert exported["precision"] == {"encoding": layer["proximity"]["dtype"],
                                     "max_abs_error": max(layer["proximity"]["max_error"],
                                                          layer["attention"]["max_error"]),
                                     "computed_from": "page"}

    # Inline, as a notebook shows it: the same document twice in a host page; both views work on their own.
    inline = record["by_name"]["inline"]["inline"]
    assert inline["ready"] == 2 and inline["counts"] == ["0", "1"] and inline["hostUnchanged"], inline
    for name in SCREENSHOTS:
        assert (out / name).stat().st_size > 0, f"{name} is empty"


# ---- A page of queries and keys: the attention the page computes, against NumPy. ----

def test_queries_and_keys_page_in_chromium(tmp_path):
    """The page's maps from queries and keys, for each layer and head and the means, against NumPy references
    (SPEC sections 2 and 3): attention with a sliding window and sinks, a soft-cap, a bidirectional window, a
    temperature; the proximity matrix and its AP_i, iAPE_i (clamp policy) and AP^(S); read from the page's exports
    after the layer, head and kind selectors and the selection changed."""
    browser.require()
    payload = make_qk_payload()
    n = len(payload["tokens"])
    out = browser.artefacts("html-view-qk", tmp_path)
    page = out / "view.html"
    page.write_text(html_view.render_html(payload), encoding="ascii")
    layers = {l["layer"]: l for l in embedded_data(page.read_text(encoding="ascii"))["panels"][0]["layers"]}
    q = {k: html_view.decode_array(l["queries"]).astype(np.float64) for k, l in layers.items()}
    kk = {k: html_view.decode_array(l["keys"]).astype(np.float64) for k, l in layers.items()}
    t = payload["temperature"]
    spec = {l["layer"]: l for l in payload["layers"]}

    def attention(layer, heads):
        s = spec[layer]
        weights = ref.attention(q[layer], kk[layer], s["scaling"], s.get("causal", False), s.get("sliding_window"),
                                s.get("softcap"), s.get("sinks"), t)
        return weights[heads].mean(axis=0)

    def proximity(layers_, heads):
        d = q[layers_[0]].shape[2]
        total = 0
        for layer in layers_:
            keys = np.repeat(kk[layer], 2, axis=0)
            total = total + sum(q[layer][h] @ keys[h].T for h in heads)
        raw = total / (len(layers_) * len(heads) * np.sqrt(d))
        return (raw + raw.T) / 2

    steps = [
        {"name": "initial", "do": "look"},
        {"name": "export 1", "do": "export", "file": "attention-2-1.json"},
        {"name": "layer 0", "do": "choose", "testid": "layer", "value": "0"},
        {"name": "head 3", "do": "choose", "testid": "head", "value": "3"},
        {"name": "export 2", "do": "export", "file": "attention-0-3.json"},
        {"name": "layer 5 mean", "do": "choose", "testid": "layer", "value": "2"},
        {"name": "heads mean", "do": "choose", "testid": "head", "value": "mean"},
        {"name": "export 3", "do": "export", "file": "attention-5-mean.json"},
        {"name": "mean of layers", "do": "choose", "testid": "layer", "value": "mean"},
        {"name": "proximity", "do": "choose", "testid": "kind", "value": "proximity"},
        {"name": "click 6", "do": "click", "token": 6, "modifiers": ["Control"]},
        {"name": "ape", "do": "choose", "testid": "measure", "value": "ape"},
        {"name": "export 4", "do": "export", "file": "proximity-mean-mean.json"},
        {"name": "head 2", "do": "choose", "testid": "head", "value": "2"},
        {"name": "export 5", "do": "export", "file": "proximity-mean-2.json"},
        {"name": "shot", "do": "screenshot", "file": "qk.png"},
    ]
    record = browser.run(page, steps, out)
    initial = browser.panel(record, "initial")
    assert initial["heatmap"] == {**initial["heatmap"], "kind": "attention", "layer": "2", "head": "1"}
    assert initial["selection"] == [3] and initial["layer"] == "1" and initial["head"] == "1"
    all_layers, all_heads = [0, 2, 5], [0, 1, 2, 3]
    checks = [("attention-2-1.json", "attention", [2], [1], [3]), ("attention-0-3.json", "attention", [0], [3], [3]),
              ("attention-5-mean.json", "attention", [5], all_heads, [3]),
              ("proximity-mean-mean.json", "proximity", all_layers, all_heads, [3, 6]),
              ("proximity-mean-2.json", "proximity", all_layers, [2], [3, 6])]
    for name, kind, layers_, heads, selection in checks:
        exported = json.loads((out / name).read_text(encoding="utf-8"))
        a = proximity(layers_, heads)
        shown = attention(layers_[0], heads) if kind == "attention" else a
        assert exported["kind"] == kind and exported["selection"] == selection, name
        assert exported["layer"] == (layers_[0] if len(layers_) == 1 else "mean"), name
        assert exported["head"] == (heads[0] if len(heads) == 1 else "mean"), name
        assert exported["model"] == "synthetic" and exported["ids"] == payload["ids"] and exported["policy"] == "clamp"
        # The page keeps its maps in float32 (relative rounding 6e-8) and exports 7 significant digits.
        browser.assert_close(exported["matrix"], shown, 1e-6 * np.abs(shown) + 1e-12, f"{name}: the matrix")
        scale = 1e-6 * np.abs(a).max()
        browser.assert_close(exported["ap_tokens"], (a.sum(1) - np.diag(a)) / (n - 1), scale, f"{name}: AP_i")
        iape = ref.ape_rows(a, "clamp")
        browser.assert_close([np.nan if v is None else v for v in exported["ape_tokens"]], iape, 1e-5,
                             f"{name}: iAPE_i")
        assert exported["ape_undefined_rows"] == int(np.isnan(iape).sum())
        browser.assert_close(exported["subset_proximity"], a[selection].mean(axis=0), scale, f"{name}: AP^(S)")
    # The sinks take weight: layer 0's rows sum to less than 1.
    sinks = np.asarray(json.loads((out / "attention-0-3.json").read_text())["matrix"])
    assert (sinks.sum(axis=1) < 1 - 1e-3).any()
    # The head view and the arcs follow the attention of the choice: query 3 (the focus) at layer 2, head 1.
    row = attention(2, [1])[3]
    assert initial["head_view"]["query"] == "3" and initial["head_view"]["lines"] == int((row > 0).sum()) == 4
    assert initial["head_view"]["max_weight"] == pytest.approx(row.max(), rel=1e-6)
    arcs = [(a_["key"], a_["weight"]) for a_ in initial["arcs"]]
    expected = browser.top_arcs(row, np.arange(n) <= 3)
    assert [k for k, _ in arcs] == [k for k, _ in expected]
    browser.assert_close([w for _, w in arcs], [w for _, w in expected], 1e-6, "arcs")
    assert browser.panel(record, "ape")["quantity"].startswith("Colour: AP^(S)")  # the selection colours
