"""tools/check-deps.sh: every third-party Python module the code imports and every shared library the build links
must come from a Debian package that the set-up (tools/setup.sh, tools/test.sh) installs, so that the README's
commands work on a fresh Debian 12 machine. The check passes on this tree and fails, naming the package to add, on
a copy whose set-up leaves that package out."""
import importlib.util
import os
import re
import subprocess
import textwrap

from conftest import BUILD, ROOT

CHECKER = os.path.join(ROOT, "tools", "check_deps.py")
NO_SUCH_MODULE = "attnprox_check_deps_no_such_module"


def checker_module():
    spec = importlib.util.spec_from_file_location("check_deps", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(*args, env=None):
    return subprocess.run(["/usr/bin/python3", CHECKER, *args], capture_output=True, text=True, timeout=120, env=env)


def make_tree(root, files, setup_packages=None, remove=()):
    """A small tree to check: `files` {relative path: Python text}, and tools/setup.sh and tools/test.sh copied
    from this repository with the packages in `remove` taken out of their apt-need.sh calls, or, with
    `setup_packages`, one set-up script installing exactly those."""
    for path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), "w") as f:
            f.write(textwrap.dedent(text))
    tools = os.path.join(root, "tools")
    os.makedirs(tools, exist_ok=True)
    if setup_packages is not None:
        with open(os.path.join(tools, "setup.sh"), "w") as f:
            f.write(f'#!/usr/bin/env bash\n"$(dirname "$0")/apt-need.sh" {" ".join(setup_packages)}\n')
        with open(os.path.join(tools, "test.sh"), "w") as f:
            f.write('#!/usr/bin/env bash\n"$(dirname "$0")/setup.sh"\n"$(dirname "$0")/apt-need.sh" python3-pytest\n')
        return
    for script in ("setup.sh", "test.sh"):
        with open(os.path.join(ROOT, "tools", script)) as f:
            text = f.read()
        for package in remove:
            text = re.sub(rf"(?<=\s){re.escape(package)}(?=\s)", "", text)
            assert not re.search(rf"\s{re.escape(package)}\s", text)
        with open(os.path.join(tools, script), "w") as f:
            f.write(text)


def problems(done):
    return [line for line in done.stdout.splitlines() if line.startswith("check-deps: ") and "note:" not in line]


def test_this_tree_passes():
    env = dict(os.environ, ATTNPROX_BUILD_DIR=BUILD)
    done = subprocess.run([os.path.join(ROOT, "tools", "check-deps.sh")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = r"check-deps: \d+ Python modules -> \d+ Debian packages; \d+ shared libraries -> \d+ Debian packages; " \
              r"all installed by tools/setup\.sh and tools/test\.sh"
    assert any(re.fullmatch(summary, line) for line in done.stdout.splitlines()), done.stdout


def test_module_of_a_package_the_setup_leaves_out_fails(tmp_path):
    """matplotlib and tqdm are installed here, but with python3-matplotlib and python3-tqdm taken out of
    tools/setup.sh nothing the set-up names brings them: the check names each module, the file importing it and the
    package to add, in tools/setup.sh for the package's code, in tools/test.sh's list when only tests use it."""
    files = {"python/pkg/__init__.py": "", "python/pkg/plots.py": "import numpy\nimport matplotlib.pyplot as plt\n",
             "tests/test_progress.py": "import pytest\nfrom tqdm import tqdm\n"}
    make_tree(tmp_path / "full", files)
    done = check("--root", str(tmp_path / "full"), "--no-libraries")
    assert done.returncode == 0, done.stdout + done.stderr

    make_tree(tmp_path / "cut", files, remove=["python3-matplotlib", "python3-tqdm"])
    done = check("--root", str(tmp_path / "cut"), "--no-libraries")
    assert done.returncode == 1, done.stdout + done.stderr
    assert problems(done) == [
        "check-deps: Python module matplotlib (imported by python/pkg/plots.py:2) comes from Debian package "
        "python3-matplotlib, which tools/setup.sh and tools/test.sh do not install: add python3-matplotlib to the "
        "apt-need.sh call in tools/setup.sh",
        "check-deps: Python module tqdm (imported by tests/test_progress.py:2) comes from Debian package python3-tqdm, "
        "which tools/setup.sh and tools/test.sh do not install: add python3-tqdm to the apt-need.sh call in "
        "tools/test.sh"]


def test_package_that_a_named_package_depends_on_is_installed_by_the_setup(tmp_path):
    """python3-numpy is not named below, but python3-matplotlib depends on it."""
    files = {"examples/plot.py": "import numpy\nimport matplotlib\n"}
    make_tree(tmp_path, files, setup_packages=["python3-matplotlib"])
    done = check("--root", str(tmp_path), "--no-libraries")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("check-deps: 2 Python modules -> 2 Debian packages")


GUARDED = f"""\
try:
    import {NO_SUCH_MODULE}.sub
except {{caught}}:
    {NO_SUCH_MODULE} = None
"""

# Imports of a module that is not installed here: {file: (text, whether the check fails on it)}.
NOT_INSTALLED = {
    "tests/gpu/plain.py": (f"import os\nimport {NO_SUCH_MODULE}\n", True),
    "tests/gpu/from_sub.py": (f"from {NO_SUCH_MODULE}.sub import thing\n", True),
    "tests/gpu/guarded.py": (GUARDED.format(caught="ImportError"), False),
    "tests/gpu/guarded_tuple.py": (GUARDED.format(caught="(ValueError, ModuleNotFoundError)"), False),
    "tests/gpu/other_error.py": (GUARDED.format(caught="ValueError"), True),
    "tests/gpu/in_handler.py": (f"try:\n    pass\nexcept ImportError:\n    import {NO_SUCH_MODULE}\n", True),
    "tests/gpu/skipped.py": (f"import pytest\nmod = pytest.importorskip('{NO_SUCH_MODULE}')\n", False),
    "tests/gpu/listed/check.py": (f"import {NO_SUCH_MODULE}\n", False),
    "tests/gpu/own.py": ("import helper\nfrom helper import thing\nfrom . import sibling\n", False),
}


def test_module_not_installed_here_fails_unless_its_import_is_optional(tmp_path):
    """Optional: inside try/except ImportError (or ModuleNotFoundError), pytest.importorskip, or listed in
    tools/optional-python-modules.txt for that file. The tree's own modules are not third-party."""
    files = {path: text for path, (text, _) in NOT_INSTALLED.items()}
    allowlist = f"# module  where  why\n{NO_SUCH_MODULE}  tests/gpu/listed/*.py  the GPU machine has it\n"
    files.update({"tests/gpu/helper.py": "thing = 1\n", "tests/gpu/sibling.py": "",
                  "tools/optional-python-modules.txt": allowlist})
    make_tree(tmp_path, files, setup_packages=["python3"])
    done = check("--root", str(tmp_path), "--no-libraries")
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = problems(done)
    failing = sorted(path for path, (_, fails) in NOT_INSTALLED.items() if fails)
    assert line.startswith(f"check-deps: Python module {NO_SUCH_MODULE} (imported by {failing[0]}:")
    assert f" and {len(failing) - 1} more files) is not installed here" in line

    for path in failing:
        os.remove(tmp_path / path)
    done = check("--root", str(tmp_path), "--no-libraries")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"optional modules, not installed by the set-up: {NO_SUCH_MODULE} " in done.stdout


def test_stale_allowlist_line_and_unknown_package_fail(tmp_path):
    files = {"tests/check.py": "import os\n",
             "tools/optional-python-modules.txt": "# module  where  why\nnot_imported  tests/*.py  it was, once\n"}
    make_tree(tmp_path, files, setup_packages=["python3", "python3-no-such-package"])
    done = check("--root", str(tmp_path), "--no-libraries")
    assert done.returncode == 1
    assert problems(done) == [
        "check-deps: tools/setup.sh names python3-no-such-package, which apt does not know",
        "check-deps: tools/optional-python-modules.txt:2: `not_imported  tests/*.py` matches no import: remove it"]


def test_library_of_a_package_the_setup_leaves_out_fails(tmp_path):
    """The build links Oniguruma (libonig5, brought by libonig-dev); with libonig-dev taken out of tools/setup.sh,
    the check names the library, a binary that needs it and its package."""
    make_tree(tmp_path, {}, remove=["libonig-dev"])
    scripts = [a for s in ("setup.sh", "test.sh") for a in ("--setup-script", str(tmp_path / "tools" / s))]
    done = check("--root", ROOT, "--build", BUILD, *scripts)
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = problems(done)
    assert re.fullmatch(r"check-deps: shared library /(usr/)?lib/[^/]+/libonig\.so\.5 \(needed by "
                        r"lib/libattnprox\S* and \d+ more\) comes from Debian package libonig5, which \S+/setup\.sh "
                        r"and \S+/test\.sh do not install: add libonig-dev \(which depends on libonig5\) to the "
                        r"apt-need\.sh call in \S+/setup\.sh", line), line


def test_file_dpkg_knows_under_the_other_side_of_merged_usr_is_found():
    """Debian 12 ships libc6's files under /lib and most others under /usr/lib, and on merged /usr both names reach
    the same file; ldd may print either. dpkg knows only the shipped name, so the check asks for both."""
    shipped = subprocess.run(["dpkg-query", "-L", "libc6"], capture_output=True, text=True, check=True).stdout
    libc = next(path for path in shipped.splitlines() if path.startswith("/lib/") and path.endswith("/libc.so.6"))
    owners = checker_module().owning_packages(["/usr" + libc, "/no/such/file.so"])
    assert owners == {"/usr" + libc: {"libc6"}, "/no/such/file.so": set()}
