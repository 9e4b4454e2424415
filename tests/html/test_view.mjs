// End-to-end test of the HTML view (attnprox/html_view.py) in a real headless Chromium, driven by Playwright.
//
//   ATTNPROX_JS_MODULES=/work/main/build/js node tests/html/test_view.mjs PAGE.html PAYLOAD.json OUTDIR
//
// ATTNPROX_JS_MODULES names a folder holding node_modules/ with playwright-core
// (npm install --prefix DIR playwright-core@1.64.1). The browser is Debian's Chromium, /usr/bin/chromium
// (apt-get install chromium), or ATTNPROX_CHROMIUM; Playwright's own browser downloads are never used.
//
// PAGE.html is render_html(PAYLOAD) written to a file; it is opened from file:// with every other request
// refused, and each check compares what the page shows with values computed here from PAYLOAD.json (needs at
// least 6 tokens):
//   - no request leaves file://, no script error, no console error;
//   - the token spans show the labels as text (no markup of theirs in the DOM);
//   - initial colours: each token's data-value equals ap_tokens, no selection;
//   - click token 2: S = {2}, values = A[2][j] (to 1e-6), token 2 outlined, arcs = top 5 of attention row 2;
//   - shift-click token 5: S = {2..5}, values = mean of rows 2..5, arcs of row 5;
//   - ctrl-click token 3: S = {2, 4, 5}, values = mean of rows 2, 4, 5, arcs of row 5;
//     meta-click 3 adds it back (arcs of row 3), and again removes it;
//   - dragging the text scale's max handle to the middle of the bar: scale-max between scale-min and the old
//     max, tokens beyond it share the end colour; reset restores the range;
//   - the heatmap's scale spans A's entries, and dragging its max handle re-colours the heatmap until reset;
//   - the statistics show the payload's AP to 4 decimals (and tokens, APE, layer);
//   - the heatmap's labels do not overlap (they thin out for long texts), a click on a row label selects its
//     token, a plain click on the only selected token and the clear button empty the selection;
//   - the page shown twice inline in a host page (as in a notebook): two independent views, host styles intact.
// Screenshots go to OUTDIR: 01-initial.png, 02-click.png, 03-shift-click.png, 04-ctrl-click.png, 05-drag.png.
// Prints one summary line; exits 0 when every check passed, 1 when one failed, 2 on a usage or set-up error.
import { createRequire } from "node:module";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const CHROMIUM = process.env.ATTNPROX_CHROMIUM || "/usr/bin/chromium";
// Without the background-networking flags Chromium keeps trying connections that this closed network refuses.
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                       "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TOLERANCE = 1e-6;
const ARCS = 5;

function fail(message) {
  process.stderr.write(`test_view: ${message}\n`);
  process.exit(2);
}

function playwright() {
  const dir = process.env.ATTNPROX_JS_MODULES;
  if (!dir) fail("set ATTNPROX_JS_MODULES to a folder that contains node_modules/playwright-core");
  // createRequire resolves bare names as a file in `dir` would: from dir/node_modules upwards.
  const require = createRequire(join(resolve(dir), "attnprox-html-test.cjs"));
  try {
    return require("playwright-core");
  } catch (e) {
    fail(`cannot load playwright-core from ${dir}: ${e.message}`);
  }
}

const [pagePath, payloadPath, outDir] = process.argv.slice(2);
if (!pagePath || !payloadPath || !outDir) fail("usage: node test_view.mjs PAGE.html PAYLOAD.json OUTDIR");
const payload = JSON.parse(readFileSync(payloadPath, "utf8"));
const n = payload.tokens.length;
if (n < 6) fail(`the payload needs at least 6 tokens, it has ${n}`);
mkdirSync(outDir, { recursive: true });

// ---- Expectations, from the payload alone. ----
const A = payload.proximity;
const P = payload.attention;
const subset = (S) => A[0].map((_, j) => S.reduce((sum, i) => sum + A[i][j], 0) / S.length);
// The keys a query sees: causal, k <= q (within a window W: q - k < W); bidirectional with a window, |q - k| <= W.
const W = payload.sliding_window || 0;
const sees = (q, k) => payload.causal ? k <= q && (!W || q - k < W) : !W || Math.abs(q - k) <= W;
const topArcs = (q) => P[q].map((w, k) => [k, w]).filter(([k]) => sees(q, k))
  .sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, ARCS);

// ---- Checks. ----
const failures = [];
let checks = 0;
function check(name, ok, detail = "") {
  checks += 1;
  if (!ok) {
    failures.push(name);
    process.stderr.write(`FAIL ${name}${detail ? `: ${detail}` : ""}\n`);
  }
}

function worstDifference(shown, expected) {
  let worst = 0;
  let at = -1;
  expected.forEach((e, j) => {
    const d = Math.abs(shown[j] - e);
    if (!(d <= worst)) { worst = d; at = j; } // NaN counts as worst
  });
  return { worst, at };
}

async function values(page) {
  return page.$$eval("[data-testid^='token-'][data-index]", (spans) =>
    spans.sort((a, b) => a.dataset.index - b.dataset.index).map((s) => Number(s.dataset.value)));
}

async function selection(page) {
  const indices = await page.getAttribute("[data-testid='selected-tokens']", "data-indices");
  const count = Number(await page.textContent("[data-testid='selection-count']"));
  const marked = await page.$$eval(".apx-tok.apx-selected", (spans) => spans.map((s) => Number(s.dataset.index)));
  return { indices: indices ? indices.split(",").map(Number) : [], count, marked: marked.sort((x, y) => x - y) };
}

async function arcs(page) {
  return page.$$eval("[data-testid^='arc-']", (items) =>
    items.map((li) => ({ key: Number(li.dataset.key), weight: Number(li.dataset.weight), text: li.textContent })));
}

async function checkState(page, name, S, focus) {
  const sel = await selection(page);
  const want = S.slice().sort((x, y) => x - y);
  const same = (list) => JSON.stringify(list) === JSON.stringify(want);
  check(`${name}: selection is {${want}}`, same(sel.indices) && sel.count === want.length,
        `shown {${sel.indices}}, count ${sel.count}`);
  check(`${name}: selected tokens are outlined`, same(sel.marked), `outlined {${sel.marked}}`);
  const { worst, at } = worstDifference(await values(page), want.length ? subset(want) : payload.ap_tokens);
  check(`${name}: colour values are ${want.length ? `AP^(S), S = {${want}}` : "ap_tokens"}`, worst <= TOLERANCE,
        `token ${at} differs by ${worst}`);
  const shown = await arcs(page);
  if (focus === null) {
    check(`${name}: no arcs listed`, shown.length === 0, `${shown.length} listed`);
    return;
  }
  const expected = topArcs(focus);
  const arcsMatch = shown.length === expected.length && expected.every(([k, w], r) =>
    shown[r].key === k && Math.abs(shown[r].weight - w) <= TOLERANCE && shown[r].text.includes("\u2014"));
  check(`${name}: arcs are the top ${ARCS} of attention row ${focus}`, arcsMatch,
        `shown ${JSON.stringify(shown.map((a) => a.key))}, expected ${JSON.stringify(expected.map((a) => a[0]))}`);
}

async function scale(page, prefix) {
  const read = async (id) => Number(await page.getAttribute(`[data-testid='${prefix}-${id}']`, "data-value"));
  return { min: await read("min"), max: await read("max") };
}

// Drags a scale's max handle with the mouse to the middle of its bar.
async function dragMaxToMiddle(page, prefix) {
  const handle = await page.locator(`[data-testid='${prefix}-handle-max']`).boundingBox();
  const track = await page.locator(`[data-testid='${prefix}-track']`).boundingBox();
  const y = handle.y + handle.height / 2;
  await page.mouse.move(handle.x + handle.width / 2, y);
  await page.mouse.down();
  await page.mouse.move(track.x + track.width / 2, y, { steps: 8 });
  await page.mouse.up();
}

// The label as the view writes it in the text, when it has no whitespace or control characters to show.
const plain = (label) => label !== "" && !/[\s\u0000-\u001f\u007f]/.test(label);

const { chromium } = playwright();
const userDataDir = mkdtempSync(join(tmpdir(), "attnprox-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1,
  });
} catch (e) {
  rmSync(userDataDir, { recursive: true, force: true });
  fail(`cannot start ${CHROMIUM}: ${e.message}`);
}

let summary;
try {
  const page = context.pages()[0] || await context.newPage();
  const outside = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:")) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });

  const started = Date.now();
  await page.goto(pathToFileURL(resolve(pagePath)).href);
  await page.waitForSelector(".apx-view[data-ready='true']", { timeout: 30000 });
  const loadMs = Date.now() - started;
  const shot = (name) => page.screenshot({ path: join(outDir, name), fullPage: true });
  const token = (j) => page.locator(`[data-testid='token-${j}']`);

  // Labels: shown as text, never as markup.
  const texts = await page.$$eval("[data-testid^='token-'][data-index]", (spans) =>
    spans.sort((a, b) => a.dataset.index - b.dataset.index).map((s) => s.textContent));
  check("one span per token", texts.length === n, `${texts.length} spans`);
  const wrong = payload.tokens.findIndex((label, j) => plain(label) && texts[j] !== label);
  check("token labels shown verbatim", wrong < 0, wrong < 0 ? "" : `token ${wrong}: ${JSON.stringify(texts[wrong])}`);
  check("no markup from the labels", await page.$$eval(".apx-flow *:not(span):not(br)", (nodes) => nodes.length) === 0);
  check("title shown", (await page.textContent("[data-testid='view-title']")) === payload.title);

  // Initial state, then the selection gestures.
  await checkState(page, "initial", [], null);
  await shot("01-initial.png");
  await token(2).click();
  await checkState(page, "click 2", [2], 2);
  await shot("02-click.png");
  await token(5).click({ modifiers: ["Shift"] });
  await checkState(page, "shift-click 5", [2, 3, 4, 5], 5);
  await shot("03-shift-click.png");
  await token(3).click({ modifiers: ["Control"] });
  await checkState(page, "ctrl-click 3", [2, 4, 5], 5);
  await shot("04-ctrl-click.png");

  // The text's colour scale: drag the max handle to the middle of the bar, then reset.
  const before = await scale(page, "scale");
  await dragMaxToMiddle(page, "scale");
  const dragged = await scale(page, "scale");
  check("drag: scale-max moves between min and the old max", dragged.max > before.min && dragged.max < before.max,
        `min ${before.min}, old max ${before.max}, new max ${dragged.max}`);
  check("drag: scale-min stays", dragged.min === before.min, `${before.min} -> ${dragged.min}`);
  const ends = await page.$$eval("[data-testid^='token-'][data-index]", (spans, top) =>
    spans.filter((s) => Number(s.dataset.value) >= top).map((s) => getComputedStyle(s).backgroundColor), dragged.max);
  check("drag: tokens beyond the max share the end colour", ends.length >= 1 && ends.every((c) => c === ends[0]),
        JSON.stringify(ends));
  check("drag: the values stay", worstDifference(await values(page), subset([2, 4, 5])).worst <= TOLERANCE);
  await shot("05-drag.png");
  await page.click("[data-testid='scale-reset']");
  const reset = await scale(page, "scale");
  check("reset restores the scale", reset.min === before.min && reset.max === before.max,
        `[${reset.min}, ${reset.max}], expected [${before.min}, ${before.max}]`);

  // The heatmap's own scale: A's range, and it re-colours the heatmap when dragged.
  const heat = await scale(page, "heatmap-scale");
  const flat = A.flat();
  check("heatmap scale is A's range", heat.min === Math.min(...flat) && heat.max === Math.max(...flat),
        `[${heat.min}, ${heat.max}]`);
  const pixels = () => page.$eval("[data-testid='heatmap']", (c) => c.toDataURL());
  const heatBefore = await pixels();
  await dragMaxToMiddle(page, "heatmap-scale");
  const heatDragged = await scale(page, "heatmap-scale");
  check("heatmap scale drag", heatDragged.max > heat.min && heatDragged.max < heat.max && await pixels() !== heatBefore,
        `new max ${heatDragged.max}`);
  await page.click("[data-testid='heatmap-scale-reset']");
  check("heatmap scale reset", (await scale(page, "heatmap-scale")).max === heat.max && await pixels() === heatBefore);

  // Cmd (meta) toggles like ctrl; the focus returns to the last added token still selected.
  await token(3).click({ modifiers: ["Meta"] });
  await checkState(page, "meta-click 3", [2, 3, 4, 5], 3);
  await token(3).click({ modifiers: ["Meta"] });
  await checkState(page, "meta-click 3 again", [2, 4, 5], 5);

  // Statistics.
  const stat = async (id) => ({
    text: (await page.textContent(`[data-testid='${id}']`)).trim(),
    value: await page.getAttribute(`[data-testid='${id}']`, "data-value"),
  });
  const s = payload.stats;
  const ap = await stat("stat-ap");
  check("stats: AP to 4 decimals", ap.text === s.ap.toFixed(4) && Number(ap.value) === s.ap,
        `shown ${ap.text} (${ap.value}), payload ${s.ap}`);
  check("stats: tokens", (await stat("stat-tokens")).text === String(s.tokens));
  const ape = await stat("stat-ape");
  check("stats: APE", s.ape === null ? ape.text.startsWith("undefined") : ape.text.startsWith(s.ape.toFixed(4)),
        ape.text);
  check("stats: layer", (await stat("stat-layer")).text === String(s.layer));

  // Heatmap labels: never overlapping, and clickable.
  const boxes = await page.$$eval("[data-testid^='row-label-']", (labels) =>
    labels.map((l) => l.getBoundingClientRect()).map((r) => [r.top, r.bottom]));
  const overlap = boxes.some(([top], k) => k > 0 && top < boxes[k - 1][1] - 0.5);
  check("heatmap: row labels do not overlap", boxes.length >= 1 && !overlap, `${boxes.length} labels`);
  const rowLabel = page.locator("[data-testid='row-label-0']");
  await rowLabel.click();
  await checkState(page, "click row label 0", [0], 0);

  // Clearing: a plain click on the only selected token, then the clear button.
  await token(0).click();
  await checkState(page, "click 0 again", [], null);
  await token(4).click();
  await page.click("[data-testid='clear-selection']");
  await checkState(page, "clear button", [], null);

  // Inline, as a notebook shows it: the same document twice inside a host page (innerHTML, then each script
  // re-created so that it runs, as JupyterLab does). Both views work on their own; the host keeps its styles.
  await page.goto("about:blank");
  const inline = await page.evaluate(async (html) => {
    document.body.innerHTML = "<p>host text</p><button>host button</button>";
    const style = (selector) => {
      const c = getComputedStyle(document.querySelector(selector));
      return [c.font, c.color, c.backgroundColor, c.padding].join("|");
    };
    const host = [style("body"), style("p"), style("button")].join(" ");
    for (let k = 0; k < 2; k++) {
      const output = document.body.appendChild(document.createElement("div"));
      output.innerHTML = html;
      for (const old of output.querySelectorAll("script")) {
        const script = document.createElement("script");
        script.textContent = old.textContent;
        old.replaceWith(script);
      }
    }
    const views = [...document.querySelectorAll(".apx-view")];
    const token = views[1] && views[1].querySelector("[data-testid='token-2']");
    if (token) token.click();
    return {
      ready: views.filter((v) => v.dataset.ready === "true").length,
      counts: views.map((v) => [...v.querySelectorAll("[data-testid='selection-count']")].map((c) => c.textContent).join()),
      hostUnchanged: host === [style("body"), style("p"), style("button")].join(" "),
    };
  }, readFileSync(pagePath, "utf8"));
  check("inline twice: both views built", inline.ready === 2, `${inline.ready} built`);
  check("inline twice: views independent", JSON.stringify(inline.counts) === JSON.stringify(["0", "1"]),
        JSON.stringify(inline.counts));
  check("inline: the host page keeps its styles", inline.hostUnchanged);

  check("no request outside file://", outside.length === 0, outside.join(" "));
  check("no script or console error", errors.length === 0, errors.join("; "));
  summary = `${failures.length ? "FAIL" : "PASS"}: ${checks - failures.length}/${checks} checks passed ` +
            `(N = ${n}, ${boxes.length} row labels, loaded in ${loadMs} ms); screenshots in ${outDir}`;
} catch (e) {
  check("the run completes", false, e.stack);
  summary = `FAIL: stopped after ${checks - 1} checks (${failures.length - 1} failed before): ${e.message.split("\n")[0]}`;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`test_view ${summary}`);
process.exit(failures.length ? 1 : 0);
