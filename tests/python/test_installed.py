"""After the README's set-up, `import attnprox` works from any folder with /usr/bin/python3 and the `attnprox`
command is on the PATH. tools/test.sh runs the set-up first and sets ATTNPROX_CHECK_INSTALL=1."""
import os
import subprocess

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("ATTNPROX_CHECK_INSTALL") != "1",
                                reason="checks the installed package; run through tools/test.sh")


def clean_env():
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATTNPROX_BUILD_DIR")}


def test_import_from_anywhere(tmp_path):
    out = subprocess.run(["/usr/bin/python3", "-c", "import attnprox; print(attnprox.__version__, attnprox.__file__)"],
                         cwd=tmp_path, env=clean_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "site-packages" in out.stdout or "dist-packages" in out.stdout


def test_command_on_path(tmp_path):
    out = subprocess.run(["attnprox", "--version"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("attnprox ")
