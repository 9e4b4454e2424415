"""Every code block of README.md runs, taken from the README itself (no copy that can drift): Python blocks with
the interpreter of the tests, shell blocks with bash (`set -euo pipefail`) and the build's `attnprox` command, C and
C++ blocks compiled against the build tree and run. A block preceded by `<!-- not run: REASON -->` is not run; each
such block must say why, and there are only a few.

Every block runs in one folder prepared as the README describes it: `my-model/` (a copy of the default model's
Hugging Face directory), `model.apx` (its model file), `essay.txt` (a text longer than the default model's 1,024
positions), `texts.txt` (three lines) and `onestopenglish/` (three of the corpus's articles at the three levels).
The blocks run in the README's order and may use what an earlier block wrote, as a reader following it would.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT, data_path

README = os.path.join(ROOT, "README.md")
FENCE = re.compile(r"(?:<!-- not run: (?P<reason>[^>]*?) -->\n)?^```(?P<lang>[a-z]+)\n(?P<code>.*?)^```\s*$",
                   re.S | re.M)
ARTICLES = ["Amazon", "Banksy", "Bolivia"]


def readme_blocks():
    """(line, language, code, reason not run or None) of every fenced block of README.md."""
    text = open(README, encoding="utf-8").read()
    return [(text.count("\n", 0, m.start("code")) + 1, m.group("lang"), m.group("code"), m.group("reason"))
            for m in FENCE.finditer(text)]


BLOCKS = readme_blocks()
RUN = [b for b in BLOCKS if b[3] is None]


def test_the_readme_has_blocks_and_says_why_any_is_not_run():
    text = open(README, encoding="utf-8").read()
    assert len(BLOCKS) == text.count("\n```") // 2 + (1 if text.startswith("```") else 0), "a fence was not parsed"
    languages = {lang for _, lang, _, _ in RUN}
    assert {"python", "sh", "c", "cpp"} <= languages, languages
    not_run = [(line, reason) for line, _, _, reason in BLOCKS if reason is not None]
    assert all(reason.strip() for _, reason in not_run)
    assert len(not_run) <= 3, f"more blocks are not run than the three documented: {not_run}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The folder the README's blocks run in."""
    import attnprox

    d = tmp_path_factory.mktemp("readme")
    shutil.copytree(os.path.join(ROOT, "models", "default"), d / "my-model")
    attnprox.export_reference(str(d / "my-model"), str(d / "model.apx"))
    model = attnprox.load(str(d / "model.apx"))
    long_texts = sorted(glob.glob(os.path.join(data_path("onestopenglish"), "Adv-Txt", "*.txt")))
    essay = next(t for t in (open(f, encoding="utf-8-sig").read() for f in long_texts)
                 if len(model.tokenizer.encode(t)) > 1.2 * model.max_positions)
    (d / "essay.txt").write_text(essay, encoding="utf-8")
    (d / "texts.txt").write_text("The bank by the river was steep.\nthe sky is blue\n\nTell me a story.\n",
                                 encoding="utf-8")
    corpus = data_path("onestopenglish")
    for level, sub in (("ele", "Ele-Txt"), ("int", os.path.join("Int-Txt", "Int-Txt")), ("adv", "Adv-Txt")):
        os.makedirs(d / "onestopenglish" / sub)
        for name in ARTICLES:
            os.symlink(os.path.join(corpus, sub, f"{name}-{level}.txt"), d / "onestopenglish" / sub / f"{name}-{level}.txt")
    return d


def environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(BUILD, "python")
    env["PATH"] = os.path.join(BUILD, "bin") + os.pathsep + env.get("PATH", "")
    return env


def compile_flags():
    """The include directories and definitions the library itself is compiled with (compile_commands.json)."""
    commands = json.load(open(os.path.join(BUILD, "compile_commands.json")))
    command = next(c["command"] for c in commands if c["file"].endswith(os.path.join("lib", "engine", "model.cpp")))
    flags = command.split()
    keep = []
    for k, flag in enumerate(flags):
        if flag.startswith(("-I", "-D")) and flag != "-Dattnprox_EXPORTS":
            keep.append(flag)
        elif flag == "-isystem":
            keep += [flag, flags[k + 1]]
    return keep


def run_block(lang, code, cwd):
    env = environment()
    if lang == "python":
        return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=900)
    if lang == "sh":
        return subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=900)
    lib = os.path.join(BUILD, "lib")
    if lang == "c":
        source, program = os.path.join(cwd, "readme.c"), os.path.join(cwd, "readme-c")
        open(source, "w").write(code)
        build = ["cc", "-std=c99", "-Wall", "-Werror", source, "-I", os.path.join(ROOT, "include"), "-I",
                 os.path.join(BUILD, "include"), "-L", lib, "-lattnprox_c", f"-Wl,-rpath,{lib}", "-o", program]
    else:
        source, program = os.path.join(cwd, "readme.cpp"), os.path.join(cwd, "readme-cpp")
        open(source, "w").write(code)
        build = (["c++", "-std=c++17", "-O0", "-Wall", "-Werror", "-D_GLIBCXX_USE_CXX11_ABI=1", source]
                 + compile_flags() + ["-L", lib, "-lattnprox", "-ltorch", "-ltorch_cpu", "-lc10", f"-Wl,-rpath,{lib}",
                                      "-o", program])
    built = subprocess.run(build, cwd=cwd, capture_output=True, text=True, timeout=900)
    if built.returncode != 0:
        return built
    return subprocess.run([program], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("block", RUN, ids=[f"line{line}-{lang}" for line, lang, _, _ in RUN])
def test_readme_block_runs(block, folder):
    line, lang, code, _ = block
    done = run_block(lang, code, str(folder))
    assert done.returncode == 0, f"README.md line {line} ({lang}) failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip() or lang == "python" and "print(" not in code, f"README.md line {line} printed nothing"
    # Whatever the block says it writes is there.
    for name in re.findall(r"""["' ]([\w./-]+\.(?:png|svg|pdf|html|apx))\b""", code):
        assert (folder / name).exists(), f"README.md line {line}: {name} was not written"
