#!/usr/bin/python3
"""Does the set-up install everything attnprox's code imports and links? (tools/check-deps.sh runs this.)

A fresh Debian 12 machine has only what the set-up scripts install: the packages named in their calls of
`tools/apt-need.sh` (tools/setup.sh, and the test-only list in tools/test.sh), and what those packages depend on.
A package installed by hand on the machine that runs the tests hides a missing name until a fresh machine fails.
This check finds such packages before that:

- Python: every absolute `import x` / `from x import y` (read with `ast`) in python/, tests/, examples/,
  benchmarks/ and tools/, less the standard library and the tree's own modules, is located with
  importlib.util.find_spec and its file mapped to a Debian package with `dpkg-query -S`.
- Shared libraries: every library that `ldd` resolves for the build's libraries, Python module and test and
  benchmark executables, less the build tree's own, is mapped to its Debian package the same way.

Each package must be in the closure of the named packages under `apt-cache depends --recurse` (Depends and
Pre-Depends only: what `apt-get install --no-install-recommends` brings). A module that is not installed here
at all fails too, unless its import is optional: inside `try: ... except ImportError` (or ModuleNotFoundError),
through `pytest.importorskip("x")`, or listed with its reason in tools/optional-python-modules.txt.

    /usr/bin/python3 tools/check_deps.py [--root DIR] [--setup-script FILE]... [--optional FILE]
                                          [--build DIR | --no-libraries] [--list]

Exit status: 0 all is installed by the set-up; 1 problems, one line each; 2 the check could not run.
Standard library only. The closure is generous (every alternative of a dependency counts), so the check misses a
package that only an alternative apt would not choose brings; it never fails a package the set-up does install.
"""
import argparse
import ast
import fnmatch
import glob
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections import defaultdict, namedtuple

SCANNED_DIRS = ("python", "tests", "examples", "benchmarks", "tools")
SKIPPED_DIRS = {"node_modules", "__pycache__"}
# The project's own modules that are not .py files of the tree: the compiled bindings module.
OWN_MODULES = {"attnprox", "_core"}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}
DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")

# One import of a module: where, and why it may be missing (None when it may not).
ImportSite = namedtuple("ImportSite", "module path line optional")


class CheckError(Exception):
    """The check itself cannot run (a missing tool, an unreadable set-up script): exit status 2."""


# ---------------------------------------------------------------------------------------------------- Python

class _ImportVisitor(ast.NodeVisitor):
    """Collects the absolute imports of one file, each marked optional when a `try` whose handlers catch
    ImportError guards it, or when it is `pytest.importorskip("x")`."""

    def __init__(self, path):
        self.path = path
        self.sites = []
        self._guard = None

    def _add(self, name, node, optional=None):
        self.sites.append(ImportSite(name.split(".")[0], self.path, node.lineno, optional or self._guard))

    def visit_Import(self, node):
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node):
        if node.level == 0 and node.module:  # relative imports are the tree's own
            self._add(node.module, node)

    def visit_Call(self, node):
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "importorskip" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            self._add(node.args[0].value, node, "pytest.importorskip")
        self.generic_visit(node)

    def visit_Try(self, node):
        guarded = any(_catches_import_error(handler) for handler in node.handlers)
        outer = self._guard
        if guarded:
            self._guard = "try/except ImportError"
        for statement in node.body:
            self.visit(statement)
        self._guard = outer
        for part in (node.handlers, node.orelse, node.finalbody):
            for statement in part:
                self.visit(statement)

    visit_TryStar = visit_Try


def _catches_import_error(handler):
    caught = handler.type
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(isinstance(name, ast.Name) and name.id in IMPORT_ERRORS for name in names)


def python_files(root):
    """The .py files of the scanned folders, as paths relative to root, sorted."""
    found = []
    for top in SCANNED_DIRS:
        for folder, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
            found += [os.path.relpath(os.path.join(folder, f), root) for f in files if f.endswith(".py")]
    return sorted(found)


def own_modules(root, files):
    """Top-level module names the tree itself provides: .py files outside packages (tests and examples put their
    folders on sys.path) and its top-level packages (folders with an __init__.py whose parent has none). A file
    inside a package, such as attnprox/reference/safetensors.py, is importable only through its package."""
    names = set(OWN_MODULES)
    packages = {os.path.dirname(path) for path in files if os.path.basename(path) == "__init__.py"}
    for path in files:
        folder = os.path.dirname(path)
        if folder not in packages:
            names.add(os.path.splitext(os.path.basename(path))[0])
        elif os.path.dirname(folder) not in packages:
            names.add(os.path.basename(folder))
    return names


def read_allowlist(path):
    """tools/optional-python-modules.txt: `module  where (a glob relative to the root)  why`, # comments."""
    entries = []
    if path is None or not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split(None, 2)
            if len(fields) < 3:
                raise CheckError(f"{path}:{number}: expected `module  where  why`, found {line!r}")
            entries.append((fields[0], fields[1], fields[2], number))
    return entries


def scan_imports(root, files, allowlist):
    """Every third-party import site of the tree; and the allowlist entries that match none (stale)."""
    stdlib = set(sys.stdlib_module_names)
    own = own_modules(root, files)
    sites, problems = [], []
    for path in files:
        try:
            with open(os.path.join(root, path), encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
        except (SyntaxError, UnicodeDecodeError) as error:
            problems.append(f"{path}: cannot be read as Python ({error}), so its imports are not checked")
            continue
        visitor = _ImportVisitor(path)
        visitor.visit(tree)
        sites += [s for s in visitor.sites if s.module not in stdlib and s.module not in own]
    used = set()
    for i, site in enumerate(sites):
        if site.optional:
            continue
        for module, where, _, number in allowlist:
            if module == site.module and fnmatch.fnmatch(site.path, where):
                sites[i] = site._replace(optional="listed in the optional modules")
                used.add(number)
                break
    stale = [entry for entry in allowlist if entry[3] not in used]
    return sites, stale, problems


def module_files(name):
    """Files that stand for an importable top-level module (its __init__.py, a .py or extension file, or a
    file inside a namespace package), or None when it cannot be imported here."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and os.path.isfile(spec.origin):
        return spec.origin
    for location in spec.submodule_search_locations or []:
        for folder, _, files in os.walk(location):
            for f in sorted(files):
                if not f.endswith(".pyc"):
                    return os.path.join(folder, f)
    return None


# ---------------------------------------------------------------------------------------------------- Debian

def shown_path(path, root):
    """A path as messages show it: relative to the root when inside it."""
    path = os.path.abspath(path)
    return os.path.relpath(path, root) if path.startswith(os.path.join(root, "")) else path


def setup_packages(scripts, root):
    """The packages named in `tools/apt-need.sh` calls of the set-up scripts: {package: script}."""
    named = {}
    for script in scripts:
        try:
            with open(script, encoding="utf-8") as f:
                text = f.read()
        except OSError as error:
            raise CheckError(f"cannot read the set-up script {script}: {error}") from None
        shown = shown_path(script, root)
        for line in text.replace("\\\n", " ").splitlines():  # continued lines joined
            if "apt-need.sh" not in line.split("#", 1)[0]:
                continue
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.commenters = "#"
            tokens = list(lexer)
            for i, token in enumerate(tokens):
                if os.path.basename(token) != "apt-need.sh":
                    continue
                for word in tokens[i + 1:]:
                    if word and set(word) <= set("();&|<>"):
                        break  # the end of the command
                    if not DEBIAN_PACKAGE.match(word):
                        raise CheckError(f"{shown}: an apt-need.sh call names {word!r}, which is not a Debian "
                                         "package name (only literal names can be checked)")
                    named.setdefault(word, shown)
    if not named:
        raise CheckError(f"no tools/apt-need.sh call found in {', '.join(scripts)}")
    return named


def dependency_closure(packages):
    """The packages that installing `packages` with --no-install-recommends can bring: apt-cache's recursive
    Depends/Pre-Depends, every alternative and every provider of a virtual package included."""
    command = ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
               "--no-breaks", "--no-replaces", "--no-enhances"] + sorted(packages)
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
    except FileNotFoundError:
        raise CheckError("apt-cache is not installed (the check needs Debian's apt)") from None
    if done.returncode != 0:
        raise CheckError(f"apt-cache depends failed: {done.stderr.strip()}")
    closure = set()
    for line in done.stdout.splitlines():
        if line and not line[0].isspace() and not line.startswith("<"):
            closure.add(line.split(":", 1)[0])
    return closure


def merged_usr_twin(path):
    """/lib/x → /usr/lib/x and back: Debian 12 ships files under either while both reach the same file."""
    for short in ("/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin"):
        if path.startswith(short + "/"):
            return "/usr" + path
        if path.startswith("/usr" + short + "/"):
            return path[len("/usr"):]
    return None


def candidates(path):
    """The names under which dpkg may know a file: as given, resolved, and the merged-/usr twin of each."""
    names = [path, os.path.realpath(path)]
    names += [twin for twin in map(merged_usr_twin, names) if twin]
    return list(dict.fromkeys(names))


def owning_packages(paths):
    """{path: set of installed packages that ship it (by any of its names)} with one dpkg-query call."""
    asked = {path: candidates(path) for path in paths}
    every = sorted({name for names in asked.values() for name in names})
    if not every:
        return {}
    try:
        done = subprocess.run(["dpkg-query", "-S", "--"] + every, capture_output=True, text=True,
                              env=dict(os.environ, LC_ALL="C"))
    except FileNotFoundError:
        raise CheckError("dpkg-query is not installed (the check needs Debian's dpkg)") from None
    shipped = defaultdict(set)
    for line in done.stdout.splitlines():
        if line.startswith("diversion by") or ": " not in line:
            continue
        packages, path = line.split(": ", 1)
        shipped[path.strip()] |= {p.strip().split(":", 1)[0] for p in packages.split(",")}
    return {path: set().union(*(shipped.get(name, set()) for name in names)) for path, names in asked.items()}


# ---------------------------------------------------------------------------------------------------- libraries

def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def built_binaries(build):
    """The build's libraries (lib/), Python module (python/attnprox/_core*.so) and the test, benchmark and fuzzer
    executables, each once (symlinks resolved)."""
    found = []
    lib = os.path.join(build, "lib")
    if os.path.isdir(lib):
        found += [os.path.join(lib, f) for f in sorted(os.listdir(lib)) if ".so" in f]
    core = os.path.join(build, "python", "attnprox")
    if os.path.isdir(core):
        found += [os.path.join(core, f) for f in sorted(os.listdir(core)) if f.startswith("_core") and ".so" in f]
    for top in ("tests", "benchmarks", "fuzz"):
        for folder, dirs, files in os.walk(os.path.join(build, top)):
            dirs[:] = sorted(d for d in dirs if d != "CMakeFiles" and not d.startswith("."))
            found += [os.path.join(folder, f) for f in sorted(files)
                      if os.access(os.path.join(folder, f), os.X_OK)]
    unique = {}
    for path in found:
        real = os.path.realpath(path)
        if os.path.isfile(real) and is_elf(real):
            unique.setdefault(real, path)
    return sorted(unique.values())


LDD_RESOLVED = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)\s+\(0x[0-9a-f]+\)\s*$")
LDD_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")
LDD_DIRECT = re.compile(r"^\s*(/\S+)\s+\(0x[0-9a-f]+\)\s*$")  # the dynamic loader itself


def linked_libraries(binary):
    """[(soname, resolved path or None)] of one binary, from ldd."""
    try:
        done = subprocess.run(["ldd", binary], capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
    except FileNotFoundError:
        raise CheckError("ldd is not installed (the check needs it for the shared libraries)") from None
    if done.returncode != 0:
        raise CheckError(f"ldd {binary} failed: {(done.stderr or done.stdout).strip()}")
    libraries = []
    for line in done.stdout.splitlines():
        if m := LDD_RESOLVED.match(line):
            libraries.append((m.group(1), m.group(2)))
        elif m := LDD_NOT_FOUND.match(line):
            libraries.append((m.group(1), None))
        elif m := LDD_DIRECT.match(line):
            libraries.append((os.path.basename(m.group(1)), m.group(1)))
    return libraries


# ---------------------------------------------------------------------------------------------------- the check

def importers(sites):
    """`path:line` of the first import, and how many other files import the module too."""
    others = len({s.path for s in sites} - {sites[0].path})
    more = f" and {others} more file{'s' if others > 1 else ''}" if others else ""
    return f"{sites[0].path}:{sites[0].line}{more}"


def debian_guess(module):
    """The usual Debian name of a module's package, when apt knows such a package (for the message only)."""
    name = "python3-" + module.lower().replace("_", "-")
    done = subprocess.run(["apt-cache", "show", "--no-all-versions", name], capture_output=True, text=True)
    return name if done.returncode == 0 and done.stdout.strip() else None


def dev_package(package):
    """The installed -dev package that depends on a library's package (what a build names), or None."""
    done = subprocess.run(["apt-cache", "rdepends", "--installed", "--no-recommends", "--no-suggests",
                           "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", package],
                          capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
    names = sorted({line.strip().lstrip("|") for line in done.stdout.splitlines()[2:] if line.startswith(" ")})
    return next((name for name in names if name.endswith("-dev")), None)


# The binaries named first in messages: the libraries, then the Python module, then tests and benchmarks.
BINARY_ORDER = ("lib/", "python/", "tests/", "fuzz/", "benchmarks/")


class SetUp:
    """What the set-up scripts install: the packages their apt-need.sh calls name and the closure of those."""

    def __init__(self, scripts, root):
        self.named = setup_packages(scripts, root)
        self.closure = dependency_closure(self.named)
        self.scripts = list(dict.fromkeys(shown_path(s, root) for s in scripts))
        self.by = " and ".join(self.scripts)

    def unknown(self):
        """(problems, notes) for named packages apt does not know: a problem, unless apt has no package lists at all
        (they were removed after installing; apt-need.sh runs `apt-get update` before it installs anything)."""
        unknown = [f"{script} names {package}, which apt does not know" for package, script in self.named.items()
                   if package not in self.closure]
        if unknown and not glob.glob("/var/lib/apt/lists/*_Packages*"):
            return [], [f"{line} (apt has no package lists here: apt-get update)" for line in unknown]
        return unknown, []

    def where_to_add(self, paths):
        """The script a package belongs in: the test-only list when only tests and benchmarks need it."""
        test_only = all(p.startswith(("tests/", "benchmarks/", "fuzz/")) for p in paths)
        wanted = "tools/test.sh" if test_only else "tools/setup.sh"
        return wanted if wanted in self.scripts else self.scripts[0]


def check_python(root, setup, allowlist_path):
    """({module: its packages}, problems, notes, the optional modules the set-up does not install)."""
    allowlist = read_allowlist(allowlist_path)
    sites, stale, problems = scan_imports(root, python_files(root), allowlist)
    allow_shown = shown_path(allowlist_path, root)
    problems += [f"{allow_shown}:{number}: `{module}  {where}` matches no import: remove it"
                 for module, where, _, number in stale]
    by_module = defaultdict(list)
    for site in sites:
        by_module[site.module].append(site)
    files = {module: module_files(module) for module in by_module}
    owners = owning_packages([f for f in files.values() if f])
    found, notes, optional = {}, [], []
    for module in sorted(by_module):
        required = [s for s in by_module[module] if not s.optional]
        shown = importers(required or by_module[module])
        path = files[module]
        packages = owners.get(path, set()) if path else set()
        if packages & setup.closure:
            found[module] = sorted(packages & setup.closure)
            continue
        if not required:
            optional.append(module)
            if path:
                source = f"from {sorted(packages)[0]}" if packages else f"as {path}, which no Debian package ships"
                notes.append(f"optional Python module {module} ({shown}) is installed here {source}, and not by "
                             f"{setup.by}: a fresh machine runs without it")
            continue
        where = setup.where_to_add([s.path for s in required])
        if path is None:
            guess = debian_guess(module)
            hint = f": add {guess} to the apt-need.sh call in {where}" if guess else ""
            problems.append(f"Python module {module} (imported by {shown}) is not installed here{hint}; or guard "
                            f"the import (try/except ImportError) or list it, with the reason, in {allow_shown}")
        elif not packages:
            problems.append(f"Python module {module} (imported by {shown}) is {path}, which no Debian package ships "
                            "(installed by hand?): install it through a Debian package that the set-up names")
        else:
            package = sorted(packages)[0]
            problems.append(f"Python module {module} (imported by {shown}) comes from Debian package {package}, which "
                            f"{setup.by} do not install: add {package} to the apt-need.sh call in {where}")
    return found, problems, notes, optional


# The binaries named first in messages: the libraries, then the Python module, then tests and benchmarks.
BINARY_ORDER = ("lib/", "python/", "tests/", "fuzz/", "benchmarks/")


def _binary_order(path):
    return next((i for i, top in enumerate(BINARY_ORDER) if path.startswith(top)), len(BINARY_ORDER)), path


def check_libraries(build, setup):
    """({library path: its packages}, problems) for the shared libraries the build's binaries link."""
    binaries = built_binaries(build)
    if not binaries:
        raise CheckError(f"no built libraries or executables in {build} (build first, or --no-libraries)")
    problems = []
    needed = defaultdict(set)  # resolved library -> the binaries (relative to the build) that need it
    for binary in binaries:
        for soname, path in linked_libraries(binary):
            if path is None:
                problems.append(f"shared library {soname} (needed by {os.path.relpath(binary, build)}) is not found "
                                "by the dynamic loader")
            elif not os.path.realpath(path).startswith(build + os.sep):  # the build's own libraries are the project's
                needed[path].add(os.path.relpath(binary, build))
    owners = owning_packages(needed)
    found = {}
    for path in sorted(needed):
        users = sorted(needed[path], key=_binary_order)
        shown = users[0] + (f" and {len(users) - 1} more" if len(users) > 1 else "")
        packages = owners.get(path, set())
        if packages & setup.closure:
            found[path] = sorted(packages & setup.closure)
        elif not packages:
            problems.append(f"shared library {path} (needed by {shown}) is in no Debian package (installed by "
                            "hand?): build against a library from a Debian package that the set-up names")
        else:
            package = sorted(packages)[0]
            dev = dev_package(package)
            add = f"{dev} (which depends on {package})" if dev else package
            problems.append(f"shared library {path} (needed by {shown}) comes from Debian package {package}, which "
                            f"{setup.by} do not install: add {add} to the apt-need.sh call in "
                            f"{setup.where_to_add(users)}")
    return found, problems


def count(mapping, what):
    return f"{len(mapping)} {what} -> {len({p for packages in mapping.values() for p in packages})} Debian packages"


def check(args):
    root = os.path.abspath(args.root)
    scripts = args.setup_script or [os.path.join(root, "tools", "setup.sh"), os.path.join(root, "tools", "test.sh")]
    setup = SetUp(scripts, root)
    allowlist = args.optional or os.path.join(root, "tools", "optional-python-modules.txt")
    modules, problems, notes, optional = check_python(root, setup, allowlist)
    unknown, unlisted = setup.unknown()
    problems, notes = unknown + problems, unlisted + notes
    libraries = {}
    if not args.no_libraries:
        libraries, more = check_libraries(os.path.realpath(args.build or os.path.join(root, "build")), setup)
        problems += more

    if args.list:
        for name, packages in list(modules.items()) + list(libraries.items()):
            print(f"  {name:60} {', '.join(packages)}")
    for note in notes:
        print(f"check-deps: note: {note}")
    for problem in problems:
        print(f"check-deps: {problem}")
    if problems:
        return 1
    linked = "shared libraries not checked" if args.no_libraries else count(libraries, "shared libraries")
    print(f"check-deps: {count(modules, 'Python modules')}; {linked}; all installed by {setup.by}")
    if optional:
        print(f"check-deps: optional modules, not installed by the set-up: {', '.join(optional)} (guarded by "
              f"try/except ImportError or pytest.importorskip, or listed in {shown_path(allowlist, root)})")
    return 0


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    # Only the interpreter's own path finds modules: not this folder, whose scripts are the tree's own.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", default=os.path.dirname(here), help="the tree to scan (default: this repository)")
    parser.add_argument("--setup-script", action="append",
                        help="a set-up script whose apt-need.sh calls install packages (repeatable; default: "
                             "ROOT/tools/setup.sh and ROOT/tools/test.sh)")
    parser.add_argument("--optional",
                        help="the list of optional modules (default: ROOT/tools/optional-python-modules.txt)")
    parser.add_argument("--build", help="the build folder whose binaries are checked (default: ROOT/build)")
    parser.add_argument("--no-libraries", action="store_true", help="check the Python modules only")
    parser.add_argument("--list", action="store_true", help="print every module and library with its package")
    args = parser.parse_args(argv)
    try:
        return check(args)
    except CheckError as error:
        print(f"check-deps: cannot check: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
