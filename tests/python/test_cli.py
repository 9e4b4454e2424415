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


def test_score_layers_with_truncation_windows_and_micro_batches(text_models, tmp_path):
    """--layers and --layer beside --truncate, --windows and --token-budget; without --layers only the measured layer
    is kept."""
    essay = tmp_path / "essay.txt"
    essay.write_text(adv_text(), encoding="utf-8")
    text = essay.read_text(encoding="utf-8")
    model = attnprox.load(text_models["bert"])
    for layers in ([], ["--layers", "all"], ["--layers", "0"]):
        cut = run_cli("score", "-m", text_models["bert"], "--file", str(essay), "--truncate", "--max-length", "20",
                      "--layer", "0", "--json", *layers)
        assert cut.returncode == 0, cut.stderr
        want = model.run(text=text, truncation=True, max_length=20)
        assert json.loads(cut.stdout)[0]["ap"] == pytest.approx(want.ap(0), abs=1e-6)
    windowed = run_cli("score", text_models["bert"], "--file", str(essay), "--windows", "--window", "32",
                       "--layers", "0,1", "--layer", "0", "--json")
    assert windowed.returncode == 0, windowed.stderr
    assert json.loads(windowed.stdout)[0]["ap"] == pytest.approx(model.run_windows(text=text, window=32).ap(0),
                                                                 abs=1e-6)
    args = ["score", text_models["bert"], "--token-budget", "16", "--layers", "last", "--json"]
    for prompt in PROMPTS[:4]:
        args += ["--text", prompt]
    listed = run_cli(*args)
    assert listed.returncode == 0, listed.stderr
    assert [row["ap"] for row in json.loads(listed.stdout)] == pytest.approx(
        [model.run(text=p).ap() for p in PROMPTS[:4]], abs=1e-6)
    outside = run_cli("score", text_models["bert"], "--text", PROMPTS[0], "--layers", "0", "--layer", "1")
    assert outside.returncode == 1 and "layer 1 was not kept" in outside.stderr, outside.stderr
    bad = run_cli("score", text_models["bert"], "--text", PROMPTS[0], "--layers", "first")
    assert bad.returncode == 2 and "expected all, last or comma-separated layer numbers" in bad.stderr


def test_one_token_inputs_are_n_a_and_the_others_are_scored(text_models):
    """AP is undefined for N = 1: the row says n/a (null in JSON) and the rows after it are scored."""
    model = attnprox.load(text_models["gpt2"])
    table = run_cli("score", text_models["gpt2"], "--text", "Hello", "--text", PROMPTS[0], "--tokens")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    one = next(line for line in lines if line.rstrip().endswith("Hello"))
    assert one.split()[:4] == ["1", "n/a", "n/a", "n/a"]
    assert any(line.rstrip().endswith(PROMPTS[0][:40]) or PROMPTS[0][:40] in line for line in lines)
    rows = json.loads(run_cli("score", text_models["gpt2"], "--text", "Hello", "--text", PROMPTS[0], "--json",
                              "--tokens").stdout)
    assert rows[0]["n"] == 1 and rows[0]["ap"] is None and rows[0]["ape"] is None and rows[0]["ap_tokens"] == [None]
    assert rows[1]["ap"] == pytest.approx(model.run(text=PROMPTS[0]).ap(), abs=1e-6)


def test_a_failing_input_is_reported_after_the_others(text_models, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    done = run_cli("score", text_models["gpt2"], "--text", PROMPTS[0], "--file", str(empty), "--text", PROMPTS[1],
                   "--json")
    assert done.returncode == 1
    rows = json.loads(done.stdout)
    assert rows[1] == {"input": {"file": str(empty)}, "error": "the text gives no tokens: there is nothing to run"}
    assert rows[0]["n"] > 1 and rows[2]["n"] > 1
    assert f"{empty}: the text gives no tokens" in done.stderr


def test_token_index_standard_input_and_lines(text_models, tmp_path):
    model = attnprox.load(text_models["gpt2"])
    table = run_cli("score", text_models["gpt2"], "--text", "The sky is blue", "--tokens")
    token_lines = [line.split() for line in table.stdout.splitlines() if "AP_i" in line]
    assert [int(parts[0]) for parts in token_lines] == list(range(len(model.run(text="The sky is blue"))))
    assert token_lines[2][1] == "is"
    piped = run_cli("score", text_models["gpt2"], "--file", "-", "--json", stdin="\ufeffThe sky is blue")
    (row,) = json.loads(piped.stdout)
    assert row["input"] == {"file": "-"} and row["n"] == len(model.run(text="The sky is blue"))
    lines = tmp_path / "lines.txt"
    lines.write_text("The sky is blue\n\n   \nwrite a story about ai\n", encoding="utf-8")
    rows = json.loads(run_cli("score", text_models["gpt2"], "--file", str(lines), "--lines", "--json").stdout)
    assert [r["input"] for r in rows] == [{"file": str(lines), "line": 1}, {"file": str(lines), "line": 4}]
    assert rows[1]["ap"] == pytest.approx(model.run(text="write a story about ai").ap(), abs=1e-6)
    both = run_cli("score", text_models["gpt2"], "--file", "-", "--lines", "--json", stdin="one text\nanother\n")
    assert [r["input"] for r in json.loads(both.stdout)] == [{"file": "-", "line": 1}, {"file": "-", "line": 2}]
    nothing = run_cli("score", text_models["gpt2"], "--file", "-", "--lines", stdin="\n\n")
    assert nothing.returncode == 2 and "--lines found no text" in nothing.stderr
    helped = run_cli("score", "--help")
    assert '{"input": {"text": K} | {"file": PATH}' in helped.stdout and '"error"' in helped.stdout


def test_layers_that_are_not_layers_are_a_usage_error(tmp_path):
    from conftest import FIXTURES

    done = run_cli("export-reference", os.path.join(FIXTURES, "gpt2"), str(tmp_path / "m.apx"), "--layers", "x")
    assert done.returncode == 2 and "expected all, last or comma-separated layer numbers" in done.stderr
    assert not (tmp_path / "m.apx").exists()
    out_of_range = run_cli("export-reference", os.path.join(FIXTURES, "gpt2"), str(tmp_path / "m.apx"), "--layers",
                           "0,9")
    assert out_of_range.returncode == 1 and "layer 9 requested" in out_of_range.stderr
    hf = run_cli("export", str(tmp_path), str(tmp_path / "m.apx"), "--layers", "first")
    assert hf.returncode == 2 and "comma-separated layer numbers" in hf.stderr


def test_pictures_as_pdf(text_models, tmp_path):
    out = tmp_path / "head.pdf"
    done = run_cli("heatmap", text_models["gpt2"], "--text", PROMPTS[0], "--out", str(out), "--head", "1")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:5] == b"%PDF-"


def test_the_model_is_optional_or_named_by_an_option(text_models, exported, tmp_path):
    """Without a model, every command uses the default model (models/default, exported by the build)."""
    info = run_cli("info")
    assert info.returncode == 0 and "attnprox default model" in info.stdout and "qwen3" in info.stdout, info.stderr
    scored = run_cli("score", "--text", "The bank by the river was steep.", "--json")
    assert scored.returncode == 0, scored.stderr
    row = json.loads(scored.stdout)[0]
    default = attnprox.load()
    want = default.run(text="The bank by the river was steep.")
    assert row["n"] == len(want) and row["ap"] == pytest.approx(want.ap(), rel=1e-6)
    picture = run_cli("heatmap", "--text", "hello there", "--out", str(tmp_path / "x.png"))
    assert picture.returncode == 0 and (tmp_path / "x.png").exists(), picture.stderr
    named = run_cli("info", "-m", exported("bert"))
    assert named.returncode == 0 and "bidirectional" in named.stdout
    scored = run_cli("score", "--model", text_models["gpt2"], "--text", "hello world", "--json")
    assert scored.returncode == 0 and json.loads(scored.stdout)[0]["n"] == 2
    two = run_cli("info", exported("bert"), "-m", exported("gpt2"))
    assert two.returncode == 2 and "two models given" in two.stderr


def run_on_a_terminal(*args):
    """(exit status, stdout, what reached stderr) with stderr on a pseudo-terminal, as in an interactive shell."""
    import pty
    import select

    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"), COLUMNS="100")
    process = subprocess.Popen([sys.executable, "-m", "attnprox", *args], stdout=subprocess.PIPE, stderr=slave,
                               env=env)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    out = process.stdout.read().decode()
    process.wait()
    os.close(master)
    return process.returncode, out, seen.decode(errors="replace")


def test_progress_bar_on_a_terminal_only(text_models, tmp_path):
    args = ["score", text_models["gpt2"], "--json"]
    for prompt in PROMPTS[:6]:
        args += ["--text", prompt]
    status, out, err = run_on_a_terminal(*args)
    assert status == 0 and len(json.loads(out)) == 6
    assert "/6 [" in err and "text/s" in err  # tqdm's count of the texts and its unit
    status, out, err = run_on_a_terminal(*args, "--quiet")
    assert status == 0 and err == ""
    piped = run_cli(*args)
    assert piped.returncode == 0 and piped.stderr == ""
    from conftest import FIXTURES

    status, out, err = run_on_a_terminal("export-reference", os.path.join(FIXTURES, "gpt2"), str(tmp_path / "m.apx"))
    assert status == 0 and "/4 [" in err and "stage" in err
    status, out, err = run_on_a_terminal("export-reference", os.path.join(FIXTURES, "gpt2"), str(tmp_path / "m.apx"),
                                         "-q")
    assert status == 0 and err == ""


def test_export_reference_reports_its_stages(tmp_path):
    from attnprox.reference.export import STAGES
    from conftest import FIXTURES

    seen = []
    attnprox.export_reference(os.path.join(FIXTURES, "gpt2"), str(tmp_path / "m.apx"), progress=seen.append)
    assert seen == list(STAGES)
