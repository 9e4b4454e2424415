// Drives the HTML view (attnprox/html_view.py) in a real headless Chromium through Playwright, and records what
// the page shows after each step, for tests/html/test_view.py to check against NumPy and the Results.
//
//   ATTNPROX_JS_MODULES=build/js node tests/html/test_view.mjs PAGE.html SCENARIO.json OUTDIR
//
// ATTNPROX_JS_MODULES names a folder holding node_modules/ with playwright-core
// (npm install --prefix DIR playwright-core@1.64.1). The browser is Debian's Chromium, /usr/bin/chromium
// (apt-get install chromium), or ATTNPROX_CHROMIUM; Playwright's own browser downloads are never used.
//
// PAGE.html is opened from file:// with every other request refused. SCENARIO.json is {"steps": [step, ...]};
// each step has a "name" and one of these "do"s (panel: the panel's index in a comparison, default 0):
//   look                               nothing: the state as it is
//   click {token, modifiers}           dblclick {token, modifiers}        press {key} (e.g. "Control+z")
//   choose {testid, value}             the select of that test id (in the panel for "layer" and "head")
//   drag {scale, to}                   the max handle of scale ("scale" or "heatmap-scale") to a share of its bar
//   activate {testid}                  a click on the element of that test id (clear-selection, row-label-0, ...)
//   hover-bin {bin}  hover-token {token}  leave                  export {file} (the download, saved in OUTDIR)
//   screenshot {file}                  time-click {token}: a click dispatched in the page, timed to the next paint
//   inline-twice                       the page shown twice inline in a host page, as a notebook does
// and "colours": true to record every token's background colour. After each step (once the page is no longer busy)
// the state is recorded: the page's controls and scales, and per panel the selection, the tokens' values, arcs,
// histogram, heatmap and head view attributes, pills. OUTDIR/record.json gets
//   {"load_ms", "ready_ms", "page": {title, per panel texts, written, chips, rects, stats, ...},
//    "steps": [{name, ms, state, timing, inline, suggested}],
//    "errors": [...], "outside": [...]}.
// Exits 0 when the scenario ran (the checks are test_view.py's), 1 when a step failed, 2 on a set-up error.
import { createRequire } from "node:module";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const CHROMIUM = process.env.ATTNPROX_CHROMIUM || "/usr/bin/chromium";
// Without the background-networking flags Chromium keeps trying connections that this closed network refuses.
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                       "--disable-background-networking", "--disable-component-update", "--disable-sync"];

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

const [pagePath, scenarioPath, outDir] = process.argv.slice(2);
if (!pagePath || !scenarioPath || !outDir) fail("usage: node test_view.mjs PAGE.html SCENARIO.json OUTDIR");
const scenario = JSON.parse(readFileSync(scenarioPath, "utf8"));
mkdirSync(outDir, { recursive: true });

// ---- In the page: what it shows. ----

function pageState(colours) {
  const root = document.querySelector(".apx-view");
  const number = (s) => (s === undefined || s === null || s === "" ? null : Number(s));
  const scale = (prefix) => {
    const at = (id) => root.querySelector(`[data-testid='${prefix}-${id}']`);
    return { min: Number(at("min").dataset.value), max: Number(at("max").dataset.value), mode: at("mode").textContent,
             clamped: at("clamped").textContent, scaling: at("scaling") ? at("scaling").value : null };
  };
  const digest = (text) => {
    let hash = 0;
    for (let k = 0; k < text.length; k++) hash = (hash * 31 + text.charCodeAt(k)) | 0;
    return `${text.length}:${hash}`;
  };
  /* The mean luminance of a canvas's pixels (0..255), the share of dark ones (below 70: the lowest tenth of
     viridis), and that share on and below the diagonal (the keys a causal model's queries see). */
  const brightness = (canvas) => {
    const { width, height } = canvas;
    const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
    let sum = 0;
    let dark = 0;
    let lower = 0;
    let darkLower = 0;
    for (let k = 0; k < pixels.length; k += 4) {
      const luma = 0.299 * pixels[k] + 0.587 * pixels[k + 1] + 0.114 * pixels[k + 2];
      const x = (k / 4) % width;
      const y = Math.floor(k / 4 / width);
      sum += luma;
      if (luma < 70) dark++;
      if (x * height <= y * width) {
        lower++;
        if (luma < 70) darkLower++;
      }
    }
    return { luma: sum / (pixels.length / 4), dark: dark / (pixels.length / 4), dark_lower: darkLower / lower };
  };
  const panel = (p) => {
    const at = (id) => p.querySelector(`[data-testid='${id}']`);
    const spans = [...p.querySelectorAll("[data-testid^='token-'][data-index]")]
      .sort((a, b) => a.dataset.index - b.dataset.index);
    const indices = (cls) => spans.filter((s) => s.classList.contains(cls)).map((s) => Number(s.dataset.index));
    const bins = [...p.querySelectorAll("[data-testid^='hist-bin-']")];
    const heat = at("heatmap");
    const head = at("head-view");
    return {
      selection: (at("selected-tokens").dataset.indices || "").split(",").filter(Boolean).map(Number),
      count: Number(at("selection-count").textContent),
      outlined: indices("apx-selected"),
      focus: indices("apx-focus"),
      bin_hit: indices("apx-bin-hit"),
      values: spans.map((s) => number(s.dataset.value)),
      colours: colours ? spans.map((s) => getComputedStyle(s).backgroundColor) : null,
      arcs_query: at("arcs-query").textContent,
      arcs: [...p.querySelectorAll("[data-testid^='arc-']")].map((li) => ({
        key: Number(li.dataset.key), weight: Number(li.dataset.weight), text: li.textContent })),
      heatmap: Object.assign({ kind: heat.dataset.kind, layer: heat.dataset.layer, head: heat.dataset.head,
                               digest: digest(heat.toDataURL()) }, brightness(heat)),
      head_view: { query: head.dataset.query, lines: Number(head.dataset.lines),
                   max_weight: Number(head.dataset.maxWeight), digest: digest(head.toDataURL()) },
      histogram: { lo: Number(at("histogram").dataset.lo), hi: Number(at("histogram").dataset.hi),
                   counts: bins.map((b) => Number(b.dataset.count)),
                   active: bins.findIndex((b) => b.classList.contains("apx-bin-active")),
                   marked: bins.findIndex((b) => b.classList.contains("apx-bin-marked")) },
      pills: { ap: number(at("pill-ap").dataset.value), ape: number(at("pill-ape").dataset.value) },
      quantity: at("colour-quantity").textContent,
      layer: at("layer").value,
      head: at("head").value,
    };
  };
  const select = (id) => root.querySelector(`[data-testid='${id}']`).value;
  return {
    ready: root.dataset.ready === "true",
    busy: root.dataset.busy === "true",
    kind: select("kind"), measure: select("measure"), scheme: select("scheme"),
    scale: scale("scale"), heat_scale: scale("heatmap-scale"),
    panels: [...root.querySelectorAll("[data-testid^='panel-']")].map(panel),
  };
}

/* Once, after loading: what the text pane and the labels look like. */
function pageFacts() {
  const root = document.querySelector(".apx-view");
  return {
    title: root.querySelector("[data-testid='view-title']").textContent,
    ready_ms: Number(root.dataset.readyMs),
    precision: [...root.querySelectorAll("[data-testid='precision']")].map((n) => n.textContent),
    panels: [...root.querySelectorAll("[data-testid^='panel-']")].map((p) => {
      const flow = p.querySelector("[data-testid='text-flow']");
      const spans = [...flow.querySelectorAll("[data-testid^='token-'][data-index]")]
        .sort((a, b) => a.dataset.index - b.dataset.index);
      const box = flow.getBoundingClientRect();
      // The flow's text without the chips (tokens that are not in the text): the text as written, with the
      // glyphs the view adds.
      let written = "";
      for (const node of flow.childNodes) {
        if (node.nodeType === Node.TEXT_NODE) written += node.textContent;
        else if (node.tagName === "SPAN" && !node.classList.contains("apx-chip")) written += node.textContent;
      }
      return {
        texts: spans.map((s) => s.textContent),
        chips: spans.filter((s) => s.classList.contains("apx-chip")).map((s) => Number(s.dataset.index)),
        written,
        foreign: [...flow.querySelectorAll("*")].filter((e) => !["SPAN", "WBR"].includes(e.tagName))
          .map((e) => e.tagName),
        rects: spans.map((s) => {
          const r = s.getClientRects();
          return { count: r.length, left: r.length ? r[0].left - box.left : null, top: r.length ? r[0].top : null };
        }),
        flow_padding_left: parseFloat(getComputedStyle(flow).paddingLeft),
        row_labels: [...p.querySelectorAll("[data-testid^='row-label-']")]
          .map((l) => l.getBoundingClientRect()).map((r) => [r.top, r.bottom]),
        stats: Object.fromEntries([...p.querySelectorAll("[data-testid^='stat-']")].map((d) =>
          [d.dataset.testid, { text: d.textContent, value: d.dataset.value }])),
      };
    }),
  };
}

// ---- The run. ----

const { chromium } = playwright();
const userDataDir = mkdtempSync(join(tmpdir(), "attnprox-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, acceptDownloads: true,
    viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1,
  });
} catch (e) {
  rmSync(userDataDir, { recursive: true, force: true });
  fail(`cannot start ${CHROMIUM}: ${e.message}`);
}

const record = { steps: [], errors: [], outside: [] };
let failed = false;
try {
  const page = context.pages()[0] || await context.newPage();
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:") || url.startsWith("blob:")) return route.continue();
    record.outside.push(url);
    return route.abort();
  });
  page.on("pageerror", (e) => record.errors.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") record.errors.push(`console: ${m.text()}`); });

  const started = Date.now();
  await page.goto(pathToFileURL(resolve(pagePath)).href);
  await page.waitForSelector(".apx-view[data-ready='true']", { timeout: 60000 });
  record.load_ms = Date.now() - started;
  record.page = await page.evaluate(pageFacts);
  record.ready_ms = record.page.ready_ms;

  const within = (step) => `[data-testid='panel-${step.panel || 0}'] `;
  const token = (step) => page.locator(`${within(step)}[data-testid='token-${step.token}']`);
  const idle = () => page.waitForFunction(() => {
    const root = document.querySelector(".apx-view");
    return root.dataset.ready === "true" && root.dataset.busy !== "true";
  }, null, { timeout: 60000 });

  for (const step of scenario.steps) {
    const entry = { name: step.name, do: step.do };
    const began = Date.now();
    const modifiers = step.modifiers || [];
    switch (step.do) {
      case "look": break;
      case "click": await token(step).click({ modifiers }); break;
      case "dblclick": await token(step).dblclick({ modifiers }); break;
      case "press": await page.keyboard.press(step.key); break;
      case "choose": {
        const scoped = ["layer", "head"].includes(step.testid) ? within(step) : "";
        await page.selectOption(`${scoped}[data-testid='${step.testid}']`, String(step.value));
        break;
      }
      case "drag": {
        await page.locator(`[data-testid='${step.scale}-track']`).scrollIntoViewIfNeeded();
        const handle = await page.locator(`[data-testid='${step.scale}-handle-max']`).boundingBox();
        const track = await page.locator(`[data-testid='${step.scale}-track']`).boundingBox();
        const y = handle.y + handle.height / 2;
        await page.mouse.move(handle.x + handle.width / 2, y);
        await page.mouse.down();
        await page.mouse.move(track.x + track.width * step.to, y, { steps: 8 });
        await page.mouse.up();
        break;
      }
      case "activate": {
        const scoped = step.testid.startsWith("scale") || step.testid.startsWith("heatmap-scale") ||
          ["export", "kind", "measure", "scheme"].includes(step.testid) ? "" : within(step);
        await page.click(`${scoped}[data-testid='${step.testid}']`);
        break;
      }
      case "hover-bin": await page.hover(`${within(step)}[data-testid='hist-bin-${step.bin}']`); break;
      case "hover-token": await token(step).hover(); break;
      case "leave": await page.mouse.move(1, 1); break;
      case "export": {
        const [download] = await Promise.all([page.waitForEvent("download"),
                                              page.click("[data-testid='export']")]);
        await download.saveAs(join(outDir, step.file));
        entry.suggested = download.suggestedFilename();
        break;
      }
      case "screenshot": await page.screenshot({ path: join(outDir, step.file), fullPage: true }); break;
      case "time-click": {
        entry.timing = await page.evaluate(async (selector) => {
          const target = document.querySelector(selector);
          const t0 = performance.now();
          target.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true, detail: 1 }));
          const handled = performance.now() - t0;
          await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
          return { handled_ms: handled, painted_ms: performance.now() - t0 };
        }, `${within(step)}[data-testid='token-${step.token}']`);
        break;
      }
      case "inline-twice": {
        entry.inline = await page.evaluate(async (html) => {
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
          for (let wait = 0; wait < 600 && views.some((v) => v.dataset.ready !== "true"); wait++) {
            await new Promise((done) => setTimeout(done, 50));
          }
          const token = views[1] && views[1].querySelector("[data-testid='token-2']");
          if (token) token.click();
          return {
            ready: views.filter((v) => v.dataset.ready === "true").length,
            counts: views.map((v) => v.querySelector("[data-testid='selection-count']").textContent),
            ids: views.map((v) => v.id),
            hostUnchanged: host === [style("body"), style("p"), style("button")].join(" "),
          };
        }, readFileSync(pagePath, "utf8"));
        record.steps.push(entry);
        continue; // the page is now the host page: no state to record
      }
      default: throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
    await idle();
    entry.ms = Date.now() - began;
    entry.state = await page.evaluate(pageState, !!step.colours);
    record.steps.push(entry);
  }
} catch (e) {
  failed = true;
  record.errors.push(`the scenario stopped: ${e.stack}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
writeFileSync(join(outDir, "record.json"), JSON.stringify(record));
console.log(`test_view: ${record.steps.length} of ${scenario.steps.length} steps run, ${record.errors.length} errors ` +
            `(loaded in ${record.load_ms} ms, ready at ${record.ready_ms} ms)`);
process.exit(failed ? 1 : 0);
