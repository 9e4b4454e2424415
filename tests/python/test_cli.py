"""The `attnprox` command line: score streams its rows in input order, reads long texts by truncation or windows,
and says clearly what went wrong with one input while scoring the others."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import attnprox
from attnprox import cli
from conftest import BUILD, data_path

PROMPTS = [line.strip() for line in open(data_path("prompts.txt"), encoding="utf-8") if line.strip()]


def run_cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    return subprocess.run([sys.executable, "-m", "attnprox", *args], capture_output=True, text=True, env=env,
                          input=stdin)


def adv_text(name="Amazon-adv.txt"):
    with open(data_path("onestopenglish", "Adv-Txt", name), encoding="utf-8-sig") as f:
        return f.read()


def test_rows_come_out_in_input_order_as_soon_as_the_earlier_ones_are_done():
    out = []
    printer = cli.InOrder(lambda index, row: out.append((index, row)))
    printer.add(2, "c")
    assert out == []
    printer.add(0, "a")
    assert out == [(0, "a")]
    printer.add(1, "b")
    assert out == [(0, "a"), (1, "b"), (2, "c")]


def test_score_prints_each_row_before_running_the_next_inputs(text_models, monkeypatch, capsys):
    """Every row is on stdout before the stream is asked for the next result."""
    printed_at_resume = []
    original = attnprox.Model.stream

    def watched(self, *args, **kwargs):
        seen = 0
        for index, result in original(self, *args, **kwargs):
            yield index, result
            seen += 1
            printed_at_resume.append((seen, capsys.readouterr().out))
    monkeypatch.setattr(attnprox.Model, "stream", watched)
    args = ["score", text_models["gpt2"], "--token-budget", "16"]
    for prompt in PROMPTS:
        args += ["--text", prompt]
    assert cli.main(args) == 0
    assert len(printed_at_resume) == len(PROMPTS)
    text = "".join(out for _, out in printed_at_resume)
    assert text.count("\n") == len(PROMPTS) + 1  # the header and one row per prompt
    # the first result's row was out when the stream resumed for the second
    assert printed_at_resume[0][1].count("\n") >= 1


def test_score_json_is_a_list_in_input_order(text_models, tmp_path):
    model = attnprox.load(text_models["gpt2"])
    story = tmp_path / "story.txt"
    story.write_text("Tell me a very simple short story.", encoding="utf-8")
    args = ["score", text_models["gpt2"], "--json", "--token-budget", "20", "--ids", "464,3290", "--file",
            str(story)]
    for prompt in PROMPTS[:5]:
        args += ["--text", prompt]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["input"] for r in rows] == [{"ids": 0}, {"file": str(story)}] + [{"text": k} for k in range(5)]
    want = [model.run(ids=[464, 3290]), model.run(text=story.read_text())] + [model.run(text=p) for p in PROMPTS[:5]]
    for row, result in zip(rows, want):
        assert row["n"] == len(result) and row["ap"] == pytest.approx(result.ap(), abs=1e-6)
    one = json.loads(run_cli("score", text_models["gpt2"], "--json", "--text", PROMPTS[0]).stdout)
    assert isinstance(one, list) and len(one) == 1


def test_score_reads_long_texts_by_truncation_or_windows(text_models, tmp_path):
    essay = tmp_path / "essay.txt"
    essay.write_text(adv_text(), encoding="utf-8")
    model = attnprox.load(text_models["bert"])
    too_long = run_cli("score", text_models["bert"], "--file", str(essay))
    assert too_long.returncode == 1 and "the model has 64 positions" in too_long.stderr
    cut = json.loads(run_cli("score", text_models["bert"], "--file", str(essay), "--truncate", "--json").stdout)[0]
    want = model.run(text=essay.read_text(encoding="utf-8"), truncation=True)
    assert cut["n"] == 64 and cut["ap"] == pytest.approx(want.ap(), abs=1e-6)
    short = json.loads(run_cli("score", text_models["bert"], "--file", str(essay), "--truncate", "--max-length",
                               "12", "--json").stdout)[0]
    assert short["n"] == 12
    windowed = run_cli("score", text_models["bert"], "--file", str(essay), "--windows", "--window", "32",
                       "--stride", "10", "--json", "--tokens")
    assert windowed.returncode == 0, windowed.stderr
    row = json.loads(windowed.stdout)[0]
    w = model.run_windows(text=essay.read_text(encoding="utf-8"), window=32, stride=10)
    assert row["n"] == w.n and row["windows"] == len(w.windows)
    assert row["ap"] == pytest.approx(w.ap(), abs=1e-6)
    np.testing.assert_allclose(row["ap_tokens"], w.ap_tokens(), atol=1e-6)
    for bad, message in ((["--max-length", "5"], "--max-length needs --truncate"),
                         (["--stride", "5"], "--window and --stride need --windows"),
                         (["--windows", "--truncate"], "choose one")):
        done = run_cli("score", text_models["bert"], "--file", str(essay), *bad)
        assert done.returncode == 2 and message in done.stderr, done.stderr
