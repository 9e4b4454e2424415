"""The HTML view in headless Chromium for the tests: runs tests/html/test_view.mjs on a page with a scenario of steps
and returns its record of what the page showed; and the rules the checks share with the page (histogram bins, top
arcs, colour ranges).

The browser tests need ATTNPROX_JS_MODULES (a folder whose node_modules holds playwright-core), node and
/usr/bin/chromium; they are skipped without them, and fail instead when ATTNPROX_REQUIRE_BROWSER=1 (tools/test.sh).
Screenshots and records go to $ATTNPROX_TEST_ARTIFACTS/<name>/ when that variable is set, else into pytest's
tmp_path.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
NODE_TEST = HERE / "test_view.mjs"
CHROMIUM = "/usr/bin/chromium"
BINS = 100  # the page's histogram


def missing() -> Optional[str]:
    if not os.environ.get("ATTNPROX_JS_MODULES"):
        return "ATTNPROX_JS_MODULES is not set (a folder whose node_modules holds playwright-core)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def require():
    """Skips the test without a browser, or fails it where the browser is required."""
    reason = missing()
    if reason:
        if os.environ.get("ATTNPROX_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def artefacts(name: str, tmp_path: Path) -> Path:
    root = os.environ.get("ATTNPROX_TEST_ARTIFACTS")
    folder = (Path(root) if root else tmp_path) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run(page: Path, steps: list, out: Path, timeout: int = 300) -> dict:
    """Runs the scenario on the page (file) in Chromium; returns the record (steps by name in record["by_name"]).
    Fails the test on a script error, a console error or a request outside file://."""
    require()
    scenario = out / "scenario.json"
    scenario.write_text(json.dumps({"steps": steps}), encoding="utf-8")
    done = subprocess.run(["node", str(NODE_TEST), str(page), str(scenario), str(out)], capture_output=True,
                          text=True, timeout=timeout)
    print(done.stdout, done.stderr, sep="")
    record_path = out / "record.json"
    assert record_path.exists(), f"test_view.mjs wrote no record ({done.returncode}):\n{done.stdout}{done.stderr}"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    assert done.returncode == 0 and not record["errors"], "\n".join(record["errors"]) or done.stderr
    assert not record["outside"], f"requests outside file://: {record['outside']}"
    record["by_name"] = {entry["name"]: entry for entry in record["steps"]}
    return record


def panel(record: dict, step: str, index: int = 0) -> dict:
    return record["by_name"][step]["state"]["panels"][index]


def values(state_panel: dict) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in state_panel["values"]], dtype=np.float64)


def bin_of(v: float, lo: float, hi: float) -> int:
    """The page's histogram bin of a value: BINS equal bins over [lo, hi], values beyond in the end bins."""
    if not hi > lo:
        return BINS // 2
    return int(min(BINS - 1, max(0, np.floor((v - lo) / (hi - lo) * BINS))))


def fitted(v: np.ndarray) -> tuple:
    """The range the page's colour scales fit to values (NaN left out; a flat set gets a range around it)."""
    v = v[~np.isnan(v)]
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        pad = abs(lo) * 0.5 or 0.5
        return lo - pad, hi + pad
    return lo, hi


def top_arcs(row: np.ndarray, visible: np.ndarray, k: int = 5) -> list:
    """(key, weight) of the k largest weights of a row over the visible keys, ties by position."""
    keys = [j for j in range(len(row)) if visible[j]]
    keys.sort(key=lambda j: (-row[j], j))
    return [(j, float(row[j])) for j in keys[:k]]


def assert_close(shown, expected, tolerance, what: str):
    shown = np.asarray(shown, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert shown.shape == expected.shape, f"{what}: shape {shown.shape}, expected {expected.shape}"
    both_nan = np.isnan(shown) & np.isnan(expected)
    difference = np.where(both_nan, 0.0, np.abs(shown - expected))
    bound = np.broadcast_to(tolerance, difference.shape)
    worst = np.unravel_index(np.argmax(np.where(np.isnan(difference), np.inf, difference - bound)),
                             difference.shape) if difference.size else ()
    assert difference.size == 0 or (difference <= bound).all(), (
        f"{what}: at {worst} shown {shown[worst]}, expected {expected[worst]} (difference {difference[worst]:.3g}, "
        f"allowed {bound[worst]:.3g})")
