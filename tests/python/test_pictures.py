"""Pictures (attnprox.plots), the command line's heatmap, the examples, torch tensors and the notebook display."""
import os
import subprocess
import sys

import numpy as np
import pytest

import attnprox
from attnprox import plots
from conftest import BUILD, ROOT

TEXT = "emily wanted to visit paris , she took french lessons . the river was blue"


@pytest.fixture(scope="module")
def result(exported_text):
    return attnprox.load(exported_text).run(text=TEXT)


@pytest.fixture(scope="module")
def exported_text(tmp_path_factory):
    """A BERT-shaped fixture model with a word-level tokenizer (tests/tools/make_test_models.py)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
    import make_test_models

    out = tmp_path_factory.mktemp("text-model") / "bert-text.apx"
    make_test_models.export_with_tokenizer("bert", str(out), template=True)
    return str(out)


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_picture_draws_and_saves(result, tmp_path):
    figures = {
        "attention": plots.attention(result, layer=1, head=2),
        "mean": plots.attention(result),
        "average": plots.average_attention(result, layers=[0, 2], heads=[1, 3]),
        "heads": plots.heads(result, [0, 3], layer=-1),
        "panels": plots.head_panels(result, [(0, 1), (2, 3)]),
        "grid": plots.grid(result),
        "proximity": plots.proximity(result, subset=[4, 8]),
        "ap_text": plots.ap_text(result),
        "subset_text": plots.ap_text(result, subset=[4]),
    }
    for name, fig in figures.items():
        png = plots.save(fig, str(tmp_path / f"{name}.png"))
        assert is_png(png), name
    svg = plots.save(plots.grid(result), str(tmp_path / "grid.svg"))
    assert open(svg).read().lstrip().startswith("<?xml") and "<svg" in open(svg).read()
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        plots.save(plots.grid(result), str(tmp_path / "grid.jpg"))


def test_pictures_show_the_numbers_asked_for(result):
    fig = plots.attention(result, layer=1, head=2, vmin=0.0, vmax=0.5, cmap="magma")
    image = fig.axes[0].images[0]
    np.testing.assert_allclose(image.get_array(), result.attention(1, head=2))
    assert image.get_clim() == (0.0, 0.5) and image.get_cmap().name == "magma"
    grid = plots.grid(result)
    titles = [ax.get_title() for ax in grid.axes if ax.get_title()]
    assert "L0 H0" in titles and f"L2 H{result.model.num_heads - 1}" in titles  # BERT: every head its own key head
    assert not any("kv" in t for t in titles)
    proximity = plots.proximity(result, subset=[4, 8])
    assert len(proximity.axes[0].patches) == 2  # S outlined
    np.testing.assert_allclose(proximity.axes[0].images[0].get_array(), result.proximity())


def test_labels_thin_out_on_long_texts(exported_text):
    long_text = " ".join(["the river was blue"] * 7)  # 28 words + 2 special tokens
    result = attnprox.load(exported_text).run(text=long_text)
    fig = plots.attention(result, max_labels=10)
    ticks = fig.axes[0].get_xticks()
    assert 1 < len(ticks) <= 10 and len(result) == 30
    gqa_grid = plots.grid(result)
    assert all(ax.get_xticks().size == 0 for ax in gqa_grid.axes if ax.images)


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    return subprocess.run([sys.executable, "-m", "attnprox", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("what", [[], ["--head", "1"], ["--heads", "0,2"], ["--average"], ["--grid"],
                                  ["--proximity", "--subset", "1,2"], ["--ap-text"]])
def test_command_line_heatmaps(exported_text, tmp_path, what):
    out = tmp_path / "picture.png"
    done = run_cli("heatmap", exported_text, "--text", TEXT, "--out", str(out), *what)
    assert done.returncode == 0, done.stderr
    assert is_png(out)


def test_command_line_heatmap_errors_and_html(exported_text, tmp_path):
    bad = run_cli("heatmap", exported_text, "--text", TEXT, "--out", str(tmp_path / "x.jpg"))
    assert bad.returncode == 2 and ".png, .svg, .pdf or .html" in bad.stderr
    two = run_cli("heatmap", exported_text, "--text", TEXT, "--ids", "1,2", "--out", str(tmp_path / "x.png"))
    assert two.returncode == 2 and "one text" in two.stderr
    missing = run_cli("heatmap", str(tmp_path / "none.apx"), "--text", TEXT, "--out", str(tmp_path / "x.png"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    layer = run_cli("heatmap", exported_text, "--text", TEXT, "--layer", "9", "--out", str(tmp_path / "x.png"))
    assert layer.returncode == 1 and "layer 9" in layer.stderr
    helped = run_cli("heatmap", "--help")
    assert helped.returncode == 0 and "--grid" in helped.stdout
    page = tmp_path / "view.html"
    done = run_cli("heatmap", exported_text, "--text", TEXT, "--out", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert "<html" in html.lower() and "paris" in html


def test_score_reports_ape(exported_text):
    import json

    done = run_cli("score", exported_text, "--text", TEXT, "--policy", "softmax", "--tokens", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)  # one object per input, always in a list
    r = attnprox.load(exported_text).run(text=TEXT)
    ape = r.ape(policy="softmax")
    assert row["ape"] == pytest.approx(float(ape)) and row["ape_normalized"] == pytest.approx(ape.normalized)
    assert row["policy"] == "softmax" and len(row["ape_tokens"]) == len(r)
    table = run_cli("score", exported_text, "--text", TEXT)
    assert table.returncode == 0 and "APE/log(N-1)" in table.stdout


def test_torch_tensors_share_what_numpy_shows(exported_text):
    torch = pytest.importorskip("torch")
    model = attnprox.load(exported_text)
    r = model.run(text=TEXT)
    t = r.torch
    for name, args in [("attention", (-1,)), ("proximity", (0,)), ("ap_tokens", (-1,)), ("queries", (1,)),
                       ("keys", (1,)), ("average_attention", ()), ("average_proximity", ()),
                       ("subset_proximity", ([1, 3],)), ("attention_entropy", (-1,))]:
        tensor = getattr(t, name)(*args)
        assert isinstance(tensor, torch.Tensor), name
        np.testing.assert_allclose(tensor.numpy(), getattr(r, name)(*args), rtol=1e-6, atol=1e-7, err_msg=name)
    bf16 = attnprox.load(exported_text, dtype="bfloat16").run(text=TEXT)
    assert bf16.torch.queries().dtype == torch.bfloat16  # the model's own values, not widened
    assert bf16.queries(torch=True).dtype == torch.bfloat16
    # torch=True on every array method: the tensor result.torch.<method> gives, holding what NumPy shows.
    for name, args, kwargs in [("queries", (1,), {}), ("keys", (1,), {}), ("attention", (-1,), {"head": 2}),
                               ("attention", (0,), {"temperature": 2.0}), ("average_attention", (), {"layers": [0]}),
                               ("proximity", (0,), {}), ("ap_tokens", (-1,), {}), ("subset_proximity", ([1, 3],), {}),
                               ("ape_tokens", (-1,), {"policy": "clamp"}), ("average_proximity", (), {"heads": [1]}),
                               ("attention_entropy", (-1,), {"normalized": True})]:
        tensor = getattr(r, name)(*args, torch=True, **kwargs)
        assert isinstance(tensor, torch.Tensor), name
        np.testing.assert_allclose(tensor.numpy(), getattr(r, name)(*args, **kwargs), rtol=1e-6, atol=1e-7,
                                   err_msg=name, equal_nan=True)
        assert torch.equal(tensor, getattr(r.torch, name)(*args, **kwargs)) or name == "ape_tokens", name


def test_notebook_display(result):
    html = result._repr_html_()
    assert "AP</b>" in html and "paris" in html and "attnprox.Result" in html
    assert "&lt;attnprox.Result" in html  # escaped
    assert "attnprox.Model" in repr(result.model) and "tokens" in repr(result)


@pytest.mark.parametrize("example", ["averaged_attention", "linking_head", "grid", "proximity_subset",
                                     "stats_panel"])
def test_examples_run(example, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "examples"  # shared: the demo models are made once
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", f"{example}.py"), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    expected = {"averaged_attention": ["averaged_attention.png"],
                "linking_head": ["linking_head.png", "linking_heads_side_by_side.png"],
                "grid": ["grid.png", "grid.svg"], "proximity_subset": ["proximity_subset.png", "subset_text.png"],
                "stats_panel": ["stats_panel.html"]}[example]
    for name in expected:
        assert (out / name).exists(), name
    if example == "linking_head":
        r = attnprox.load().run(text="Emily always wanted to visit Paris so she took some French lessons")
        labels = [t.strip() for t in r.token_labels]
        layer, head, score = r.linking_heads(labels.index("Paris"), labels.index("French"))[0]
        assert f"layer {layer} head {head}: max(P[Paris, French], P[French, Paris]) = {score:.4f}" in done.stdout
    if example == "stats_panel":
        lines = [l for l in done.stdout.splitlines() if l.startswith("T=")]
        assert [l.split(":")[0] for l in lines] == ["T=0.5", "T=1.0", "T=2.0"], done.stdout
        entropies = [float(l.split("mean entropy ")[1].split()[0]) for l in lines]
        assert entropies[0] < entropies[1] < entropies[2]  # hotter is flatter


def test_view_of_a_real_result(result, tmp_path):
    """The view's payload holds the Result's own numbers, and the page built from it passes a browser run of
    tests/html (load, click, shift-click, ctrl-click, drag) in headless Chromium, its values checked against the
    Result's."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "html"))
    import browser

    view = result.view(temperature=1.0)
    p = view.payload
    (panel,) = p["panels"]
    n = len(result)
    assert panel["tokens"] == result.token_labels and panel["stats"]["tokens"] == n
    layer = panel["layers"][-1]
    # Before RoPE (what the proximity family measures), with the rotation the page applies for the attention.
    np.testing.assert_array_equal(layer["queries"], result.queries(rope=False))
    np.testing.assert_array_equal(layer["keys"], result.keys(rope=False))
    assert layer.get("rope") == result.model.manifest.get("rope")
    np.testing.assert_allclose(layer["ap_tokens"], result.ap_tokens(), atol=1e-6)
    assert panel["stats"]["ap"] == pytest.approx(result.ap()) and panel["stats"]["ape"] == pytest.approx(float(result.ape()))
    page = tmp_path / "view.html"
    view.save(str(page))
    text = page.read_text(encoding="ascii")  # the page is pure ASCII: the title's "·" is escaped
    assert "<html" in text and "bert" in text and "layer 2" in text

    out = browser.artefacts("html-view-real", tmp_path)
    steps = [{"name": "click 2", "do": "click", "token": 2},
             {"name": "shift-click 5", "do": "click", "token": 5, "modifiers": ["Shift"]},
             {"name": "ctrl-click 3", "do": "click", "token": 3, "modifiers": ["Control"]},
             {"name": "drag", "do": "drag", "scale": "scale", "to": 0.5},
             {"name": "shot", "do": "screenshot", "file": "05-drag.png"}]
    record = browser.run(page, steps, out)
    scale = 1e-5 * np.abs(result.proximity()).max()
    for step, selection, focus in (("click 2", [2], 2), ("shift-click 5", [2, 3, 4, 5], 5),
                                   ("ctrl-click 3", [2, 4, 5], 5), ("drag", [2, 4, 5], 5)):
        shown = browser.panel(record, step)
        assert shown["selection"] == selection
        browser.assert_close(browser.values(shown), result.subset_proximity(selection), scale, step)
        assert [a["key"] for a in shown["arcs"]] == [k for k, _ in result.top_arcs(focus, 5)]
    before, dragged = (record["by_name"][s]["state"]["scale"] for s in ("ctrl-click 3", "drag"))
    assert before["min"] < dragged["max"] < before["max"]


def test_subsets_outside_the_text_are_errors(result, exported_text, tmp_path):
    n = len(result)
    for draw in (plots.proximity, plots.ap_text):
        with pytest.raises(attnprox.OutOfRangeError, match=f"token {n} in the subset, the text has {n} tokens"):
            draw(result, subset=[1, n])
        with pytest.raises(attnprox.InvalidArgumentError, match="the subset is empty"):
            draw(result, subset=[])
    for what in ("--proximity", "--ap-text"):
        done = run_cli("heatmap", exported_text, "--text", TEXT, "--out", str(tmp_path / "x.png"), what, "--subset",
                       f"1,{n + 80}")
        assert done.returncode == 1 and f"token {n + 80} in the subset" in done.stderr, done.stderr
        assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("what", [[], ["--head", "1"], ["--heads", "0,2"], ["--average"], ["--grid"]])
def test_subset_where_it_is_not_drawn_is_refused(exported_text, tmp_path, what):
    done = run_cli("heatmap", exported_text, "--text", TEXT, "--out", str(tmp_path / "x.png"), "--subset", "1",
                   *what)
    assert done.returncode == 2 and "--subset is drawn by --proximity and --ap-text only" in done.stderr
    html = run_cli("heatmap", exported_text, "--text", TEXT, "--out", str(tmp_path / "x.html"), "--subset", "1")
    assert html.returncode == 2 and "click tokens" in html.stderr


def test_a_picture_of_two_texts_is_refused(exported_text, tmp_path):
    done = run_cli("heatmap", exported_text, "--text", TEXT, "--text", "the sky is blue", "--out",
                   str(tmp_path / "x.png"))
    assert done.returncode == 2 and "a picture shows one text" in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_grid_titles_name_the_shared_key_head(exported):
    model = attnprox.load(exported("llama"))  # H = 4 query heads over Hkv = 2 key heads
    titles = [ax.get_title() for ax in plots.grid(model.run(ids=[5, 6, 7, 8, 9])).axes if ax.get_title()]
    assert titles == [f"L{l} H{h} (kv {h // 2})" for l in model.captured_layers for h in range(4)]


def test_rope_pictures_draw_the_queries_and_keys_after_rope(tmp_path):
    # The default model has RoPE: the proximity pictures draw A before it by default, after it with rope=True.
    result = attnprox.load().run(text=TEXT)
    assert not np.allclose(result.proximity(rope=True), result.proximity())
    for rope in (False, True):
        figure = plots.proximity(result, rope=rope)
        np.testing.assert_allclose(np.asarray(figure.axes[0].images[0].get_array()), result.proximity(rope=rope))
        assert ("after RoPE" in figure.axes[0].get_title()) == rope
    done = run_cli("heatmap", "--text", TEXT, "--out", str(tmp_path / "x.png"), "--ap-text", "--rope")
    assert done.returncode == 0, done.stderr
    assert is_png(tmp_path / "x.png")
    for what in (["--head", "1"], ["--average"]):
        refused = run_cli("heatmap", "--text", TEXT, "--out", str(tmp_path / "y.png"), "--rope", *what)
        assert refused.returncode == 2 and "--rope applies to --proximity and --ap-text" in refused.stderr
    assert not (tmp_path / "y.png").exists()
