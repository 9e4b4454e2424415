"""Corpus studies end to end on small corpora built here: the input forms and their quality control (a missing
triplet member, an empty file, byte-order marks, text that does not tokenize), the SQLite store (resume, a run
killed with kill -9 and restarted ends with the uninterrupted run's table, a changed configuration refused unless
a new run is asked for), the values against runs of the same texts one by one, the Dask path against the
in-process path, and the command line."""
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

import attnprox
from attnprox import studies
from attnprox.reference.random_model import write_random_model
from attnprox.reference.tokenizer_files import write_tokenizer_json
from conftest import BUILD, data_path

BOM = "\ufeff"
LEVELS = (("Ele-Txt", "ele"), ("Int-Txt/Int-Txt", "int"), ("Adv-Txt", "adv"))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A 2-layer GPT-2-shaped random model (2,048 positions) with the real GPT-2 tokenizer."""
    out = tmp_path_factory.mktemp("study-model")
    hf = write_random_model({"model_type": "gpt2", "vocab_size": 50257, "n_positions": 2048, "n_embd": 16,
                             "n_layer": 2, "n_head": 2}, str(out / "gpt2"), seed=3, std=0.2)
    write_tokenizer_json("gpt2", data_path("tokenizers", "gpt2"), hf)
    path = str(out / "gpt2.apx")
    attnprox.export_reference(hf, path)
    return path


def real_texts(count, chars=600):
    """(name, {level: text}) of the first `count` OneStopEnglish articles, each cut to about `chars` characters
    at a word boundary, without their byte-order marks."""
    root = data_path("onestopenglish")
    names = sorted(f[:-len("-ele.txt")] for f in os.listdir(os.path.join(root, "Ele-Txt")) if f.endswith("-ele.txt"))
    out = []
    for name in names[:count]:
        texts = {}
        for folder, suffix in LEVELS:
            with open(os.path.join(root, folder, f"{name}-{suffix}.txt"), encoding="utf-8-sig") as f:
                text = f.read()
            texts[suffix] = text[:text.rfind(" ", 0, chars)] if len(text) > chars else text
        out.append((name, texts))
    return out


def write_onestopenglish(root, articles):
    """The corpus layout, every file UTF-8 with a byte-order mark like the real corpus, and the damaged top-level
    Int-Txt/*.txt copy beside the real one."""
    for folder, _ in LEVELS:
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for name, texts in articles:
        for folder, suffix in LEVELS:
            if suffix in texts:
                with open(os.path.join(root, folder, f"{name}-{suffix}.txt"), "w", encoding="utf-8") as f:
                    f.write(BOM + texts[suffix])
        with open(os.path.join(root, "Int-Txt", f"{name}-int.txt"), "w", encoding="utf-8") as f:
            f.write("Intermediate\nDAMAGED COPY " + texts.get("int", ""))
    return str(root)


# ---------------------------------------------------------------------------------------------------------------
# Input forms and quality control


def test_onestopenglish_preset_forms_triplets_and_reports_what_it_drops(tmp_path, model_path):
    articles = real_texts(5)
    del articles[1][1]["int"]                       # a triplet member missing
    articles[2][1]["adv"] = " \n "                  # an empty file (only whitespace after its BOM)
    root = write_onestopenglish(tmp_path / "ose", articles)
    with open(os.path.join(root, "Adv-Txt", "Extra-adv.txt"), "w") as f:   # a name at one level only
        f.write("A text with no other levels.")
    corpus = studies.onestopenglish(root)
    assert corpus.groups == ["Elementary", "Intermediate", "Advanced"]
    by_id = {i.id: i for i in corpus.items}
    first = articles[0][0]
    assert by_id[f"{first}-int"].text == articles[0][1]["int"]        # the Int-Txt/Int-Txt copy, BOM removed
    assert all(not i.text.startswith(BOM) and "DAMAGED" not in i.text for i in corpus.items)
    assert by_id[f"{first}-ele"].match == first and by_id[f"{first}-ele"].group == "Elementary"

    result = studies.study(corpus, model=model_path, out=str(tmp_path / "out"), workers=0, progress=False)
    left_out = {d.id: d.reason for d in result.quality}
    missing, empty = articles[1][0], articles[2][0]
    assert set(left_out) == {missing, empty, "Extra"}
    assert left_out[missing] == f"{missing}-int: missing: Int-Txt/Int-Txt/{missing}-int.txt"
    assert "empty" in left_out[empty] and f"{empty}-adv" in left_out[empty]
    assert left_out["Extra"] == ("Extra-ele: missing: Ele-Txt/Extra-ele.txt; "
                                 "Extra-int: missing: Int-Txt/Int-Txt/Extra-int.txt")
    compared = {r["match"] for r in result.rows}
    assert compared == {articles[k][0] for k in (0, 3, 4)}
    assert all(s.n == 3 for s in result.comparison("ap").summaries)
    report = open(result.files["report"], encoding="utf-8").read()
    for name in (missing, empty, "Extra"):
        assert f"| {name} |" in report
    # N is the model's own token count of the text without its BOM
    model = attnprox.load(model_path)
    row = next(r for r in result.rows if r["text_id"] == f"{first}-adv")
    assert row["n"] == len(model.run(text=articles[0][1]["adv"]).ids)


def test_folders_glob_and_tables_read_the_same_corpus(tmp_path):
    for group in ("easy", "hard"):
        os.makedirs(tmp_path / group)
        for name in ("a", "b"):
            (tmp_path / group / f"{name}.txt").write_text(BOM + f"{group} text {name}.", encoding="utf-8")
    (tmp_path / "hard" / "c.txt").write_bytes(b"caf\xe9 is not UTF-8")
    folders = studies.from_sources([f"E={tmp_path / 'easy'}", f"H={tmp_path / 'hard'}"])
    assert folders.groups == ["E", "H"]
    assert sorted((i.group, i.match, i.text) for i in folders.items) == [
        ("E", "a", "easy text a."), ("E", "b", "easy text b."), ("H", "a", "hard text a."), ("H", "b", "hard text b.")]
    assert [(d.id, d.reason.split(":")[0]) for d in folders.dropped] == [("H/c", "not UTF-8")]
    globbed = studies.from_sources([str(tmp_path / "*" / "*.txt")])
    assert globbed.groups == ["easy", "hard"]
    assert sorted((i.group, i.match) for i in globbed.items) == [("easy", "a"), ("easy", "b"), ("hard", "a"),
                                                                  ("hard", "b")]
    unmatched = studies.from_sources([str(tmp_path / "easy"), str(tmp_path / "hard")], match=None)
    assert not unmatched.matched and unmatched.groups == ["easy", "hard"]

    with open(tmp_path / "corpus.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "group", "match", "path", "text"])
        writer.writerow(["e1", "easy", "a", "easy/a.txt", ""])
        writer.writerow(["h1", "hard", "a", "", BOM + "An inline text."])
    table = studies.table(str(tmp_path / "corpus.csv"))
    assert [(i.id, i.group, i.match, i.text) for i in table.items] == [
        ("e1", "easy", "a", "easy text a."), ("h1", "hard", "a", "An inline text.")]
    with open(tmp_path / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps({"group": "easy", "path": "easy/b.txt"}) + "\n\n")
        f.write(json.dumps({"id": "x", "group": "hard", "text": "Inline."}) + "\n")
    jsonl = studies.from_sources([str(tmp_path / "corpus.jsonl")])
    assert [(i.id, i.group, i.match) for i in jsonl.items] == [("b", "easy", None), ("x", "hard", None)]


def test_unmatched_groups_are_compared_with_unpaired_tests(tmp_path, model_path):
    articles = real_texts(4, chars=100_000)
    for level in ("ele", "adv"):
        os.makedirs(tmp_path / level)
        for name, texts in articles:
            (tmp_path / level / f"{name}.txt").write_text(texts[level], encoding="utf-8")
    corpus = studies.folders({"easy": str(tmp_path / "ele"), "hard": str(tmp_path / "adv")}, match=None)
    result = studies.study(corpus, model=model_path, out=str(tmp_path / "out"), workers=0, progress=False)
    assert not result.matched and result.quality == []
    pair = result.comparison("n").pairs[0]
    assert pair.test == "Mann-Whitney U" and pair.n == 8 and (pair.group_a, pair.group_b) == ("easy", "hard")
    assert pair.direction == "hard > easy" and pair.rank_biserial == 1.0   # every advanced text is the longer
    report = open(result.files["report"], encoding="utf-8").read()
    assert "Mann-Whitney U tests" in report and "Kruskal-Wallis test needs three or more groups" in report


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a", "group": "g", "text": "x"}, {"id": "a", "group": "h", "text": "y"}], "appears twice"),
    ([{"group": "g", "text": "x", "path": "p.txt"}], "exactly one of path and text"),
    ([{"group": "g", "text": "x", "colour": "red"}], "unknown field"),
    ([{"id": "a", "text": "x"}], "has no group"),
    ([{"group": "g", "match": "m", "text": "x"}, {"group": "g", "match": "m", "text": "y"}], "two texts for match"),
])
def test_bad_tables_are_refused_with_the_reason(tmp_path, rows, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(attnprox.InvalidArgumentError, match=message):
        studies.table(str(path))


def test_texts_that_do_not_tokenize_or_are_too_short_drop_their_set(tmp_path, model_path):
    rows = [{"id": f"{g}{m}", "group": g, "match": m, "text": f"The {g} text number {m} is here."}
            for m in "123" for g in ("a", "b")]
    rows[0]["text"] = "Broken \ud800 surrogate."      # not valid Unicode: the tokenizer refuses it
    rows[3]["text"] = "Hi"                            # one token: AP needs two
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = studies.study(str(path), model=model_path, out=str(tmp_path / "out"), workers=0, progress=False)
    reasons = {d.id: d.reason for d in result.quality}
    assert set(reasons) == {"1", "2"}
    assert "a1: does not tokenize" in reasons["1"] and "not valid Unicode" in reasons["1"]
    assert "b2: 1 token: AP needs at least 2" in reasons["2"]
    assert sorted(r["text_id"] for r in result.rows) == ["a3", "b3"]
    store = sqlite3.connect(result.store)
    assert store.execute("SELECT COUNT(*) FROM quality").fetchone()[0] == 2


# ---------------------------------------------------------------------------------------------------------------
# Values, layers, per-token arrays


def test_rows_hold_each_texts_own_values(tmp_path, model_path):
    articles = real_texts(3, chars=900)
    root = write_onestopenglish(tmp_path / "ose", articles)
    result = studies.study(["onestopenglish", root], model=model_path, out=str(tmp_path / "out"), layers="all",
                           per_token=True, workers=0, progress=False, token_budget=2000)
    model = attnprox.load(model_path)
    rows = attnprox.studies.Store(result.store).rows(result.run_id, per_token=True)
    assert {r["layer"] for r in rows} == {0, 1} and len(rows) == 2 * 9
    for (name, texts) in articles:
        for suffix, text in texts.items():
            alone = model.run(text=text)   # the text by itself, not in a padded batch
            for layer in (0, 1):
                row = next(r for r in rows if r["text_id"] == f"{name}-{suffix}" and r["layer"] == layer)
                ape = alone.ape(layer)
                stats = alone.attention_stats(layer)
                assert row["n"] == len(alone) and row["windows"] == 1 and row["error"] is None
                assert row["ap"] == pytest.approx(alone.ap(layer), rel=1e-4, abs=1e-6)
                assert row["ape"] == pytest.approx(float(ape), rel=1e-5)
                assert row["ape_normalized"] == pytest.approx(ape.normalized, rel=1e-5)
                assert row["mean_entropy"] == pytest.approx(stats.mean_entropy, rel=1e-5)
                np.testing.assert_allclose(row["ap_tokens"], alone.ap_tokens(layer), rtol=1e-4, atol=1e-6)
                assert row["tokens"] == alone.token_texts
    exported = json.load(open(result.files["texts_json"], encoding="utf-8"))
    assert exported["config"]["layers"] == [0, 1] and len(exported["texts"]) == 18
    assert "ap_tokens" in exported["texts"][0]
    with open(result.files["texts_csv"], encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 18 and float(table[0]["ap"]) == rows[0]["ap"]
    assert os.path.exists(os.path.join(tmp_path, "out", "figure-layer0.svg"))


def test_a_study_keeps_only_the_layers_it_studies(tmp_path, model_path, monkeypatch):
    """The scoring runs keep the studied layers only (the forward stops after the last of them), with the values of a
    full run at that layer."""
    articles = real_texts(2, chars=400)
    root = write_onestopenglish(tmp_path / "ose", articles)
    kept = []
    original = attnprox.Model.stream

    def watched(self, *args, **kwargs):
        for index, result in original(self, *args, **kwargs):
            if not isinstance(result, attnprox.Error):
                kept.append(result.layers)
            yield index, result

    monkeypatch.setattr(attnprox.Model, "stream", watched)
    result = studies.study(["onestopenglish", root], model=model_path, out=str(tmp_path / "out"), layers="0",
                           workers=0, progress=False)
    monkeypatch.undo()
    assert kept and all(layers == [0] for layers in kept)
    model = attnprox.load(model_path)
    rows = studies.Store(result.store).rows(result.run_id)
    assert {r["layer"] for r in rows} == {0} and len(rows) == 6
    for name, texts in articles:
        for suffix, text in texts.items():
            row = next(r for r in rows if r["text_id"] == f"{name}-{suffix}")
            assert row["ap"] == pytest.approx(model.run(text=text).ap(0), rel=1e-4, abs=1e-6)


@pytest.fixture(scope="module")
def short_model_path(tmp_path_factory):
    """The same shape with 64 positions: most real texts are longer and run in windows."""
    out = tmp_path_factory.mktemp("study-short-model")
    hf = write_random_model({"model_type": "gpt2", "vocab_size": 50257, "n_positions": 64, "n_embd": 16,
                             "n_layer": 2, "n_head": 2}, str(out / "gpt2"), seed=4, std=0.2)
    write_tokenizer_json("gpt2", data_path("tokenizers", "gpt2"), hf)
    path = str(out / "gpt2-64.apx")
    attnprox.export_reference(hf, path)
    return path


def test_texts_longer_than_the_positions_run_in_windows(tmp_path, short_model_path):
    articles = [(name, {k: t[:t.rfind(" ", 0, 200 + 150 * j)] for k, t in texts.items()})
                for j, (name, texts) in enumerate(real_texts(3, chars=100_000))]
    articles.append(("Short", {"ele": "A short text.", "int": "A short text, a bit longer.",
                               "adv": "A short text, a little bit longer than that."}))
    root = write_onestopenglish(tmp_path / "ose", articles)
    result = studies.study(["onestopenglish", root], model=short_model_path, out=str(tmp_path / "out"), stride=16,
                           layers="all", per_token=True, workers=0, progress=False)
    model = attnprox.load(short_model_path)
    rows = studies.Store(result.store).rows(result.run_id, per_token=True)
    windowed = 0
    for name, texts in articles:
        for suffix, text in texts.items():
            n = len(model.encode(text).ids)
            for layer in (0, 1):
                row = next(r for r in rows if r["text_id"] == f"{name}-{suffix}" and r["layer"] == layer)
                assert row["n"] == n and row["error"] is None
                if n <= 64:
                    assert row["windows"] == 1
                    assert row["ap"] == pytest.approx(model.run(text=text).ap(layer), rel=1e-4, abs=1e-6)
                    continue
                w = model.run_windows(text=text, stride=16)
                assert row["windows"] == len(w.windows) > 1
                assert row["ap"] == pytest.approx(w.ap(layer), rel=1e-6)
                assert row["ape_normalized"] == pytest.approx(w.ape(layer).normalized, rel=1e-6)
                # mean attention entropy: every query of every window once
                queries = [(len(r), r.attention_stats(layer).mean_entropy) for _, r in w.windows]
                expected = sum(k * e for k, e in queries) / sum(k for k, _ in queries)
                assert row["mean_entropy"] == pytest.approx(expected, rel=1e-6)
                assert len(row["ap_tokens"]) == len(row["tokens"]) == w.n
                # GPT-2 adds no special tokens: the text tokens are the whole encoding's
                assert row["tokens"] == [text[a:b] for a, b in model.encode(text).char_offsets]
                windowed += layer == 0
    assert windowed >= 5 and len(result.windowed) == windowed
    report = open(result.files["report"], encoding="utf-8").read()
    assert f"{windowed} texts ran in windows" in report and "stride 16" in report
    assert result.config["windowing"] == {"strategy": "run_windows", "window": None, "stride": 16}


def test_a_text_that_fails_to_run_gets_an_error_row_and_drops_its_set(model_path):
    from attnprox.studies.corpus import Corpus, Item
    from attnprox.studies.quality import after_scoring
    from attnprox.studies.scoring import Batch, Scoring, score_batch

    scoring = Scoring(model_path, "cpu", None, 0, (1,), "shift", False, None, None, 1024)
    good = "A text that runs well enough."
    rows = score_batch(scoring, Batch((("g", good), ("b", "")), (7, 1)))   # "" gives no tokens: it cannot run
    by_id = {r["text_id"]: r for r in rows}
    assert by_id["g"]["error"] is None and by_id["g"]["ap"] is not None
    assert "no tokens" in by_id["b"]["error"] and by_id["b"]["ap"] is None
    items = [Item("g1", "A", "m1", good, ""), Item("g2", "B", "m1", good, ""), Item("g3", "A", "m2", good, ""),
             Item("g4", "B", "m2", good, "")]
    kept, dropped = after_scoring(Corpus(items, ["A", "B"]), items, {"g2": "ComputeError: boom"})
    assert [i.id for i in kept] == ["g3", "g4"]
    assert [(d.id, d.reason) for d in dropped] == [("m1", "g2: scoring failed: ComputeError: boom")]


def test_a_failed_text_is_reported_then_tried_again_on_the_next_run(tmp_path, model_path, monkeypatch):
    from attnprox.studies import execute, scoring

    root = write_onestopenglish(tmp_path / "ose", real_texts(3, chars=300))
    failing = f"{real_texts(1)[0][0]}-int"

    def flaky(scoring_, batch):   # as if the worker ran out of memory on one text
        rows = scoring.score_batch(scoring_, batch)
        return [dict(r, ap=None, error="ComputeError: out of memory") if r["text_id"] == failing else r for r in rows]

    monkeypatch.setattr(execute, "score_batch", flaky)
    out = str(tmp_path / "out")
    first = studies.study(["onestopenglish", root], model=model_path, out=out, workers=0, progress=False,
                          token_budget=1)
    name = failing[:-len("-int")]
    assert [(d.id, d.reason) for d in first.quality] == [(name, f"{failing}: scoring failed: ComputeError: out of "
                                                                f"memory")]
    assert {r["match"] for r in first.rows} == {a for a, _ in real_texts(3)} - {name}
    assert f"| {name} | {failing}: scoring failed" in open(first.files["report"], encoding="utf-8").read()
    monkeypatch.undo()
    second = studies.study(["onestopenglish", root], model=model_path, out=out, workers=0, progress=False,
                           token_budget=1)
    assert (second.scored, second.skipped, second.quality) == (1, 8, [])
    assert len(second.rows) == 9 and all(r["error"] is None for r in second.rows)


def test_the_planner_counts_tokens_as_the_model_encodes(tmp_path, model_path):
    from attnprox.studies.model_file import ModelFile
    from conftest import rewrite_model_file

    texts = ["Hello world.", BOM + "A byte-order mark first.", "<|endoftext|> inside a text", " \n x"]
    with_bos = rewrite_model_file(model_path, str(tmp_path / "bos.apx"), manifest=lambda m: m["tokenizer"].update(
        bos_id=50256, add_bos=True))
    for path in (model_path, with_bos):
        planner, model = ModelFile.read(path), attnprox.load(path)
        for text in texts:
            assert planner.count_tokens(text) == len(model.encode(text).ids), (path, text)
    assert ModelFile.read(with_bos).count_tokens("Hello") == 2   # BOS + "Hello"


def test_layers_outside_the_model_are_refused(tmp_path, model_path):
    root = write_onestopenglish(tmp_path / "ose", real_texts(1, chars=200))
    with pytest.raises(attnprox.OutOfRangeError, match=r"layer 5 requested, the model has 2 layers \(0..1\)"):
        studies.study(["onestopenglish", root], model=model_path, out=str(tmp_path / "out"), layers="5", workers=0)


# ---------------------------------------------------------------------------------------------------------------
# The store: resume, configuration, kill -9


def test_rerun_skips_what_is_done_and_a_changed_configuration_is_refused(tmp_path, model_path):
    root = write_onestopenglish(tmp_path / "ose", real_texts(3, chars=300))
    out = str(tmp_path / "out")
    first = studies.study(["onestopenglish", root], model=model_path, out=out, workers=0, progress=False,
                          token_budget=1)
    assert (first.run_id, first.scored, first.skipped) == (1, 9, 0)
    again = studies.study(["onestopenglish", root], model=model_path, out=out, workers=0, progress=False)
    assert (again.run_id, again.scored, again.skipped) == (1, 0, 9)
    assert again.rows == first.rows
    with pytest.raises(studies.ConfigurationChanged, match=r"policy: 'shift' there, 'clamp' asked.*--new-run"):
        studies.study(["onestopenglish", root], model=model_path, out=out, policy="clamp", workers=0, progress=False)
    clamp = studies.study(["onestopenglish", root], model=model_path, out=out, policy="clamp", new_run=True,
                          workers=0, progress=False)
    assert (clamp.run_id, clamp.scored) == (2, 9)
    # both runs are kept; each configuration resumes its own run
    resumed = studies.study(["onestopenglish", root], model=model_path, out=out, policy="clamp", workers=0,
                            progress=False)
    assert (resumed.run_id, resumed.scored) == (2, 0)
    store = studies.Store(os.path.join(out, "study.sqlite"))
    assert [r["config"]["policy"] for r in store.runs()] == ["shift", "clamp"]
    assert len(store.rows(1)) == len(store.rows(2)) == 9
    # a text edited since it was scored is scored again (with its batch: here each text is a batch)
    name = real_texts(1)[0][0]
    with open(os.path.join(root, "Ele-Txt", f"{name}-ele.txt"), "a", encoding="utf-8") as f:
        f.write(" One more sentence.")
    edited = studies.study(["onestopenglish", root], model=model_path, out=out, workers=0, progress=False,
                           token_budget=1)
    assert (edited.run_id, edited.scored, edited.skipped) == (1, 1, 8)


def cli(*args, env=None):
    """The attnprox command of this build as a subprocess (BLAS on one thread: the same bits in every process)."""
    environment = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"), OPENBLAS_NUM_THREADS="1",
                       OMP_NUM_THREADS="1", **(env or {}))
    return [sys.executable, "-m", "attnprox", *args], environment


def table_of(store_path):
    with sqlite3.connect(store_path) as db:
        return (db.execute("SELECT * FROM texts ORDER BY run_id, text_id, layer").fetchall(),
                db.execute("SELECT * FROM token_values ORDER BY run_id, text_id, layer").fetchall())


@pytest.fixture(scope="module")
def triplets(tmp_path_factory):
    """Twelve real OneStopEnglish triplets, whole texts (about 500-1,800 tokens each)."""
    return write_onestopenglish(tmp_path_factory.mktemp("ose12") / "ose", real_texts(12, chars=100_000))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, triplets, model_path):
    out = str(tmp_path_factory.mktemp("uninterrupted"))
    command, env = cli("study", "onestopenglish", triplets, "-m", model_path, "--out", out, "--workers", "0",
                       "--token-budget", "1", "--tokens", "-q")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def test_a_run_killed_with_kill_9_resumes_to_the_uninterrupted_table(tmp_path, triplets, model_path, uninterrupted):
    out = str(tmp_path / "out")
    store_path = os.path.join(out, "study.sqlite")
    command, env = cli("study", "onestopenglish", triplets, "-m", model_path, "--out", out, "--workers", "0",
                       "--token-budget", "1", "--tokens", "-q")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    written, deadline = 0, time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(store_path):
            try:
                with sqlite3.connect(store_path, timeout=1) as db:
                    written = db.execute("SELECT COUNT(*) FROM texts").fetchone()[0]
            except sqlite3.OperationalError:   # the schema is being created
                written = 0
            if written >= 4:
                break
        time.sleep(0.01)
    assert process.poll() is None, "the study ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = len(table_of(store_path)[0])
    assert 4 <= killed_at < 36
    command, env = cli("study", "onestopenglish", triplets, "-m", model_path, "--out", out, "--workers", "0",
                       "--token-budget", "1", "--tokens", "-q")
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{36 - killed_at} scored now, {killed_at} from before" in resumed.stdout
    assert table_of(store_path) == table_of(os.path.join(uninterrupted, "study.sqlite"))
    assert open(os.path.join(out, "texts.csv")).read() == open(os.path.join(uninterrupted, "texts.csv")).read()
    sessions = studies.Store(store_path).sessions(1)
    assert [s["finished"] is None for s in sessions] == [True, False]
    assert "did not finish" in open(os.path.join(out, "report.md"), encoding="utf-8").read()


def test_dask_workers_give_the_in_process_table(tmp_path, triplets, model_path, uninterrupted):
    # Through the attnprox command script itself: spawned workers import it as their main module.
    out = str(tmp_path / "out")
    command, env = cli("study", "onestopenglish", triplets, "-m", model_path, "--out", out, "--workers", "2",
                       "--threads", "1", "--token-budget", "1", "--tokens", "-q")
    command = [sys.executable, os.path.join(BUILD, "bin", "attnprox"), *command[3:]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "36 scored now" in done.stdout
    store_path = os.path.join(out, "study.sqlite")
    assert table_of(store_path) == table_of(os.path.join(uninterrupted, "study.sqlite"))
    assert studies.Store(store_path).sessions(1)[0]["workers"] == "2 Dask worker processes × 1 thread(s)"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_local_clusters_start_where_pynvml_returns_str(tmp_path, model_path, monkeypatch):
    # A GPU machine's newer pynvml returns str where distributed 2022.12 calls .decode() (the device's name): with
    # Dask's GPU monitoring on, the cluster fails to start ("'str' object has no attribute 'decode'").
    import types

    from distributed.diagnostics import nvml

    class NVMLError(Exception):
        pass

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetName=lambda handle: "NVIDIA H200", nvmlSystemGetDriverVersion=lambda: "560.35",
        nvmlDeviceGetMemoryInfo=lambda handle: types.SimpleNamespace(total=1 << 30, used=0),
        nvmlDeviceGetUtilizationRates=lambda handle: types.SimpleNamespace(gpu=0),
        nvmlDeviceGetMigMode=lambda handle: [0, 0], NVMLError_NotSupported=NVMLError,
        NVMLError_LibraryNotFound=NVMLError, NVMLError_DriverNotLoaded=NVMLError, NVMLError_Unknown=NVMLError)
    monkeypatch.setattr(nvml, "pynvml", fake)
    monkeypatch.setattr(nvml, "NVML_STATE", nvml.NVMLState.UNINITIALIZED)
    monkeypatch.setattr(nvml, "NVML_OWNER_PID", None)
    with pytest.raises(AttributeError, match="'str' object has no attribute 'decode'"):
        nvml.one_time()  # what a cluster's system monitor calls at its start
    monkeypatch.setattr(nvml, "NVML_STATE", nvml.NVMLState.UNINITIALIZED)
    root = write_onestopenglish(tmp_path / "ose", real_texts(1, chars=300))
    done = studies.study(["onestopenglish", root], model=model_path, out=str(tmp_path / "out"), workers=1,
                         progress=False)
    assert done.scored == 3
    import dask

    assert dask.config.get("distributed.diagnostics.nvml") is True  # the user's configuration is restored


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_existing_dask_cluster_takes_the_work(tmp_path, model_path):
    from distributed import LocalCluster

    root = write_onestopenglish(tmp_path / "ose", real_texts(2, chars=400))
    reference = studies.study(["onestopenglish", root], model=model_path, out=str(tmp_path / "here"), workers=0,
                              progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = studies.study(["onestopenglish", root], model=model_path, out=str(tmp_path / "there"),
                               scheduler=cluster.scheduler_address, progress=False)
    assert remote.scored == 6
    assert studies.Store(remote.store).sessions(1)[0]["workers"] == f"Dask cluster at {cluster.scheduler_address}"
    # another process, maybe another BLAS thread count: equal to float32 rounding
    for here, there in zip(reference.rows, remote.rows):
        assert (here["text_id"], here["n"], here["windows"]) == (there["text_id"], there["n"], there["windows"])
        for key in ("ap", "ape", "ape_normalized", "mean_entropy"):
            assert there[key] == pytest.approx(here[key], rel=1e-5, abs=1e-7)


def test_worker_plans_pin_gpus_and_share_cores(monkeypatch):
    from attnprox.studies.execute import Plan, cores, worker_environments

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    gpu = Plan(device="cuda")
    assert (gpu.workers, gpu.gpus, gpu.in_process) == (2, ["3", "5"], False)
    shared = Plan(device="cuda", workers_per_gpu=2)
    assert shared.gpus == ["3", "3", "5", "5"]
    environments = worker_environments(shared)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in environments] == ["3", "3", "5", "5"]
    assert all(e["OMP_WAIT_POLICY"] == "PASSIVE" for e in environments)
    assert all(e["DASK_DISTRIBUTED__DIAGNOSTICS__NVML"] == "False" for e in environments)
    with pytest.raises(attnprox.InvalidArgumentError, match="3 workers asked with --device cuda, but 2 GPU"):
        Plan(device="cuda", workers=3)
    with pytest.raises(attnprox.InvalidArgumentError, match="workers per GPU apply to --device cuda"):
        Plan(device="cpu", workers_per_gpu=2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(attnprox.UnsupportedError, match="no GPU is visible"):
        Plan(device="cuda")
    cpu = Plan(device="cpu", workers=4)
    assert cpu.threads == max(1, cores() // 4) and cpu.gpus == []
    assert all(e["OMP_NUM_THREADS"] == e["OPENBLAS_NUM_THREADS"] == str(cpu.threads)
               and "CUDA_VISIBLE_DEVICES" not in e for e in worker_environments(cpu))
    assert Plan(device="cpu", workers=0).in_process and Plan(device="cpu", workers=0).threads == 0
    assert not Plan(device="cpu", workers=1).in_process


# ---------------------------------------------------------------------------------------------------------------
# The command line


def test_cli_writes_store_table_report_and_figure(tmp_path, model_path):
    root = write_onestopenglish(tmp_path / "ose", real_texts(4, chars=300))
    out = str(tmp_path / "study")
    # no --model: the default model, here the file ATTNPROX_DEFAULT_MODEL names
    command, env = cli("study", "onestopenglish", root, "--out", out, "--workers", "0",
                       env={"ATTNPROX_DEFAULT_MODEL": model_path})
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "attnprox's default model (gpt2.apx)" in open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "run 1 in" in done.stdout and "12 texts compared" in done.stdout
    assert "scoring: 100%" in done.stderr and "text/s" in done.stderr
    for name in ("study.sqlite", "texts.csv", "texts.json", "stats.csv", "report.md", "figure.png", "figure.svg"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, "stats.csv"), encoding="utf-8") as f:
        stats = list(csv.DictReader(f))
    pairs = [r for r in stats if r["measure"] == "ap" and r["kind"] == "pair"]
    assert [(r["group_a"], r["group_b"]) for r in pairs] == [("Elementary", "Intermediate"),
                                                              ("Elementary", "Advanced"),
                                                              ("Intermediate", "Advanced")]
    assert any(r["kind"] == "omnibus" and r["test"] == "Friedman" for r in stats)
    svg = open(os.path.join(out, "figure.svg"), encoding="utf-8").read()
    assert 'id="bracket:ap:Elementary|Advanced"' in svg and 'id="label:ape_normalized:Elementary|Advanced"' in svg
    # the same command again: nothing to score
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 scored now, 12 from before" in again.stdout
    refused = subprocess.run(command + ["--policy", "clamp"], env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "--new-run" in refused.stderr and "Traceback" not in refused.stderr
    env["ATTNPROX_DEFAULT_MODEL"] = str(tmp_path / "missing.apx")
    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "no such model file" in missing.stderr


@pytest.mark.parametrize("args, code, message", [
    (["onestopenglish"], 1, "onestopenglish takes one folder"),
    (["onestopenglish", "/nonexistent/ose"], 1, "is not a folder"),
    (["onestopenglish", "DIR", "--workers", "-1"], 2, "expected at least 0"),
    (["onestopenglish", "DIR", "--figure", "colour"], 2, "expected measures among"),
])
def test_cli_errors(tmp_path, model_path, args, code, message):
    args = [str(tmp_path) if a == "DIR" else a for a in args]
    command, env = cli("study", *args, "-m", model_path, "--out", str(tmp_path / "o"))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == code and message in done.stderr and "Traceback" not in done.stderr
