"""Every file attnprox writes is replaced only once complete (attnprox.files): a full disk or a failed write leaves
the file that was there, never a truncated one, and no temporary file; an output that is one of the inputs is
refused."""
import contextlib
import errno
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, FIXTURES


def cli(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    return subprocess.run([sys.executable, "-m", "attnprox", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@contextlib.contextmanager
def small_filesystem(path, size_bytes: int):
    """A tmpfs of `size_bytes` mounted at `path` (root only); skips when it cannot be mounted."""
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp") or ".tmp." in name)


def check_full_disk(tmp_path, command, name: str, spare: int):
    """`command(path)` (the CLI's arguments writing to `path`) over an existing file on a disk with room for one and a
    half copies and `spare` bytes: an error, exit 1, no abort, the old file unchanged and no temporary file left."""
    good = tmp_path / name
    out = cli(*command(good))
    assert out.returncode == 0, out.stderr
    size = os.path.getsize(good)
    with small_filesystem(tmp_path / "disk", size + size // 2 + spare) as disk:
        target = disk / name
        shutil.copyfile(good, target)
        before = target.read_bytes()
        out = cli(*command(target))
        assert out.returncode == 1, out.stderr
        assert "No space left on device" in out.stderr and "terminate called" not in out.stderr, out.stderr
        assert target.read_bytes() == before
        assert leftovers(disk) == []


def test_export_reference_over_a_file_on_a_full_disk(tmp_path):
    """`export-reference` over an existing model file (it used to abort in the stream writer's destructor and leave
    the file truncated)."""
    check_full_disk(tmp_path, lambda path: ("export-reference", os.path.join(FIXTURES, "gpt2"), str(path)),
                    "model.apx", 16384)


def test_heatmap_html_over_a_file_on_a_full_disk(tmp_path, text_models):
    check_full_disk(tmp_path, lambda path: ("heatmap", text_models["gpt2"], "--text", "The cat sat on the mat.",
                                            "--out", str(path)), "x.html", 8192)


@pytest.mark.parametrize("writer", ["html", "png", "json", "csv", "model"])
def test_an_injected_write_failure_keeps_the_old_file(tmp_path, text_models, monkeypatch, writer):
    """The write fails at its end (fsync raises ENOSPC): the old file stays, byte for byte, and no temporary file
    is left."""
    import attnprox
    from attnprox import files, plots

    result = attnprox.load(text_models["gpt2"]).run(text="The cat sat on the mat.")
    target = tmp_path / f"out.{ 'apx' if writer == 'model' else writer}"
    target.write_bytes(b"the good old contents")

    def write():
        if writer == "html":
            result.view().save(str(target))
        elif writer == "png":
            plots.save(plots.attention(result), str(target))
        elif writer == "json":
            from attnprox.view import _save_json

            _save_json({"a": 1}, str(target))
        elif writer == "csv":
            from attnprox.studies.report import write_stats_csv

            write_stats_csv({}, str(target))
        else:
            attnprox.export_reference(os.path.join(FIXTURES, "gpt2"), str(target))

    def failing_fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    with pytest.raises(OSError) as caught:
        write()
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"the good old contents"
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    write()  # and without the failure, the file is replaced
    assert target.read_bytes() != b"the good old contents"
    assert leftovers(tmp_path) == []


def test_replacing_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    from attnprox import files

    target = tmp_path / "x.json"
    target.write_text("{}")
    os.chmod(target, 0o640)
    files.write_text(target, "[]")
    assert target.read_text() == "[]" and (os.stat(target).st_mode & 0o777) == 0o640


def test_an_output_that_is_an_input_is_refused(tmp_path, text_models):
    gpt2 = text_models["gpt2"]
    text = tmp_path / "text.html"
    text.write_text("The cat sat on the mat.")
    os.symlink(text, tmp_path / "link.html")
    os.link(text, tmp_path / "hard.html")
    model_copy = tmp_path / "model.png"
    shutil.copyfile(gpt2, model_copy)
    for out_path in (text, tmp_path / "link.html", tmp_path / "hard.html"):
        out = cli("heatmap", gpt2, "--file", str(text), "--out", str(out_path))
        assert out.returncode == 1 and "same file as the input" in out.stderr, out.stderr
        assert text.read_text() == "The cat sat on the mat."
    out = cli("heatmap", str(model_copy), "--text", "a b", "--out", str(model_copy))
    assert out.returncode == 1 and "same file as the input" in out.stderr, out.stderr
    hf = tmp_path / "hf"
    shutil.copytree(os.path.join(FIXTURES, "gpt2"), hf)
    before = (hf / "config.json").read_bytes()
    out = cli("export-reference", str(hf), str(hf / "config.json"))
    assert out.returncode == 1 and "same file as the input" in out.stderr, out.stderr
    assert (hf / "config.json").read_bytes() == before
