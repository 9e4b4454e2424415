"""The views of model runs: Result.view() of the default model and attnprox.compare(), their payloads and exports
against the Results' own arrays, and in headless Chromium the text as written, double-clicked words, the layer, head
and kind selectors, the head view, undo per panel, one colour range for two texts, the downloaded exports against
View.export() / Compare.export(); the command line's heatmap of two texts.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("ATTNPROX_BUILD_DIR", ROOT / "build"))
if (BUILD / "python" / "attnprox").is_dir():
    sys.path.insert(0, str(BUILD / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import attnprox  # noqa: E402
import browser  # noqa: E402
from attnprox import html_view  # noqa: E402

TEXT = ("The bank by the river was steep.\nEmily wanted to visit Paris, she took French lessons.\n\n"
        "  It's fine \U0001f600 caf\u00e9.")
OTHER = "Paris is the capital of France.\nThe river Seine runs through it."
EXACT = ("format", "version", "model", "text", "text_from_tokens", "tokens", "ids", "char_spans", "kind", "measure",
         "layer", "head", "layers", "omitted_layers", "heads", "temperature", "policy", "selection",
         "ape_undefined_rows")


@pytest.fixture(scope="module")
def model():
    return attnprox.load()


@pytest.fixture(scope="module")
def result(model):
    return model.run(text=TEXT)


def embedded_data(page: str) -> dict:
    match = re.search(r"attnproxView\(root, (.*)\);\n\}\)\(\);", page)
    assert match, "the page does not call attnproxView"
    return json.loads(match.group(1))


def assert_same_record(page: dict, python: dict, tolerance: float, what: str):
    """A record the page exported against View.export()'s for the same state: the same fields, the same words and
    choices, numbers within `tolerance` (relative to the matrix's largest entry)."""
    assert set(page) == set(python), f"{what}: fields {set(page) ^ set(python)}"
    for key in EXACT:
        assert page[key] == python[key], f"{what}: {key} {page[key]!r} != {python[key]!r}"
    scale = tolerance * max(1.0, float(np.abs(np.asarray(python["matrix"])).max()))
    for key in ("ap_tokens", "ape_tokens", "subset_proximity", "values", "matrix"):
        if python[key] is None:
            assert page[key] is None, f"{what}: {key}"
            continue
        as_array = lambda v: np.asarray([[np.nan if x is None else x for x in row] if isinstance(row, list)  # noqa
                                         else (np.nan if row is None else row) for row in v], dtype=np.float64)
        browser.assert_close(as_array(page[key]), as_array(python[key]), scale, f"{what}: {key}")
    for key in ("ap", "ape", "ape_normalized"):
        assert (page[key] is None) == (python[key] is None), f"{what}: {key}"
        if python[key] is not None:
            assert page[key] == pytest.approx(python[key], abs=scale), f"{what}: {key}"
    for key in ("scheme", "heatmap_scaling"):
        assert page["colour"][key] == python["colour"][key], f"{what}: colour {key}"
    for key in ("range", "heatmap_range"):
        assert page["colour"][key] == pytest.approx(python["colour"][key], abs=scale), f"{what}: colour {key}"
    assert page["precision"] == {**python["precision"], "computed_from": "page"}, f"{what}: precision"


# ---- Without a browser. ----

def test_the_payload_holds_the_results_own_arrays(result):
    view = result.view()
    payload = view.payload
    (panel,) = payload["panels"]
    captured = result.model.captured_layers
    assert view.layers == captured == [layer["layer"] for layer in panel["layers"]]
    assert panel["text"] == TEXT and panel["offsets"] == [list(o) for o in result.offsets]
    assert panel["tokens"] == result.token_labels and panel["ids"] == result.ids
    for layer in panel["layers"]:
        number = layer["layer"]
        assert np.array_equal(layer["queries"], result.queries(number, rope=False))  # before RoPE: see "rope"
        assert np.array_equal(layer["keys"], result.keys(number, rope=False))
        assert np.array_equal(layer["ap_tokens"], result.ap_tokens(number))
        assert np.array_equal(layer["ape_tokens"], result.ape_tokens(number), equal_nan=True)
        entry = result.model.manifest["layers"][captured.index(number)]
        assert layer["scaling"] == entry["scaling"] and layer["causal"] is True
    assert panel["stats"]["ap"] == pytest.approx(result.ap()) and panel["stats"]["layer"] == captured[-1]
    # A short text fits as float32: the page holds the Result's float32 arrays exactly.
    data = embedded_data(view.html())
    for layer, original in zip(data["panels"][0]["layers"], panel["layers"]):
        assert layer["queries"]["dtype"] == "float32" and layer["queries"]["max_error"] == 0.0
        assert np.array_equal(html_view.decode_array(layer["keys"]), original["keys"])


@pytest.mark.parametrize("state", [
    {}, {"kind": "attention", "layer": 0, "head": 1, "selection": [17, 3]},
    {"layer": "mean", "head": 2, "measure": "ape"}, {"kind": "attention", "layer": "mean", "selection": [5]},
    {"layer": -2, "head": 7, "selection": [0]},
], ids=["default", "attention-0-1", "mean-of-layers-head-2", "attention-mean", "layer-4-head-7"])
def test_export_is_what_the_result_says(result, state):
    """View.export() against the Result's own methods for each choice of layer, head, kind and selection."""
    record = result.view(**state).export()
    captured = result.model.captured_layers
    layer = state.get("layer", -1)
    layers = captured if layer == "mean" else [captured[layer] if layer < 0 else layer]
    head = state.get("head", "mean")
    heads = None if head == "mean" else [head]
    selection = sorted(state.get("selection", []))
    proximity = result.average_proximity(layers, heads)
    if state.get("kind") == "attention":
        matrix = result.average_attention(layers, heads)
    else:
        matrix = proximity
    assert record["layer"] == (layer if layer == "mean" else layers[0]) and record["head"] == head
    assert record["layers"] == captured and record["omitted_layers"] == [] and record["heads"] == 8
    assert record["selection"] == selection and record["text"] == TEXT
    assert record["char_spans"] == [list(o) for o in result.offsets] and record["model"]
    np.testing.assert_allclose(record["matrix"], matrix, rtol=1e-5, atol=1e-5)
    n = len(result)
    ap_tokens = (proximity.sum(1) - np.diag(proximity)) / (n - 1)
    np.testing.assert_allclose(record["ap_tokens"], ap_tokens, rtol=1e-5, atol=1e-5)
    ape = attnprox.metrics.ape(proximity=proximity)
    np.testing.assert_allclose(record["ape_tokens"], ape.tokens, rtol=1e-5)
    assert record["ap"] == pytest.approx(ap_tokens.mean(), rel=1e-5)
    assert record["ape"] == pytest.approx(float(ape), rel=1e-5)
    if selection:
        np.testing.assert_allclose(record["subset_proximity"], proximity[selection].mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(record["values"], record["subset_proximity"])
    else:
        assert record["subset_proximity"] is None
        assert record["values"] == (record["ape_tokens"] if state.get("measure") == "ape" else record["ap_tokens"])
    unselected = [v for j, v in enumerate(record["values"]) if j not in selection]
    assert record["colour"]["range"] == pytest.approx([min(unselected), max(unselected)])
    assert record["colour"]["heatmap_range"] == pytest.approx([float(np.min(matrix)), float(np.max(matrix))])
    assert record["colour"]["heatmap_scaling"] == ("log" if state.get("kind") == "attention" else "linear")


def test_save_json_and_the_layers_a_page_holds(result, tmp_path):
    view = result.view(layers=[1, 3], layer=3)
    assert view.layers == [1, 3]
    path = view.save_json(str(tmp_path / "view.json"))
    saved = json.loads(Path(path).read_text(encoding="utf-8"))
    assert saved["layers"] == [1, 3] and saved["layer"] == 3 and saved["text"] == TEXT
    mean = result.view(layers=[1, 3], layer="mean").export()
    np.testing.assert_allclose(mean["matrix"], result.average_proximity([1, 3]), rtol=1e-5, atol=1e-5)
    # Past the size limit the page keeps the layer it opens on, then the others from the last one down.
    small = result.view(layer=2, max_bytes=html_view.fixed_bytes({"panels": [view.payload["panels"][0]]}) + 150_000)
    assert 2 in small.layers and len(small.layers) < 6 and small.export()["omitted_layers"]
    page = small.html()
    assert len(page) <= html_view.fixed_bytes({"panels": [view.payload["panels"][0]]}) + 150_000
    assert "float16" in page


@pytest.mark.parametrize("options, error, message", [
    ({"layer": 9}, attnprox.OutOfRangeError, "layer 9 requested"),
    ({"head": 8}, attnprox.OutOfRangeError, "head 8 requested, the model has 8 heads"),
    ({"selection": [3, 99]}, attnprox.OutOfRangeError, "token 99 in the selection"),
    ({"kind": "heat"}, attnprox.InvalidArgumentError, "kind must be one of proximity, attention"),
    ({"measure": "apx"}, attnprox.InvalidArgumentError, "measure must be one of ap, ape"),
    ({"scheme": "jet"}, attnprox.InvalidArgumentError, "scheme must be one of viridis, blue-white-red"),
    ({"scaling": "cubic"}, attnprox.InvalidArgumentError, "scaling must be one of"),
    ({"layer": "middle"}, attnprox.InvalidArgumentError, "layer must be a layer number or \"mean\""),
    ({"layers": [1], "layer": 3}, attnprox.InvalidArgumentError, "layer 3 is not among the layers"),
    ({"layers": []}, attnprox.InvalidArgumentError, "layers is empty"),
    ({"selection": "3"}, attnprox.InvalidArgumentError, "selection must be token positions"),
])
def test_bad_view_options_are_clear_errors(result, options, error, message):
    with pytest.raises(error, match=re.escape(message)):
        result.view(**options)


def test_compare_is_exported(model, result):
    other = model.run(text=OTHER)
    both = attnprox.compare(result, other, selections=([17], []))
    record = both.export()
    assert record["format"] == "attnprox-compare" and len(record["panels"]) == 2
    a, b = record["panels"]
    assert a["text"] == TEXT and b["text"] == OTHER and a["selection"] == [17]
    # One colour range for both texts: over the values of both, less the selected tokens.
    values = [v for j, v in enumerate(a["values"]) if j != 17] + b["values"]
    assert a["colour"]["range"] == b["colour"]["range"] == pytest.approx([min(values), max(values)])
    both_matrices = np.concatenate([np.ravel(a["matrix"]), np.ravel(b["matrix"])])
    assert a["colour"]["heatmap_range"] == pytest.approx([both_matrices.min(), both_matrices.max()])
    page = both.html()
    assert len(embedded_data(page)["panels"]) == 2 and "apx-view" in both._repr_html_()
    with pytest.raises(attnprox.InvalidArgumentError, match="two selections"):
        attnprox.compare(result, other, selections=([1],))


# ---- In headless Chromium. ----

def test_view_of_the_default_model_in_chromium(result, tmp_path):
    """The text as written; words; layer, head and kind selectors; arcs and head view; AP_i/iAPE_i; undo; the
    downloaded exports against View.export() for the same states."""
    out = browser.artefacts("html-view-default-model", tmp_path)
    page = out / "view.html"
    result.view().save(str(page))
    last = result.model.captured_layers[-1]
    steps = [
        {"name": "initial", "do": "look"}, {"name": "shot initial", "do": "screenshot", "file": "01-initial.png"},
        {"name": "word Emily", "do": "dblclick", "token": 12},
        {"name": "word it's", "do": "dblclick", "token": 29},
        {"name": "word cafe", "do": "dblclick", "token": 37},
        {"name": "word comma", "do": "dblclick", "token": 18},
        {"name": "word steep", "do": "dblclick", "token": 7},
        {"name": "shot word", "do": "screenshot", "file": "02-double-click.png"},
        {"name": "click Paris", "do": "click", "token": 17},
        {"name": "attention", "do": "choose", "testid": "kind", "value": "attention"},
        {"name": "layer 0", "do": "choose", "testid": "layer", "value": "0"},
        {"name": "head 1", "do": "choose", "testid": "head", "value": "1"},
        {"name": "shot attention", "do": "screenshot", "file": "03-attention-layer0-head1.png"},
        {"name": "export attention", "do": "export", "file": "attention-0-1.json"},
        {"name": "proximity", "do": "choose", "testid": "kind", "value": "proximity"},
        {"name": "mean of layers", "do": "choose", "testid": "layer", "value": "mean"},
        {"name": "head 3", "do": "choose", "testid": "head", "value": "3"},
        {"name": "export mean", "do": "export", "file": "proximity-mean-3.json"},
        {"name": "back to the last layer", "do": "choose", "testid": "layer",
         "value": str(len(result.model.captured_layers) - 1)},
        {"name": "heads mean", "do": "choose", "testid": "head", "value": "mean"},
        {"name": "clear", "do": "activate", "testid": "clear-selection"},
        {"name": "ape", "do": "choose", "testid": "measure", "value": "ape"},
        {"name": "shot ape", "do": "screenshot", "file": "04-ape.png"},
        {"name": "undo clear", "do": "press", "key": "Control+z"},
        {"name": "export last", "do": "export", "file": "last.json"},
    ]
    record = browser.run(page, steps, out)
    n = len(result)
    a = result.proximity()
    tolerance = 1e-5 * np.abs(a).max()

    # The text as written: its characters in order (the chips left out, the line-break glyphs taken out), every
    # token on one line but those holding a line break, the line after a break starting at the left edge.
    facts = record["page"]["panels"][0]
    assert facts["written"].replace("\u21b5", "") == TEXT
    assert facts["foreign"] == []
    chips, cursor = [], 0  # tokens with no characters of their own: specials, and the rest of a split character
    for j, (start, end) in enumerate(result.offsets):
        if end > max(start, cursor):
            cursor = end
        else:
            chips.append(j)
    assert facts["chips"] == chips == [0, 33, 34, 35, 39]
    for j, rect in enumerate(facts["rects"]):
        piece = TEXT[result.offsets[j][0]:result.offsets[j][1]]
        assert rect["count"] == 1 or "\n" in piece, f"token {j} {piece!r} is split over {rect['count']} lines"
        previous = TEXT[:result.offsets[j][0]]
        if j not in chips and previous.endswith("\n"):
            assert rect["left"] == pytest.approx(facts["flow_padding_left"], abs=1.0), f"token {j} after a break"
    assert facts["rects"][11]["top"] > facts["rects"][9]["top"]  # "Emily" on the line after "steep."

    words = {"word Emily": [11, 12, 13], "word it's": [28, 29], "word cafe": [36, 37, 38, 39], "word comma": [18],
             "word steep": [7, 8]}
    for step, word in words.items():
        assert browser.panel(record, step)["selection"] == word, step

    # A click: AP^(S) of the page against the Result's subset proximity, the arcs and the head view against its
    # attention (the last layer, mean of the heads).
    clicked = browser.panel(record, "click Paris")
    browser.assert_close(browser.values(clicked), result.subset_proximity([17]), tolerance, "AP^(S), S = {17}")
    arcs = [(arc["key"], arc["weight"]) for arc in clicked["arcs"]]
    expected = result.top_arcs(17, 5)
    assert [k for k, _ in arcs] == [k for k, _ in expected]
    browser.assert_close([w for _, w in arcs], [w for _, w in expected], 1e-5, "arcs of 17")
    row = result.attention().mean(0)[17]
    assert clicked["head_view"]["query"] == "17" and clicked["head_view"]["lines"] == int((row > 0).sum()) == 18
    assert clicked["head_view"]["max_weight"] == pytest.approx(row.max(), rel=1e-5)
    initial = browser.panel(record, "initial")
    browser.assert_close(browser.values(initial), result.ap_tokens(), 0, "AP_i (the Result's own)")
    # Without a focus, every query's lines to the keys it gives weight (a causal model: no key after the query).
    assert initial["head_view"]["lines"] == int((result.attention().mean(0) > 0).sum()) <= n * (n + 1) // 2
    assert initial["heatmap"]["layer"] == str(last) and initial["heatmap"]["kind"] == "proximity"

    # The selectors: the heatmap and head view follow; the text keeps the proximity values of the choice.
    head1 = browser.panel(record, "head 1")
    assert (head1["heatmap"]["kind"], head1["heatmap"]["layer"], head1["heatmap"]["head"]) == ("attention", "0", "1")
    row = result.attention(0, head=1)[17]
    assert head1["head_view"]["max_weight"] == pytest.approx(row.max(), rel=1e-5)
    browser.assert_close(browser.values(head1), result.average_proximity([0], [1])[17], tolerance, "AP^(S), L0 H1")
    for file, state in (("attention-0-1.json", {"kind": "attention", "layer": 0, "head": 1}),
                        ("proximity-mean-3.json", {"layer": "mean", "head": 3})):
        exported = json.loads((out / file).read_text(encoding="utf-8"))
        python = result.view(selection=[17], **state).export()
        assert_same_record(exported, python, 1e-5, file)

    ape = browser.panel(record, "ape")
    browser.assert_close(browser.values(ape), result.ape_tokens(), 0, "iAPE_i (the Result's own)")
    assert browser.panel(record, "undo clear")["selection"] == [17]
    exported = json.loads((out / "last.json").read_text(encoding="utf-8"))
    assert_same_record(exported, result.view(selection=[17], measure="ape").export(), 1e-5, "last.json")


def test_compare_in_chromium(model, result, tmp_path):
    """Two texts side by side: one colour range over both, each panel its own selection and undo (ctrl+Z undoes
    the panel changed last), the export against Compare.export()."""
    other = model.run(text=OTHER)
    out = browser.artefacts("html-view-compare", tmp_path)
    page = out / "compare.html"
    attnprox.compare(result, other).save(str(page))
    steps = [
        {"name": "initial", "do": "look"}, {"name": "shot initial", "do": "screenshot", "file": "01-compare.png"},
        {"name": "click a 2", "do": "click", "panel": 0, "token": 2},
        {"name": "click b 4", "do": "click", "panel": 1, "token": 4},
        {"name": "shot clicks", "do": "screenshot", "file": "02-compare-clicks.png"},
        {"name": "undo b", "do": "press", "key": "Control+z"},
        {"name": "export", "do": "export", "file": "compare.json"},
        {"name": "drag", "do": "drag", "scale": "scale", "to": 0.6},
        {"name": "click b 1", "do": "click", "panel": 1, "token": 1},
    ]
    record = browser.run(page, steps, out)
    state = record["by_name"]["initial"]["state"]
    assert len(state["panels"]) == 2
    values = np.concatenate([result.ap_tokens(), other.ap_tokens()])
    assert (state["scale"]["min"], state["scale"]["max"]) == pytest.approx(browser.fitted(values), abs=1e-12)
    for k, r in enumerate((result, other)):
        browser.assert_close(browser.values(state["panels"][k]), r.ap_tokens(), 0, f"panel {k}: AP_i")
        counts = np.zeros(browser.BINS, int)
        for v in r.ap_tokens():
            counts[browser.bin_of(v, state["scale"]["min"], state["scale"]["max"])] += 1
        assert state["panels"][k]["histogram"]["counts"] == counts.tolist()
    clicked = record["by_name"]["click a 2"]["state"]
    subset = result.subset_proximity([2])
    shared = np.concatenate([np.delete(subset, 2), other.ap_tokens()])
    assert (clicked["scale"]["min"], clicked["scale"]["max"]) == pytest.approx(browser.fitted(shared), rel=1e-5)
    selections = lambda step: [browser.panel(record, step, k)["selection"] for k in range(2)]  # noqa: E731
    assert selections("click b 4") == [[2], [4]]
    assert selections("undo b") == [[2], []]
    exported = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    python = attnprox.compare(result, other, selections=([2], [])).export()
    assert exported["format"] == python["format"] == "attnprox-compare" and len(exported["panels"]) == 2
    for k in range(2):
        assert_same_record(exported["panels"][k], python["panels"][k], 1e-5, f"compare panel {k}")
    # A range set by hand holds for both texts and across selections.
    dragged = record["by_name"]["drag"]["state"]["scale"]
    later = record["by_name"]["click b 1"]["state"]["scale"]
    assert later == {**dragged, "clamped": later["clamped"]}


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(BUILD / "python"))
    return subprocess.run([sys.executable, "-m", "attnprox", *args], capture_output=True, text=True, env=env)


def test_command_line_compares_two_texts(tmp_path):
    page = tmp_path / "compare.html"
    done = run_cli("heatmap", "--text", TEXT, "--text", OTHER, "--out", str(page))
    assert done.returncode == 0, done.stderr
    assert "two texts compared" in done.stdout
    data = embedded_data(page.read_text(encoding="ascii"))
    assert [p["text"] for p in data["panels"]] == [TEXT, OTHER]
    three = run_cli("heatmap", "--text", "a b", "--text", "c d", "--ids", "5,6", "--out", str(tmp_path / "x.html"))
    assert three.returncode == 2 and "compares two: 3 were given" in three.stderr
    picture = run_cli("heatmap", "--text", "a b", "--text", "c d", "--out", str(tmp_path / "x.png"))
    assert picture.returncode == 2
    assert "a picture shows one text" in picture.stderr and "in an .html page" in picture.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.html").exists()


@pytest.fixture(scope="module")
def bert_with_pairs(tmp_path_factory):
    """A BERT-shaped fixture model (bidirectional) with a word-level tokenizer that has BERT's pair template."""
    sys.path.insert(0, str(ROOT / "tests" / "tools"))
    import make_test_models

    out = tmp_path_factory.mktemp("bert-pairs") / "bert.apx"
    make_test_models.export_with_tokenizer("bert", str(out), template=True)
    return attnprox.load(str(out))


def test_pairs_ids_and_one_token_in_chromium(bert_with_pairs, model, tmp_path):
    """A sentence pair shows its two texts on two lines (each token over its own characters), ids alone show their
    labels joined, and a one-token text (no AP: it needs two) still builds; a bidirectional model's head view joins
    the focus to every key."""
    pair = bert_with_pairs.run(text="emily wanted to visit paris", text_pair="she took french lessons .")
    view = pair.view()
    (panel,) = view.payload["panels"]
    assert panel["text"] == "emily wanted to visit paris\nshe took french lessons ."
    for j, (start, end) in enumerate(panel["offsets"]):
        if end > start:
            assert panel["text"][start:end] == pair.token_texts[j]
    ids = model.run(ids=[464, 3290, 318, 257])
    single = model.run(ids=[464])
    pages = {"pair": view, "ids": ids.view(), "single": single.view()}
    for name, page_view in pages.items():
        out = browser.artefacts(f"html-view-{name}", tmp_path)
        page = out / "view.html"
        page_view.save(str(page))
        record = browser.run(page, [{"name": "initial", "do": "look"}, {"name": "click 0", "do": "click", "token": 0},
                                    {"name": "shot", "do": "screenshot", "file": f"{name}.png"}], out)
        written = record["page"]["panels"][0]["written"].replace("\u21b5", "")
        if name == "pair":
            assert written == panel["text"] and record["page"]["panels"][0]["chips"] == [0, 6, 12]
            clicked = browser.panel(record, "click 0")
            assert clicked["head_view"]["lines"] == int((pair.attention().mean(0)[0] > 0).sum()) == len(pair)
        elif name == "ids":
            assert written == "".join(ids.token_labels) and page_view.export()["text_from_tokens"]
        else:
            assert browser.panel(record, "click 0")["selection"] == [0]
            assert browser.panel(record, "initial")["pills"]["ap"] is None  # NaN: AP needs two tokens
