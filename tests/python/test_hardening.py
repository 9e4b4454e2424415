"""Hostile and careless inputs (docs/limits.md): deep JSON, FIFOs, entries that inflate without end, corrupt
archives, tokenizer files at their bounds, regular expressions that backtrack without end. Each is a clear error
(never a crash, a hang, runaway memory or a silently different result), in Python, the CLI and the engine."""
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import attnprox
from attnprox import _limits
from attnprox.errors import InvalidArgumentError, InvalidModelError
from attnprox.model_file import set_tokenizer
from attnprox.studies.model_file import ModelFile
from conftest import BUILD, ROOT

DEEP = 100000


def run_python(code: str, timeout: int = 120):
    """Runs `code` in a fresh interpreter with this build's attnprox; a hang is a failure (the timeout)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def run_cli(*args, timeout: int = 120):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    return subprocess.run([sys.executable, "-m", "attnprox", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def with_manifest_text(src: str, dst: str, text: str, compress=zipfile.ZIP_STORED) -> str:
    """A copy of model file `src` whose manifest entry holds `text`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("extra/attnprox/manifest.json"):
                data = text.encode()
            info = zipfile.ZipInfo(item.filename, item.date_time)
            info.compress_type = compress
            zout.writestr(info, data)
    return dst


def deep_manifest(src: str, dst: str) -> str:
    with zipfile.ZipFile(src) as z:
        name = next(n for n in z.namelist() if n.endswith("extra/attnprox/manifest.json"))
        manifest = json.loads(z.read(name))
    text = json.dumps(dict(manifest, num_layers="DEEP")).replace('"DEEP"', "[" * DEEP + "]" * DEEP)
    return with_manifest_text(src, dst, text)


# ---- 1: nesting depth ---------------------------------------------------------------------------------------------

def test_deep_manifest_is_a_clean_error_everywhere(exported, tmp_path):
    path = deep_manifest(exported("gpt2"), str(tmp_path / "deep.apx"))
    with pytest.raises(InvalidModelError, match="nested more than 100 levels"):
        attnprox.load(path)
    # Python's own reading of the manifest (study planning, set_tokenizer): the same clean error, no RecursionError.
    with pytest.raises(InvalidModelError, match="nested more than 100 levels"):
        ModelFile.read(path)
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text(json.dumps({"model": {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"}}))
    with pytest.raises(InvalidModelError, match="nested more than 100 levels"):
        set_tokenizer(path, str(tokenizer))
    out = run_cli("info", path)
    assert out.returncode == 1, out
    assert "nested more than 100 levels" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr) < 1000


def test_json_just_past_the_depth_bound_is_refused_in_python_and_cpp():
    shallow = "[" * 100 + "]" * 100
    assert _limits.loads(shallow, "x", InvalidModelError) is not None
    for deep in ("[" * 101 + "]" * 101, "[" * DEEP + "]" * DEEP):
        with pytest.raises(InvalidModelError, match="nested more than 100"):
            _limits.loads(deep, "x", InvalidModelError)
        with pytest.raises(InvalidArgumentError, match="more than 100 levels deep"):
            attnprox.Tokenizer.from_json('{"model": ' + deep + "}")


# ---- 4: regular files only ----------------------------------------------------------------------------------------

def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = str(tmp_path / "model.apx")
    os.mkfifo(fifo)
    code = f"""
        import attnprox
        from attnprox.model_file import set_tokenizer
        from attnprox.studies.model_file import ModelFile
        for call in (lambda: attnprox.load({fifo!r}), lambda: attnprox.Tokenizer.from_file({fifo!r}),
                     lambda: ModelFile.read({fifo!r}), lambda: set_tokenizer({fifo!r}, {fifo!r})):
            try:
                call()
                print("loaded")
            except attnprox.Error as e:
                print(type(e).__name__, e)
    """
    try:
        out = run_python(code, timeout=60)
    except subprocess.TimeoutExpired:
        with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):  # lets a blocked open() return
            pass
        pytest.fail("loading a FIFO blocked")
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 4, out
    assert all(line.startswith("InvalidArgumentError") and "not a regular file" in line for line in lines), lines
    cli = run_cli("info", fifo, timeout=60)
    assert cli.returncode == 1 and "not a regular file" in cli.stderr, cli


# ---- 5: entries that inflate without end --------------------------------------------------------------------------

def _patch_declared_size(path: str, entry_suffix: str, size: int) -> None:
    """Writes `size` as the uncompressed size of an entry in its local header and its central directory record."""
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(entry_suffix))
    struct.pack_into("<I", data, info.header_offset + 22, size)
    name = info.filename.encode()
    at = len(data)
    while True:
        at = data.rfind(b"PK\x01\x02", 0, at)
        assert at >= 0
        name_size = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_size] == name:
            break
    struct.pack_into("<I", data, at + 24, size)
    open(path, "wb").write(data)


@pytest.fixture(scope="module")
def inflating_manifest(tmp_path_factory, exported):
    """A small model file whose manifest inflates to 1 GB."""
    src = exported("gpt2")
    path = str(tmp_path_factory.mktemp("inflating") / "big-manifest.apx")
    block = b" " * (1 << 20)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            info = zipfile.ZipInfo(item.filename, item.date_time)
            if item.filename.endswith("extra/attnprox/manifest.json"):
                info.compress_type = zipfile.ZIP_DEFLATED
                with zout.open(info, "w") as out:
                    out.write(b'{"format": "attnprox-model", "pad": "')
                    for _ in range(1000):  # 1.05 GB: under the bound of any compressed entry (1 GiB)
                        out.write(block)
                    out.write(b'"}')
            else:
                zout.writestr(info, zin.read(item.filename))
    assert os.path.getsize(path) < 3 << 20
    return path


PEAK = """
    import resource, sys, time
    import attnprox
    attnprox.load({small!r})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        attnprox.load({path!r})
        print("loaded")
    except attnprox.InvalidModelError as e:
        print(str(e)[:300])
    print(time.perf_counter() - start, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


def test_manifest_that_inflates_to_a_gigabyte_is_refused_cheaply(inflating_manifest, exported):
    out = run_python(PEAK.format(small=exported("gpt2"), path=inflating_manifest))
    message, numbers = out.stdout.strip().splitlines()
    assert "its manifest is 1048576039 bytes, more than the 16777216 attnprox reads" in message, out
    seconds, grown_mb = float(numbers.split()[0]), int(numbers.split()[1])
    assert seconds < 5 and grown_mb < 64, out.stdout
    with pytest.raises(InvalidModelError, match="more than the 16777216"):
        ModelFile.read(inflating_manifest)


def test_manifest_that_inflates_past_its_declared_size_stops_there(inflating_manifest, exported, tmp_path):
    lying = str(tmp_path / "lying.apx")
    open(lying, "wb").write(open(inflating_manifest, "rb").read())
    _patch_declared_size(lying, "extra/attnprox/manifest.json", 1000)
    out = run_python(PEAK.format(small=exported("gpt2"), path=lying))
    message, numbers = out.stdout.strip().splitlines()
    assert "its manifest is corrupt: it holds more data than its declared 1000 bytes" in message, out
    seconds, grown_mb = float(numbers.split()[0]), int(numbers.split()[1])
    assert seconds < 5 and grown_mb < 64, out.stdout


# ---- 7: CRC-32 of every entry -------------------------------------------------------------------------------------

def _results(model):
    result = model.run(ids=[1, 2, 3, 4, 5])
    return [(result.ap(layer), result.attention(layer)) for layer in model.layers]


def test_every_single_bit_flip_is_refused_or_changes_nothing(exported, tmp_path):
    src = exported("gpt2")
    data = open(src, "rb").read()
    reference = _results(attnprox.load(src))
    # Positions spread over the whole file, and every byte of the end of central directory record.
    positions = sorted(set(np.linspace(0, len(data) - 1, 180).astype(int).tolist()) |
                       set(range(len(data) - 22, len(data))))
    refused = same = 0
    path = str(tmp_path / "flipped.apx")
    for k, position in enumerate(positions):
        flipped = bytearray(data)
        flipped[position] ^= 1 << (k % 8)
        open(path, "wb").write(flipped)
        try:
            model = attnprox.load(path)
        except attnprox.Error as e:
            assert str(e) and "'" + path + "'" in str(e), e
            refused += 1
            continue
        got = _results(model)
        for (ap, attention), (ap_ref, attention_ref) in zip(got, reference):
            assert ap == ap_ref, position
            np.testing.assert_array_equal(attention, attention_ref)
        same += 1
    assert refused + same == len(positions)
    assert refused > len(positions) // 2, (refused, same)


# ---- 6: tokenizer files at their bounds ---------------------------------------------------------------------------

BOUND = """
    import json, resource, time
    import attnprox
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    {build}
    start = time.perf_counter()
    try:
        tok = attnprox.Tokenizer.from_json(text)
        {use}
        print("ok")
    except attnprox.Error as e:
        print(str(e)[:300])
    print(time.perf_counter() - start, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""

WORDLEVEL = '{{"model": {{"type": "WordLevel", "vocab": {vocab}, "unk_token": "<unk>"}}{more}}}'


def bound_case(build: str, use: str = "pass"):
    out = run_python(BOUND.format(build=textwrap.indent(textwrap.dedent(build), "    ").strip(), use=use),
                     timeout=300)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out
    seconds, grown_mb = lines[1].split()
    return lines[0], float(seconds), int(grown_mb)


@pytest.mark.parametrize("n, fine", [(1 << 20, True), ((1 << 20) + 1, False)])
def test_vocabulary_bound(n, fine):
    message, seconds, grown_mb = bound_case(f"""
        vocab = {{"t%d" % i: i for i in range({n} - 1)}}
        vocab["<unk>"] = {n} - 1
        text = json.dumps({{"model": {{"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}}}})
    """, 'assert tok.encode("t5") == [5]')
    assert (message == "ok") == fine, message
    if not fine:
        assert "1048577 tokens, more than the 1048576 allowed" in message
    assert seconds < 30 and grown_mb < 2000, (seconds, grown_mb)


@pytest.mark.parametrize("n, fine", [(1 << 20, True), ((1 << 20) + 1, False)])
def test_merges_bound(n, fine):
    # 1024 letters and 1024 x 1023 merges of two of them: a vocabulary of 2^20 tokens (its bound); the merges list
    # then repeats its first merge up to the number tested (a repeated merge is allowed and changes nothing).
    message, seconds, grown_mb = bound_case(f"""
        letters = [chr(0x4E00 + i) for i in range(1024)]
        vocab = {{c: i for i, c in enumerate(letters)}}
        merges = []
        for a in letters:
            for b in letters[1:]:
                vocab[a + b] = len(vocab)
                merges.append(a + " " + b)
        merges += [merges[0]] * ({n} - len(merges))
        text = json.dumps({{"model": {{"type": "BPE", "vocab": vocab, "merges": merges}}}})
    """, "assert len(tok.encode((chr(0x4E00) + chr(0x4E01)) * 2)) == 2")
    assert (message == "ok") == fine, message
    if not fine:
        assert "1048577 merges, more than the 1048576 allowed" in message
    assert seconds < 60 and grown_mb < 3000, (seconds, grown_mb)


@pytest.mark.parametrize("n, fine", [(1 << 17, True), ((1 << 17) + 1, False)])
def test_added_tokens_bound(n, fine):
    message, seconds, grown_mb = bound_case(f"""
        added = [{{"id": i + 1, "content": "<tok%d>" % i, "special": True}} for i in range({n})]
        text = json.dumps({{"model": {{"type": "WordLevel", "vocab": {{"<unk>": 0}}, "unk_token": "<unk>"}},
                           "added_tokens": added}})
    """, 'assert tok.encode("x <tok5> y" * 1000)[:3] == [0, 6, 0]')
    assert (message == "ok") == fine, message
    if not fine:
        assert "131073 tokens, more than the 131072 allowed" in message
    assert seconds < 30 and grown_mb < 1000, (seconds, grown_mb)


@pytest.mark.parametrize("size, fine", [(256, True), (257, False)])
def test_added_token_length_bound_and_its_worst_case_cost(size, fine):
    # The worst case of added-token matching: a token that fails at its last byte at every position of the text.
    message, seconds, grown_mb = bound_case(f"""
        added = [{{"id": 1, "content": "a" * ({size} - 1) + "b", "special": True}}]
        text = json.dumps({{"model": {{"type": "WordLevel", "vocab": {{"<unk>": 0}}, "unk_token": "<unk>"}},
                           "added_tokens": added}})
    """, 'assert tok.encode("a" * (1 << 18)) == [0]')
    assert (message == "ok") == fine, message
    if not fine:
        assert "257 bytes, more than the 256 an added token may have" in message
    assert seconds < 20 and grown_mb < 200, (seconds, grown_mb)


@pytest.mark.parametrize("count, fine", [(256, True), (257, False)])
def test_stage_bound(count, fine):
    # Nested Sequences count stage by stage: the outer Sequence, 16 inner ones, 238 lowercasers in them and the
    # pre-tokenizer make 256.
    message, seconds, grown_mb = bound_case(f"""
        inner = [{{"type": "Lowercase"}}] * 15
        outer = [{{"type": "Sequence", "normalizers": inner}}] * 16
        extra = [{{"type": "Lowercase"}}] * ({count} - 256)
        text = json.dumps({{"model": {{"type": "WordLevel", "vocab": {{"<unk>": 0, "hello": 1}}, "unk_token": "<unk>"}},
                           "normalizer": {{"type": "Sequence", "normalizers": outer[:-1] + [
                               {{"type": "Sequence", "normalizers": inner[:13] + extra}}]}},
                           "pre_tokenizer": {{"type": "WhitespaceSplit"}}}})
    """, 'assert tok.encode("HeLLo " * 20000)[:2] == [1, 1]')
    assert (message == "ok") == fine, message
    if not fine:
        assert "more than 256 normalizer, pre-tokenizer, post-processor and decoder stages" in message
    assert seconds < 30 and grown_mb < 500, (seconds, grown_mb)


@pytest.mark.parametrize("chars, fine", [(1000, True), (1001, False)])
def test_wordpiece_word_bound_and_its_worst_case_cost(chars, fine):
    # Every prefix of a long word is a token, the word itself is not: the greedy match tries each length.
    message, seconds, grown_mb = bound_case(f"""
        vocab = {{"[UNK]": 0}}
        for i in range(1, 1000):
            vocab["a" * i] = i
            vocab["##" + "a" * i] = 1000 + i
        text = json.dumps({{"model": {{"type": "WordPiece", "vocab": vocab, "unk_token": "[UNK]",
                                       "max_input_chars_per_word": {chars}}},
                           "pre_tokenizer": {{"type": "WhitespaceSplit"}}}})
    """, 'assert len(tok.encode(("a" * 999 + "b ") * 1000)) == 1000')
    assert (message == "ok") == fine, message
    if not fine:
        assert "expected an integer in 0..1000" in message
    assert seconds < 10 and grown_mb < 300, (seconds, grown_mb)


def test_bpe_on_a_word_of_a_million_characters():
    message, seconds, grown_mb = bound_case("""
        import random
        letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
        vocab = {c: i for i, c in enumerate(letters)}
        merges = []
        for a in letters:
            for b in letters:
                vocab[a + b] = len(vocab)
                merges.append(a + " " + b)
        text = json.dumps({"model": {"type": "BPE", "vocab": vocab, "merges": merges}})
        random.seed(0)
        word = "".join(random.choice(letters) for _ in range(1 << 20))
    """, "ids = tok.encode(word); assert (1 << 19) <= len(ids) < (1 << 20) and \"\".join(tok.tokens(ids)) == word")
    assert message == "ok"
    assert seconds < 20 and grown_mb < 500, (seconds, grown_mb)


@pytest.mark.parametrize("size, fine", [(16 << 10, True), ((16 << 10) + 1, False)])
def test_regex_length_bound(size, fine):
    message, seconds, grown_mb = bound_case(f"""
        pattern = "(?:" + "a" * ({size} - 4) + ")"
        text = json.dumps({{"model": {{"type": "WordLevel", "vocab": {{"<unk>": 0}}, "unk_token": "<unk>"}},
                           "pre_tokenizer": {{"type": "Split", "pattern": {{"Regex": pattern}},
                                              "behavior": "Isolated", "invert": False}}}})
    """, 'tok.encode("a" * 100000)')
    assert (message == "ok") == fine, message
    if not fine:
        assert "a regular expression of 16385 bytes, more than the 16384 allowed" in message
    assert seconds < 10 and grown_mb < 200, (seconds, grown_mb)


def test_tokenizer_file_over_the_size_bound_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as f:
        f.truncate((128 << 20) + 1)  # sparse: nothing is written
    with pytest.raises(InvalidArgumentError, match="134217729 bytes, more than the 134217728"):
        attnprox.Tokenizer.from_file(str(path))


# ---- 9: regular-expression errors ---------------------------------------------------------------------------------

def test_regex_retry_limit_is_an_error_not_the_end_of_the_matches():
    tok = attnprox.Tokenizer.from_json(json.dumps({
        "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "a": 1}, "unk_token": "<unk>"},
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a|a?)+$"}, "behavior": "Isolated",
                          "invert": False}}))
    assert tok.encode("aaaa") == [0]  # "aaaa" is one piece, not in the vocabulary
    with pytest.raises(InvalidArgumentError, match="retry-limit-in-match over"):
        tok.encode("a" * 40 + "b")


def test_default_regexes_do_not_hit_the_limits_on_long_texts():
    # GPT-2's pre-tokenizer regex over 1 MB of text: no false limit errors.
    tok = attnprox.Tokenizer.from_file(os.path.join(ROOT, "tests", "fuzz", "default_tokenizer.json"))
    text = "The quick brown fox, 1234 jumps!   " * 30000 + " " * 100000 + "x" * 100000
    assert len(tok.encode(text)) > 100000


# ---- 8: every result finite, or an error ------------------------------------------------------------------------

def _reference_attention(queries, keys, scaling, temperature, causal=True):
    """Independent NumPy reference: softmax((x - max x) / T) in float64 (extended precision keeps T tiny)."""
    q = queries.astype(np.float64)
    k = keys.astype(np.float64)
    group = q.shape[0] // k.shape[0]
    logits = np.einsum("hid,hjd->hij", q, np.repeat(k, group, axis=0)) * scaling
    n = logits.shape[1]
    if causal:
        logits = np.where(np.tril(np.ones((n, n), dtype=bool)), logits, -np.inf)
    shifted = logits - logits.max(-1, keepdims=True)
    with np.errstate(over="ignore", divide="ignore"):
        e = np.exp(np.longdouble(shifted) / np.longdouble(temperature))
    return (e / e.sum(-1, keepdims=True)).astype(np.float64)


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-30, 1e-3, 0.5, 2.0, 1e30, 1e300])
def test_attention_is_finite_at_any_positive_temperature(exported, temperature):
    model = attnprox.load(exported("gpt2"))
    result = model.run(ids=[5, 3, 9, 3, 1, 7])
    layer = model.layers[-1]
    weights = result.attention(layer, temperature=temperature)
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    scaling = model.manifest["layers"][-1]["scaling"]
    expected = _reference_attention(result.queries(layer), result.keys(layer), scaling, temperature)
    np.testing.assert_allclose(weights, expected, atol=2e-5)
    stats = result.attention_stats(layer, head=0, temperature=temperature)
    assert 0 < stats.max_weight <= 1 and stats.max_query >= 0
    assert np.isfinite(stats.mean_entropy)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_outside_the_positive_finite_numbers_is_an_error(exported, temperature):
    result = attnprox.load(exported("gpt2")).run(ids=[5, 3, 9])
    with pytest.raises(InvalidArgumentError, match="temperature must be a positive finite number"):
        result.attention(temperature=temperature)


def test_measurements_on_arrays_refuse_non_finite_inputs_and_overflow():
    from attnprox import metrics
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(2, 4, 8)), rng.normal(size=(1, 4, 8))
    assert np.isfinite(metrics.ap(q, k))
    for bad in (np.nan, np.inf):
        q_bad = q.copy()
        q_bad[1, 2, 3] = bad
        with pytest.raises(InvalidArgumentError, match="the queries must be finite: a NaN or Inf was found"):
            metrics.ap(q_bad, k)
        a = metrics.proximity(q, k)
        a[0, 1] = bad
        for call in (lambda: metrics.ap(proximity=a), lambda: metrics.ape(proximity=a),
                     lambda: metrics.subset_proximity([0], proximity=a)):
            with pytest.raises(InvalidArgumentError, match="the proximity matrix must be finite"):
                call()
        w = np.full((3, 3), 1 / 3)
        w[2, 0] = bad
        for call in (lambda: metrics.attention_stats(w), lambda: metrics.top_arcs(w, 2),
                     lambda: metrics.rank_links([w], 0, 2)):
            with pytest.raises(InvalidArgumentError, match="the attention weights must be finite: a NaN or Inf was found"):
                call()
    huge = q * 1e160  # finite, but products overflow double
    for call in (lambda: metrics.proximity(huge, k * 1e160), lambda: metrics.ap(huge, k * 1e160),
                 lambda: metrics.ape(huge, k * 1e160), lambda: metrics.subset_proximity([0], huge, k * 1e160)):
        with pytest.raises(InvalidArgumentError, match="overflows double"):
            call()
    # float16 and bfloat16 inputs at their largest values stay finite (they are widened before any product).
    big16 = np.full((2, 4, 8), 65504, dtype=np.float16)
    assert np.isfinite(metrics.ap(big16, big16[:1]))


def test_export_of_a_folder_with_a_deep_tokenizer_json_is_a_clean_error(tmp_path):
    import shutil
    from conftest import FIXTURES
    folder = tmp_path / "gpt2"
    shutil.copytree(os.path.join(FIXTURES, "gpt2"), folder)
    (folder / "tokenizer.json").write_text('{"model": ' + "[" * DEEP + "]" * DEEP + "}")
    with pytest.raises(attnprox.Error, match="nested more than 100|more than 100 levels deep"):
        attnprox.export_reference(str(folder), str(tmp_path / "out.apx"))


def test_corrupt_entry_is_refused_by_python_readers_too(exported, tmp_path):
    src = exported("gpt2")
    data = bytearray(open(src, "rb").read())
    with zipfile.ZipFile(src) as z:
        info = max(z.infolist(), key=lambda i: i.compress_size)  # the largest tensor, stored
    name_size, extra_size = struct.unpack_from("<HH", data, info.header_offset + 26)
    data[info.header_offset + 30 + name_size + extra_size + info.compress_size // 3] ^= 0x10
    path = tmp_path / "corrupt.apx"
    path.write_bytes(data)
    with pytest.raises(InvalidModelError, match="is corrupt: its CRC-32 does not match"):
        attnprox.load(str(path))
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text(json.dumps({"model": {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"}}))
    with pytest.raises(InvalidModelError, match="is corrupt"):
        set_tokenizer(str(path), str(tokenizer))
