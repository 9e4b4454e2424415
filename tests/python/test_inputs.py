"""One meaning per input (docs/inputs.md): each input of the table is refused, or means one thing, alike in C++
(through its binding attnprox._core, which passes values to the C++ API as they are), the C ABI (through ctypes on
libattnprox), Python and the command line; numbers out of range are clean errors; messages are clear."""
import ctypes
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import BUILD, rewrite_model_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SIZE_MAX = 2 ** 64 - 1
OK, INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND, INVALID_MODEL, UNSUPPORTED = 0, 1, 2, 3, 4, 5


# --- the C ABI through ctypes -----------------------------------------------------------------------------------

class LoadParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("device", ctypes.c_char_p), ("dtype", ctypes.c_int),
                ("threads", ctypes.c_int32), ("layers", ctypes.POINTER(ctypes.c_int32)),
                ("layer_count", ctypes.c_size_t)]


def _library():
    for name in ("libattnprox_c.so", "libattnprox_c.dylib"):
        path = os.path.join(BUILD, "lib", name)
        if os.path.exists(path):
            lib = ctypes.CDLL(path)
            lib.apx_last_error.restype = ctypes.c_char_p
            lib.apx_model_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
            lib.apx_model_free.argtypes = [ctypes.c_void_p]
            lib.apx_result_free.argtypes = [ctypes.c_void_p]
            lib.apx_model_run_text.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                               ctypes.POINTER(ctypes.c_void_p)]
            lib.apx_model_run_ids.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_size_t,
                                              ctypes.POINTER(ctypes.c_void_p)]
            lib.apx_result_ids.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_size_t,
                                           ctypes.POINTER(ctypes.c_size_t)]
            lib.apx_result_attention.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_double,
                                                 ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                                                 ctypes.POINTER(ctypes.c_size_t)]
            lib.apx_result_average_attention.argtypes = [
                ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.POINTER(ctypes.c_int32),
                ctypes.c_size_t, ctypes.c_double, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                ctypes.POINTER(ctypes.c_size_t)]
            lib.apx_tokenizer_from_json.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
            lib.apx_tokenizer_decode.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_size_t,
                                                 ctypes.c_int32, ctypes.POINTER(ctypes.c_char_p)]
            return lib
    pytest.skip("libattnprox is not in the build folder")


class C:
    """A model loaded through the C ABI."""

    def __init__(self, path, threads=0):
        self.lib = _library()
        self.model = ctypes.c_void_p()
        params = LoadParams(ctypes.sizeof(LoadParams), None, 0, threads, None, 0)
        self.status = self.lib.apx_model_load(path.encode(), ctypes.byref(params), ctypes.byref(self.model))
        self.error = self.lib.apx_last_error()

    def run_text(self, text: bytes, length):
        result = ctypes.c_void_p()
        status = self.lib.apx_model_run_text(self.model, text, length, None, ctypes.byref(result))
        return status, result

    def ids(self, result):
        n = ctypes.c_size_t()
        assert self.lib.apx_result_ids(result, None, 0, ctypes.byref(n)) == OK
        out = (ctypes.c_int64 * n.value)()
        assert self.lib.apx_result_ids(result, out, n.value, None) == OK
        return list(out)

    def matrix(self, call, *args):
        needed = ctypes.c_size_t()
        status = call(*args, None, 0, ctypes.byref(needed))
        if status != OK:
            return status, None
        out = (ctypes.c_float * needed.value)()
        assert call(*args, out, needed.value, None) == OK
        return status, np.array(out)

    def close(self):
        if self.model:
            self.lib.apx_model_free(self.model)


def int32s(values):
    return (ctypes.c_int32 * max(1, len(values)))(*values), len(values)


def cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    return subprocess.run([sys.executable, "-m", "attnprox", *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=300)


@pytest.fixture(scope="module")
def gpt2(text_models):
    return text_models["gpt2"]


@pytest.fixture(scope="module")
def c_model(gpt2):
    model = C(gpt2)
    assert model.status == OK, model.error
    yield model
    model.close()


# --- 10. one meaning per input: the table ------------------------------------------------------------------------

def test_negative_head(gpt2, c_model, tmp_path):
    """A negative head is out of range in C++, Python and the CLI; C's -1 is its spelling of "every head" (C has no
    None) and any other negative head is out of range there too (it used to mean every head)."""
    import attnprox

    model = attnprox.load(gpt2)
    result = model.run(text="The cat sat on the mat.")
    for head in (-1, -2):
        with pytest.raises(attnprox.OutOfRangeError):
            result.attention(-1, head)
        with pytest.raises(attnprox.OutOfRangeError):
            result._core.attention(-1, head, 1.0)  # the C++ API
        with pytest.raises(attnprox.OutOfRangeError):
            result.attention_stats(-1, head)
        out = cli("heatmap", gpt2, "--text", "The cat sat.", "--head", str(head), "--out", str(tmp_path / "h.png"))
        assert out.returncode == 1 and "head" in out.stderr and "Traceback" not in out.stderr, out.stderr
    status, c_result = c_model.run_text(b"The cat sat on the mat.", SIZE_MAX)
    assert status == OK
    lib = c_model.lib
    status, every = c_model.matrix(lib.apx_result_attention, c_result, -1, -1, 1.0)
    assert status == OK
    np.testing.assert_allclose(every.reshape(result.attention(-1).shape), result.attention(-1), atol=1e-6)
    status, _ = c_model.matrix(lib.apx_result_attention, c_result, -1, -2, 1.0)
    assert status == OUT_OF_RANGE, lib.apx_last_error()
    assert b"head -2" in lib.apx_last_error()
    lib.apx_result_free(c_result)


def test_duplicate_layers_and_heads_count_once(gpt2, c_model):
    """A list of layers or heads is a set: [0, 0, 1] is [0, 1] (and -1 names the last layer, which it may repeat),
    in C++, C and Python; the reference is NumPy's mean of the distinct heads' attention."""
    import attnprox

    result = attnprox.load(gpt2).run(text="The cat sat on the mat.")
    last = result.layers[-1]
    per_layer = {layer: result.attention(layer) for layer in result.layers}
    expected_layers = np.mean([per_layer[0].mean(0), per_layer[last].mean(0)], axis=0)
    expected_heads = per_layer[last][1]
    for layers, heads, expected in (([0, 0, last], None, expected_layers), ([0, -1, last], None, expected_layers),
                                    ([last], [1, 1], expected_heads)):
        np.testing.assert_allclose(result.average_attention(layers, heads), expected, atol=1e-6)
        np.testing.assert_allclose(result._core.average_attention(layers, heads or [], 1.0), expected, atol=1e-6)
        status, c_result = c_model.run_text(b"The cat sat on the mat.", SIZE_MAX)
        layer_array, layer_count = int32s(layers)
        head_array, head_count = int32s(heads or [])
        status, matrix = c_model.matrix(c_model.lib.apx_result_average_attention, c_result, layer_array,
                                        layer_count, head_array, head_count, 1.0)
        assert status == OK
        np.testing.assert_allclose(matrix.reshape(expected.shape), expected, atol=1e-6)
        c_model.lib.apx_result_free(c_result)
    # The proximity average follows the same rule.
    np.testing.assert_allclose(result.average_proximity([last, last, -1], [0, 0]),
                               result.average_proximity([last], [0]), atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda m, r: m.run(ids=[1.0, 2.0]),
    lambda m, r: r.attention(1.0),
    lambda m, r: r.attention(-1, 1.0),
    lambda m, r: r.top_arcs(1, k=2.0),
    lambda m, r: r.top_arcs(1.0),
    lambda m, r: r.average_attention([0.5]),
    lambda m, r: r.subset_proximity([0.0]),
    lambda m, r: r.attention(-1, 0, temperature="1"),
    lambda m, r: r.linking_heads(0, 1.0),
    lambda m, r: m.run(text="a b", truncation=True, max_length=2.0),
    lambda m, r: m.run(text="a b", token_budget=64.0),
    lambda m, r: m.run_windows(text="a b", window=8.0),
    lambda m, r: m.run(ids=[True, 1]),
    lambda m, r: r.attention(True),
])
def test_a_float_where_an_int_is_expected_is_refused(gpt2, call):
    import attnprox

    model = attnprox.load(gpt2)
    result = model.run(text="The cat sat on the mat.")
    with pytest.raises(attnprox.InvalidArgumentError):
        call(model, result)


@pytest.mark.parametrize("option", [["--head", "1.5"], ["--layer", "0.5"]])
def test_a_float_where_an_int_is_expected_cli(gpt2, tmp_path, option):
    out = cli("heatmap", gpt2, "--text", "a b", *option, "--out", str(tmp_path / "x.png"))
    assert out.returncode == 2 and "invalid int value" in out.stderr


@pytest.mark.parametrize("option", [["--window", "1.5"], ["--window", "0"], ["--window", "-3"], ["--stride", "0"],
                                    ["--max-length", "0"], ["--token-budget", "-1"], ["--max-length", "2.5"]])
def test_windows_and_lengths_of_zero_negative_or_fractional_cli(gpt2, option):
    needs = ["--windows"] if option[0] in ("--window", "--stride") else ["--truncate"] if option[0] == "--max-length" \
        else []
    out = cli("score", gpt2, "--text", "a b", *needs, *option)
    assert out.returncode == 2 and option[0] in out.stderr + out.stdout or "expected" in out.stderr, out.stderr


@pytest.mark.parametrize("window", [0, -1])
def test_window_of_zero_or_negative_is_refused(gpt2, window):
    import attnprox

    model = attnprox.load(gpt2)
    with pytest.raises(attnprox.InvalidArgumentError):
        model.run_windows(text="The cat sat on the mat.", window=window)
    with pytest.raises(attnprox.InvalidArgumentError):
        model.run_windows(text="The cat sat on the mat.", stride=window)
    q = np.zeros((1, 3, 4), np.float32)
    with pytest.raises(attnprox.InvalidArgumentError):
        attnprox._core.attention_weights(q, q, 1.0, True, sliding_window=window)


def test_embedded_nul(gpt2, c_model, tmp_path):
    """U+0000 in a text is a character like any other in C++, Python, the CLI (--file) and C with a length; C
    without a length (SIZE_MAX) reads a NUL-terminated string, which ends at the first NUL. A path with a NUL is
    refused (it would otherwise name the file before the NUL)."""
    import attnprox

    model = attnprox.load(gpt2)
    text = "cat\0dog"
    python_ids = model.run(text=text).ids
    assert python_ids != model.run(text="catdog").ids and python_ids != model.run(text="cat").ids
    assert list(model._core.encode(text, True, False, None).ids) == python_ids
    status, result = c_model.run_text(text.encode(), len(text.encode()))
    assert status == OK and c_model.ids(result) == python_ids
    c_model.lib.apx_result_free(result)
    status, result = c_model.run_text(text.encode(), SIZE_MAX)
    assert status == OK and c_model.ids(result) == model.run(text="cat").ids
    c_model.lib.apx_result_free(result)
    path = tmp_path / "nul.txt"
    path.write_bytes(text.encode())
    out = cli("score", gpt2, "--file", str(path), "--json", "--tokens")
    assert out.returncode == 0, out.stderr
    import json

    assert len(json.loads(out.stdout)[0]["tokens"]) == len(python_ids)
    for load in (attnprox.load, lambda p: attnprox._core.load(p, "cpu", None, 0, [])):
        with pytest.raises(attnprox.InvalidArgumentError, match="NUL"):
            load(gpt2 + "\0ignored")


# --- 3. numbers out of range --------------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [-1, 1025, 10 ** 6, 2 ** 31 - 1])
def test_thread_counts(gpt2, threads):
    import attnprox

    with pytest.raises(attnprox.InvalidArgumentError, match="threads"):
        attnprox.load(gpt2, threads=threads)
    if threads < 2 ** 31:
        with pytest.raises(attnprox.InvalidArgumentError, match="threads"):
            attnprox._core.load(gpt2, "cpu", None, threads, [])
        c = C(gpt2, threads=threads)
        assert c.status == INVALID_ARGUMENT and b"threads" in c.error
        c.close()


def test_thread_counts_beyond_int(gpt2):
    import attnprox

    for threads in (2 ** 40, 2 ** 70, 1.5, "4"):
        with pytest.raises(attnprox.InvalidArgumentError, match="threads"):
            attnprox.load(gpt2, threads=threads)


def test_study_workers_and_threads_are_bounded(tmp_path):
    for option in (["--threads", "100000"], ["--workers", "1000000"], ["--workers-per-gpu", "99999"]):
        out = cli("study", str(tmp_path), "--out", str(tmp_path / "out"), *option)
        assert out.returncode == 2 and "at most" in out.stderr, out.stderr


@pytest.mark.parametrize("length", [SIZE_MAX - 1, 2 ** 62, 2 ** 31])
def test_c_lengths_and_counts(c_model, length):
    """Lengths and counts above 2^31 - 1 are refused before anything is read or allocated (they used to reach
    basic_string::_M_create: APX_ERROR_INTERNAL)."""
    lib = c_model.lib
    status, _ = c_model.run_text(b"abc", length)
    assert status == INVALID_ARGUMENT and b"length" in lib.apx_last_error(), lib.apx_last_error()
    ids = (ctypes.c_int64 * 2)(1, 2)
    result = ctypes.c_void_p()
    assert lib.apx_model_run_ids(c_model.model, ids, length, ctypes.byref(result)) == INVALID_ARGUMENT
    tokenizer = ctypes.c_void_p()
    assert lib.apx_tokenizer_from_json(b"{}", length, ctypes.byref(tokenizer)) == INVALID_ARGUMENT
    assert b"length" in lib.apx_last_error()


@pytest.mark.parametrize("call", [
    lambda m, r: m.run(text="a b", truncation=True, max_length=2 ** 70),
    lambda m, r: m.run(text="a b", token_budget=2 ** 70),
    lambda m, r: m.run(text="a b", token_budget=0),
    lambda m, r: m.run(ids=[2 ** 63]),
    lambda m, r: m.run(ids=[-2 ** 63 - 1]),
    lambda m, r: m.run_windows(text="a b", window=2 ** 70),
    lambda m, r: r.top_arcs(1, k=2 ** 70),
    lambda m, r: r.top_arcs(1, k=0),
    lambda m, r: r.linking_heads(0, 1, k=-1),
    lambda m, r: r.attention(2 ** 40),
    lambda m, r: r.attention(-1, 2 ** 40),
    lambda m, r: r.top_arcs(2 ** 70),
    lambda m, r: r.subset_proximity([2 ** 64]),
    lambda m, r: r.average_attention([2 ** 33]),
    lambda m, r: attnprox_load(m.path, layers=2 ** 40),
])
def test_python_numbers_out_of_range(gpt2, call):
    import attnprox

    model = attnprox.load(gpt2)
    result = model.run(text="The cat sat on the mat.")
    with pytest.raises(attnprox.Error) as caught:
        call(model, result)
    assert "incompatible function arguments" not in str(caught.value)


def attnprox_load(*args, **kwargs):
    import attnprox

    return attnprox.load(*args, **kwargs)


# --- 12. messages -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("inputs", [["--text", ""], ["--file", "/dev/null"], ["--ids", "99999999999999999999"],
                                    ["--ids", "-99999999999999999999"]])
def test_cli_bad_inputs_are_messages_not_tracebacks(gpt2, inputs):
    for extra in ([], ["--json"]):
        out = cli("score", gpt2, *inputs, *extra)
        assert out.returncode == 1, out.stderr
        assert "Traceback" not in out.stderr and "Invoked with" not in out.stderr, out.stderr
        assert "no tokens" in out.stderr or "outside the vocabulary" in out.stderr, out.stderr


@pytest.mark.parametrize("kwargs, words", [
    ({"text": 5}, "text must be"),
    ({"text": [5]}, "str"),
    ({"text": None, "ids": None}, "exactly one"),
    ({"ids": {1: 2}}, "ids must be"),
    ({"ids": {1, 2}}, "ids must be"),
    ({"ids": 7}, "ids must be"),
    ({"text": "a\udc00b"}, "not valid Unicode"),
    ({"ids": [2 ** 63]}, "outside the vocabulary"),
    ({"ids": [[1, 2], [2 ** 64]]}, "outside the vocabulary"),
])
def test_python_wrong_types_are_clear(gpt2, kwargs, words):
    import attnprox

    model = attnprox.load(gpt2)
    with pytest.raises(attnprox.InvalidArgumentError, match=words):
        model.run(**kwargs)


def test_load_argument_types(gpt2):
    import attnprox

    for kwargs in ({"path": 5}, {"path": gpt2, "device": 0}, {"path": gpt2, "dtype": 16}):
        with pytest.raises(attnprox.InvalidArgumentError):
            attnprox.load(**kwargs)


def test_forward_failure_says_the_cause_first(gpt2, tmp_path):
    """A forward that fails inside TorchScript: the message starts with the cause, not the 2.8 KB traceback."""
    import attnprox

    real_vocab = attnprox.load(gpt2).vocab_size
    broken = rewrite_model_file(gpt2, str(tmp_path / "broken.apx"),
                                manifest=lambda m: m.update(vocab_size=m["vocab_size"] + 100))
    model = attnprox.load(broken)
    with pytest.raises(attnprox.ComputeError) as caught:
        model.run(ids=[1, real_vocab + 10])
    message = str(caught.value)
    assert message.startswith("model forward failed: index out of range in self"), message
    assert "Traceback" not in message and len(message) < 400, message


def test_manifest_with_invalid_utf8_gives_a_message(gpt2, tmp_path):
    import attnprox

    bad = tmp_path / "bad-utf8.apx"
    with zipfile.ZipFile(gpt2) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("extra/attnprox/manifest.json"):
                data = data.replace(b'"family"', b'"fam\xff\xfeily"', 1)
            zout.writestr(item, data)
    with pytest.raises(attnprox.InvalidModelError) as caught:
        attnprox.load(str(bad))
    assert str(caught.value).strip(), "empty message"
    c = C(str(bad))
    assert c.status == INVALID_MODEL
    assert c.error.strip(), "empty C message"
    c.error.decode("utf-8")  # valid UTF-8
    c.close()


def test_float16_on_the_cpu_says_so(gpt2):
    import attnprox

    try:
        model = attnprox.load(gpt2, dtype="float16")
    except attnprox.UnsupportedError as e:
        assert "float16 is not supported on the CPU" in str(e), str(e)
        assert "exported with torch" not in str(e), str(e)
    else:  # a libtorch whose CPU kernels run float16
        assert model.dtype == "float16"


def test_unreadable_model_files(gpt2, tmp_path):
    """A path whose parent is a file (works as root) and a file without read permission (needs a user that is not
    root: the check drops to 'nobody' in a child process when run as root)."""
    import attnprox

    parent = tmp_path / "a-file"
    parent.write_text("x")
    with pytest.raises(attnprox.Error) as caught:
        attnprox.load(str(parent / "model.apx"))
    assert "cannot be read" in str(caught.value) and "does not exist" not in str(caught.value), str(caught.value)
    c = C(str(parent / "model.apx"))
    assert c.status == INVALID_ARGUMENT and b"cannot be read" in c.error
    c.close()

    folder = "/tmp/attnprox-unreadable-%d" % os.getpid()
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o755)
    locked = os.path.join(folder, "locked.apx")
    with open(gpt2, "rb") as src, open(locked, "wb") as dst:
        dst.write(src.read())
    os.chmod(locked, 0)
    try:
        code = ("import attnprox\ntry:\n    attnprox.load(%r)\nexcept attnprox.Error as e:\n    print(e)\n" % locked)
        env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))

        def drop():
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, preexec_fn=drop,
                             timeout=120, cwd="/")
        if "Permission denied" in out.stderr and "import" in out.stderr.lower():
            pytest.skip("the build folder is not readable by the unprivileged user: " + out.stderr[-200:])
        assert "cannot be read: Permission denied" in out.stdout, out.stdout + out.stderr
    finally:
        os.chmod(locked, 0o644)
        os.remove(locked)
        os.rmdir(folder)

