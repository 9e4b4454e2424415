"""Tests of the HTML view (attnprox.html_view): the document itself (self-contained, escaped, validated payload),
and the interactions end to end in headless Chromium through tests/html/test_view.mjs.

    ATTNPROX_JS_MODULES=/work/main/build/js /usr/bin/python3 -m pytest -q tests/html

The browser test needs ATTNPROX_JS_MODULES (a folder whose node_modules holds playwright-core), node and
/usr/bin/chromium, and is skipped otherwise. Its screenshots go to $ATTNPROX_TEST_ARTIFACTS/html-view-n<N>/
when that variable is set, else into pytest's tmp_path.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("ATTNPROX_BUILD_DIR", ROOT / "build"))
NODE_TEST = Path(__file__).with_name("test_view.mjs")
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ("01-initial.png", "02-click.png", "03-shift-click.png", "04-ctrl-click.png", "05-drag.png")

# Twelve tokens: plain ones, whitespace, non-ASCII, and markup that must stay text.
LABELS = ["tok0", " the", '<b>&"', " caf\u00e9", " \u65e5\u672c\u8a9e", "tok5", "\n", "  ", "</script>", " it's",
          " \U0001f600", "tok11"]
# A long text: the heatmap's labels must thin out.
LONG_LABELS = [("\n" if i % 40 == 39 else f" w{i}") for i in range(300)]


if (BUILD / "python" / "attnprox").is_dir():
    sys.path.insert(0, str(BUILD / "python"))
from attnprox import html_view  # noqa: E402  (the build's package, as tests/python/conftest.py imports it)


def make_payload(labels, seed=11, causal=False):
    """A payload as the producer would make it, from a random symmetric matrix (diagonal raised, as q_i . k_i
    often is) and random softmax attention (masked above the diagonal when `causal`), with statistics computed
    the way the library defines them."""
    n = len(labels)
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, n))
    proximity = (raw + raw.T) / 2 + 2.0 + 4.0 * np.eye(n)
    ap_tokens = (proximity.sum(axis=1) - np.diag(proximity)) / (n - 1)
    logits = 2.0 * rng.normal(size=(n, n))
    if causal:
        logits = np.where(np.arange(n)[None, :] <= np.arange(n)[:, None], logits, -np.inf)
    attention = np.exp(logits - logits.max(axis=1, keepdims=True))
    attention /= attention.sum(axis=1, keepdims=True)
    entropy = -(attention * np.log(np.where(attention > 0, attention, 1.0))).sum(axis=1)
    visible = np.arange(1, n + 1) if causal else np.full(n, n)
    # APE, "shift" policy: row i without A_ii, shifted to start at 0, as a distribution.
    rows = proximity[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    shifted = rows - rows.min(axis=1, keepdims=True)
    p = shifted / shifted.sum(axis=1, keepdims=True)
    iape = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
    candidates = np.where(visible[:, None] >= 2, attention, -1.0)  # queries that see two keys or more
    max_query, max_key = np.unravel_index(np.argmax(candidates), attention.shape)
    normalized = np.where(visible > 1, entropy / np.log(np.maximum(visible, 2)), 0.0)
    return {
        "title": "synthetic \u00b7 layer 11 <i>&</i>",
        "tokens": list(labels),
        "proximity": proximity.tolist(),
        "ap_tokens": ap_tokens.tolist(),
        "attention": attention.tolist(),
        "causal": causal,
        "sliding_window": None,
        "stats": {
            "tokens": n, "ap": float(ap_tokens.mean()), "ape": float(iape.mean()),
            "ape_normalized": float((iape / math.log(n - 1)).mean()), "ape_undefined_rows": 0,
            "mean_entropy": float(entropy.mean()), "mean_normalized_entropy": float(normalized.mean()),
            "max_weight": float(attention[max_query, max_key]), "max_query": int(max_query), "max_key": int(max_key),
            "most_attended": int(np.argmax(attention.sum(axis=0))), "layer": 11, "temperature": 1.0,
        },
    }


def embedded_data(page: str) -> dict:
    """The payload as the page's script receives it."""
    match = re.search(r"attnproxView\(root, (.*)\);\n\}\)\(\);", page)
    assert match, "the page does not call attnproxView"
    return json.loads(match.group(1))


# ---- The document, without a browser. ----

def test_self_contained():
    page = html_view.render_html(make_payload(LABELS))
    assert page.startswith("<!DOCTYPE html>")
    assert page.isascii()
    assert not re.search(r"https?://", page, re.IGNORECASE)
    assert not re.search(r"<(link|img|iframe)\b|\bsrc\s*=|@import|url\(", page, re.IGNORECASE)
    assert "<script>" in page and "<style>" in page


def test_labels_and_title_escaped():
    payload = make_payload(LABELS)
    page = html_view.render_html(payload, title="<b>view</b> & \u00e9")
    assert page.count("</script") == 1  # the page's own closing tag: "</script>" the label stays inside a string
    assert '<b>&"' not in page and "<b>view</b>" not in page and "<i>" not in page
    assert "<title>&lt;b&gt;view&lt;/b&gt; &amp; &#233;</title>" in page
    data = embedded_data(page)
    assert data["tokens"] == LABELS
    assert data["title"] == payload["title"]
    assert data["proximity"] == payload["proximity"] and data["attention"] == payload["attention"]
    assert data["stats"] == payload["stats"]


def test_unique_root_ids():
    payload = make_payload(LABELS)
    ids = [re.search(r'<div class="apx-view" id="(apx-[0-9a-f]+)">', html_view.render_html(payload)).group(1)
           for _ in range(2)]
    assert ids[0] != ids[1]


def test_numpy_arrays_and_undefined_ape():
    payload = make_payload(LABELS)
    for key in ("proximity", "attention", "ap_tokens"):
        payload[key] = np.asarray(payload[key], dtype=np.float32)
    payload["stats"].update(ape=None, ape_normalized=float("nan"), ape_undefined_rows=12,
                            max_query=np.int64(3), temperature=np.float32(0.5))
    stats = embedded_data(html_view.render_html(payload))["stats"]
    assert stats["ape"] is None and stats["ape_normalized"] is None
    assert stats["max_query"] == 3 and stats["temperature"] == 0.5


def _malformed():
    """(name, change to a valid payload, text the error names)."""
    def setting(path, value):
        def change(p):
            *parents, last = path
            for key in parents:
                p = p[key]
            p[last] = value
        return change

    def delete(path):
        def change(p):
            *parents, last = path
            for key in parents:
                p = p[key]
            del p[last]
        return change

    def asymmetric(p):
        p["proximity"][0][1] += 0.5

    def unnormalised(p):
        p["attention"][4] = [x * 2 for x in p["attention"][4]]

    def transposed_attention(p):
        p["attention"] = np.asarray(p["attention"]).T.tolist()

    n = len(LABELS)
    return [
        ("empty dict", lambda p: p.clear(), "missing"),
        ("no tokens key", delete(["tokens"]), "'tokens'"),
        ("title not str", setting(["title"], 3), "title"),
        ("tokens empty", setting(["tokens"], []), "tokens"),
        ("token not str", setting(["tokens", 3], 7), r"tokens'\]\[3\]"),
        ("proximity wrong shape", setting(["proximity"], [[0.0] * n] * (n - 1)), "shape"),
        ("proximity ragged", setting(["proximity", 2], [1.0]), "proximity"),
        ("proximity strings", setting(["proximity", 2, 2], "1.5"), "proximity"),
        ("proximity None", setting(["proximity", 2, 2], None), "proximity"),
        ("proximity NaN", setting(["proximity", 2, 2], float("nan")), "finite"),
        ("proximity asymmetric", asymmetric, "symmetric"),
        ("attention negative", setting(["attention", 1, 1], -0.1), "negative"),
        ("attention rows", unnormalised, "row 4"),
        ("attention transposed", transposed_attention, "sum to 1"),
        ("ap_tokens short", setting(["ap_tokens"], [0.0] * (n - 1)), "ap_tokens"),
        ("stats not dict", setting(["stats"], [1, 2]), "stats"),
        ("stats key missing", delete(["stats", "mean_entropy"]), "mean_entropy"),
        ("stats tokens", setting(["stats", "tokens"], n + 1), "tokens"),
        ("stats float for int", setting(["stats", "layer"], 1.5), "layer"),
        ("stats bool", setting(["stats", "max_key"], True), "max_key"),
        ("stats ap None", setting(["stats", "ap"], None), "'ap'"),
        ("stats ap infinite", setting(["stats", "ap"], float("inf")), "finite"),
        ("stats query out of range", setting(["stats", "max_query"], n), "max_query"),
        ("stats undefined rows", setting(["stats", "ape_undefined_rows"], -1), "ape_undefined_rows"),
        ("causal not bool", setting(["causal"], "yes"), "causal"),
        ("window zero", setting(["sliding_window"], 0), "sliding_window"),
        ("weight on a masked key", setting(["causal"], True), "query 0 weight on key 1, which it cannot see"),
    ]


@pytest.mark.parametrize("name,change,message", _malformed(), ids=[m[0] for m in _malformed()])
def test_malformed_payload_raises(name, change, message):
    payload = make_payload(LABELS)
    change(payload)
    with pytest.raises(ValueError, match=message):
        html_view.render_html(payload)


def test_payload_not_a_mapping():
    with pytest.raises(ValueError, match="dict"):
        html_view.render_html([1, 2, 3])


# ---- The interactions, in headless Chromium. ----

def _browser_missing():
    if not os.environ.get("ATTNPROX_JS_MODULES"):
        return "ATTNPROX_JS_MODULES is not set (a folder whose node_modules holds playwright-core)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.mark.parametrize("labels, causal", [(LABELS, False), (LONG_LABELS, False), (LABELS, True)],
                         ids=["n12", "n300", "n12-causal"])
def test_view_in_chromium(tmp_path, labels, causal):
    reason = _browser_missing()
    if reason:
        # tools/test.sh installs the browser and sets ATTNPROX_REQUIRE_BROWSER=1: there a missing browser fails.
        if os.environ.get("ATTNPROX_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    payload = make_payload(labels, causal=causal)
    page = tmp_path / "view.html"
    page.write_text(html_view.render_html(payload, title="attnprox view test"), encoding="utf-8")
    payload_path = tmp_path / "payload.json"
    payload_path.write_text(json.dumps(payload), encoding="utf-8")
    artefacts_root = os.environ.get("ATTNPROX_TEST_ARTIFACTS")
    artefacts = ((Path(artefacts_root) if artefacts_root else tmp_path) /
                 f"html-view-n{len(labels)}{'-causal' if causal else ''}")
    artefacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(page, artefacts / "view.html")

    result = subprocess.run(["node", str(NODE_TEST), str(page), str(payload_path), str(artefacts)],
                            capture_output=True, text=True, timeout=300)
    print(result.stdout, result.stderr, sep="")
    assert result.returncode == 0, f"test_view.mjs failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    assert "PASS" in result.stdout
    for name in SCREENSHOTS:
        assert (artefacts / name).stat().st_size > 0, f"{name} is empty"
