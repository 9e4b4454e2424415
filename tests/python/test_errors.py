"""Every kind of bad input raises a clear attnprox error that is also the matching built-in exception."""
import builtins
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import attnprox
import attnprox.reference as reference_package
from attnprox.reference.common import ReferenceModelError
from conftest import BUILD, FIXTURES, rewrite_model_file


def test_missing_model_file(tmp_path):
    with pytest.raises(attnprox.ModelNotFoundError, match="does not exist"):
        attnprox.load(tmp_path / "absent.apx")
    with pytest.raises(FileNotFoundError):
        attnprox.load(tmp_path / "absent.apx")


def test_files_that_are_not_model_files(tmp_path):
    text = tmp_path / "notes.apx"
    text.write_text("hello")
    with pytest.raises(attnprox.InvalidModelError, match="not a TorchScript archive"):
        attnprox.load(text)
    archive = tmp_path / "plain.apx"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "x")
    with pytest.raises(attnprox.InvalidModelError, match="could not be loaded as a TorchScript module"):
        attnprox.load(archive)
    with pytest.raises(attnprox.InvalidArgumentError, match="is a directory"):
        attnprox.load(tmp_path)


def test_archive_without_manifest(tmp_path):
    import torch

    path = tmp_path / "bare.apx"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(attnprox.InvalidModelError, match="without an attnprox manifest"):
        attnprox.load(path)


def test_manifest_inconsistent_with_forward(tmp_path, exported):
    """Rewrite a good file's manifest to claim 8 heads: loading must refuse it, naming the shapes."""
    src = exported("gpt2")

    def eight_heads(m):
        m["num_heads"] = m["num_kv_heads"] = 8

    bad = rewrite_model_file(src, tmp_path / "eight-heads.apx", manifest=eight_heads)
    with pytest.raises(attnprox.InvalidModelError, match=r"returned queries of shape \[1, 4, 2, 8\] at layer 0"):
        attnprox.load(bad)


def test_file_from_another_torch_names_both_versions(tmp_path, exported):
    """A file written by a newer torch, using an operator this libtorch does not know, is refused with a message
    that names the torch that exported it and the libtorch that tried to load it."""
    src = exported("gpt2")
    replaced = 0

    def newer_torch(m):
        m["exporter"]["torch"] = "99.1.0"

    def unknown_operator(name, text):
        nonlocal replaced
        if not name.endswith("code/__torch__/attnprox/reference/gpt2.py"):
            return text
        replaced = text.count("torch.addmm(")
        return text.replace("torch.addmm(", "torch.attnprox_operator_from_the_future(")

    bad = rewrite_model_file(src, tmp_path / "from-the-future.apx", manifest=newer_torch, code=unknown_operator)
    assert replaced > 0
    with pytest.raises(attnprox.InvalidModelError) as caught:
        attnprox.load(bad)
    message = str(caught.value)
    assert "exported with torch 99.1.0" in message
    assert f"libtorch {attnprox.torch_version()}" in message
    assert "attnprox_operator_from_the_future" in message  # libtorch's own reason is kept


def test_file_written_by_torch_2_11(tmp_path):
    """tests/fixtures/foreign/gpt2-torch-2.11.apx was exported by `attnprox export` with torch 2.11 and
    transformers 5.17 (tests/gpu/check_exporter.py); it uses aten::scaled_dot_product_attention, which libtorch 1.13
    does not know. Where the loader is older, the error names the operator and both versions."""
    path = os.path.join(os.path.dirname(FIXTURES), "foreign", "gpt2-torch-2.11.apx")
    major_minor = tuple(int(x) for x in attnprox.torch_version().split("+")[0].split(".")[:2])
    if major_minor >= (2, 1):  # a loader that knows the operator runs the file
        assert attnprox.load(path).run(ids=[1, 2, 3]).attention(-1).shape == (2, 3, 3)
        return
    with pytest.raises(attnprox.InvalidModelError) as caught:
        attnprox.load(path)
    message = str(caught.value)
    assert "scaled_dot_product_attention" in message
    assert "exported with torch 2.11.0+cu130" in message and f"libtorch {attnprox.torch_version()}" in message


def test_traced_file_runs_on_its_device_only(tmp_path, exported):
    moved = rewrite_model_file(exported("gpt2"), tmp_path / "traced-on-cuda.apx",
                               manifest=lambda m: m["exporter"].update(device="cuda"))
    with pytest.raises(attnprox.UnsupportedError, match="was traced on cuda and runs there only, not on cpu"):
        attnprox.load(moved)


def test_bad_ids(exported):
    model = attnprox.load(exported("gpt2"))  # 96 ids, 32 positions
    with pytest.raises(attnprox.InvalidArgumentError, match=r"outside the vocabulary \(0..95\)"):
        model.run(ids=[1, 200])
    with pytest.raises(ValueError, match="has 40 tokens, the model has 32 positions"):
        model.run(ids=[1] * 40)
    with pytest.raises(attnprox.InvalidArgumentError, match="empty"):
        model.run(ids=[])
    with pytest.raises(attnprox.InvalidArgumentError, match="expected an integer token id"):
        model.run(ids=[1, 2.5])
    with pytest.raises(attnprox.InvalidArgumentError, match="not a string"):
        model.run(ids="1 2 3")
    with pytest.raises(attnprox.InvalidArgumentError, match="exactly one of"):
        model.run()
    with pytest.raises(attnprox.UnsupportedError, match="tokenizer"):
        model.run(text="hello")
    assert len(model.run(ids=np.array([3, 4, 5]))) == 3
    assert [len(r) for r in model.run(ids=np.array([[3, 4, 5], [6, 7, 8]]))] == [3, 3]


def test_out_of_range_layers_and_heads(exported):
    result = attnprox.load(exported("llama", [1])).run(ids=[1, 2, 3])
    with pytest.raises(attnprox.OutOfRangeError, match=r"not captured in this model file \(captured: 1\)"):
        result.attention(0)
    with pytest.raises(IndexError, match="the model has 3 layers"):
        result.queries(5)
    with pytest.raises(IndexError, match=r"head 4 requested, the model has 4 heads \(0..3\)"):
        result.attention(1, head=4)
    with pytest.raises(IndexError, match="head -1"):
        result.average_attention(heads=[-1])


def test_device_and_dtype_errors(exported):
    import torch

    if torch.cuda.is_available():  # a CUDA build on a GPU machine: "cuda" is the current device, named
        assert attnprox.load(exported("gpt2"), device="cuda").device == "cuda:0"
    else:
        with pytest.raises(attnprox.UnsupportedError, match="without CUDA"):
            attnprox.load(exported("gpt2"), device="cuda")
    with pytest.raises(attnprox.InvalidArgumentError, match="not a device name"):
        attnprox.load(exported("gpt2"), device="gpu7")
    with pytest.raises(attnprox.InvalidArgumentError, match="dtype \"int4\" is not supported"):
        attnprox.load(exported("gpt2"), dtype="int4")


def test_export_reference_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        attnprox.export_reference(str(tmp_path / "nope"), str(tmp_path / "m.apx"))
    odd = tmp_path / "t5"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ReferenceModelError, match="model_type 't5' has no reference architecture"):
        attnprox.export_reference(str(odd), str(tmp_path / "m.apx"))
    # An attnprox.Error (ExportError, a RuntimeError) that is still the ValueError it was.
    for kind in (ReferenceModelError, attnprox.ExportError, attnprox.Error, RuntimeError, ValueError):
        with pytest.raises(kind, match="model_type 't5' has no reference architecture"):
            attnprox.export_reference(str(odd), str(tmp_path / "m.apx"))
    assert reference_package.ReferenceError is ReferenceModelError and ReferenceModelError.__name__ == "ReferenceModelError"
    assert ReferenceModelError is not builtins.ReferenceError
    assert not issubclass(ReferenceModelError, builtins.ReferenceError)
    with pytest.raises(ValueError, match="layer 7 requested, the model has 3 layers"):
        attnprox.export_reference(os.path.join(FIXTURES, "llama"), str(tmp_path / "m.apx"), layers=[7])
    with pytest.raises(ValueError, match="expected 'all', 'last' or comma-separated"):
        attnprox.export_reference(os.path.join(FIXTURES, "llama"), str(tmp_path / "m.apx"), layers="first")


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    return subprocess.run([sys.executable, "-m", "attnprox", *args], capture_output=True, text=True, env=env)


def test_command_line(exported, tmp_path):
    path = exported("bert")
    info = run_cli("info", path)
    assert info.returncode == 0, info.stderr
    assert "H=4 query, Hkv=4" in info.stdout and "bidirectional" in info.stdout
    score = run_cli("score", path, "--ids", "5,6,7,8", "--ids", "9,10", "--json")
    assert score.returncode == 0, score.stderr
    rows = json.loads(score.stdout)
    result = attnprox.load(path).run(ids=[5, 6, 7, 8])
    assert rows[0]["n"] == 4 and rows[0]["ap"] == pytest.approx(result.ap(), rel=1e-12)
    nothing = run_cli("score", path)
    assert nothing.returncode == 2 and "give --text, --file or --ids" in nothing.stderr
    missing = run_cli("score", str(tmp_path / "none.apx"), "--ids", "1,2")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    bad = run_cli("score", path, "--ids", "1,x")
    assert bad.returncode == 2 and "comma-separated integer token ids" in bad.stderr
    out = tmp_path / "cli.apx"
    export = run_cli("export-reference", os.path.join(FIXTURES, "qwen3"), str(out), "--layers", "last")
    assert export.returncode == 0, export.stderr
    assert attnprox.load(out).captured_layers == [2]


def test_export_without_transformers_says_what_is_missing(tmp_path):
    """attnprox.export goes through transformers (checked on the GPU machine by tests/gpu/check_exporter.py);
    where it is not installed, the error says so and points to export_reference."""
    try:
        import transformers  # noqa: F401
        pytest.skip("transformers is installed here")
    except ImportError:
        pass
    with pytest.raises(attnprox.ExportError, match="needs the `transformers` package.*export_reference"):
        attnprox.export(str(tmp_path), str(tmp_path / "x.apx"))
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    done = subprocess.run([sys.executable, "-m", "attnprox", "export", str(tmp_path), str(tmp_path / "x.apx")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "transformers" in done.stderr
    helped = subprocess.run([sys.executable, "-m", "attnprox", "export", "--help"], capture_output=True, text=True,
                            env=env)
    assert helped.returncode == 0 and "--layers" in helped.stdout and "output_attentions" in helped.stdout
