/* attnprox interactive view of one text: the proximity heatmap, the text coloured by AP_i or AP^(S), a colour
   scale with draggable ends for each of them, the strongest attention arcs of the focused token and the text's
   statistics.

   attnprox/html_view.py inlines this file into a function scope and calls attnproxView(root, data) with the
   view's root element and the validated payload (its schema is in html_view.py). Everything the view creates
   lives under root; nothing is global. ASCII only: other characters are written as \u escapes. */
"use strict";

/* Viridis, sampled at nine evenly spaced points. */
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
                 [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
const LUT_SIZE = 256;
const SELECTED = "#e6194b";                /* outline of selected tokens (matches view.css) */
const LABEL_PX = 14;                       /* least spacing of the heatmap's labels, CSS pixels */
const ROW_LABELS_PX = 88;                  /* width of the heatmap's row labels */
const COLUMN_LABELS_PX = 76;               /* height of its column labels */
const ARCS = 5;                            /* attention arcs listed */
const KEY_STEP = 0.01;                     /* a scale handle moves this share of the bar per arrow key */
const GLYPH = { newline: "\u21b5", tab: "\u2192", space: "\u00b7", empty: "\u2205" };

function attnproxView(root, data) {
  const n = data.tokens.length;
  const A = flatten(data.proximity, n);
  const W = flatten(data.attention, n);
  /* Whether query i sees key j: causal, j <= i (and i - j < W with a window W); bidirectional, |i - j| <= W. */
  const window_ = data.sliding_window || 0;
  const sees = (i, j) => data.causal ? j <= i && (!window_ || i - j < window_) : !window_ || Math.abs(i - j) <= window_;
  const apValues = Float64Array.from(data.ap_tokens);
  const lut = colourTable();
  const state = {
    order: [],        /* the selection S in the order its tokens were added; the last one has the focus */
    anchor: null,     /* the token a shift-click extends from */
    values: apValues, /* the value each token is coloured by */
  };

  const quote = (j) => `\u201c${shortLabel(data.tokens[j])}\u201d #${j}`;

  /* ---- Heatmap of A, with its own colour scale (A's entries), labels thinned out to LABEL_PX apart. ---- */
  const size = Math.max(200, Math.min(480, n * 18));
  const cell = size / n;
  const labelStep = Math.max(1, Math.ceil(LABEL_PX / cell));
  const dpr = window.devicePixelRatio || 1;
  const cells = document.createElement("canvas"); /* one pixel per entry, scaled up without smoothing */
  cells.width = n;
  cells.height = n;
  const heatScale = colourScale(lut, "heatmap-scale", "heatmap colour", () => {
    colourCells();
    drawHeatmap();
  });

  const canvas = h("canvas", {
    class: "apx-hm-canvas", "data-testid": "heatmap", role: "img", "aria-label": "proximity matrix A",
    width: Math.round(size * dpr), height: Math.round(size * dpr), style: `width:${size}px;height:${size}px`,
  });
  const rowLabels = h("div", { class: "apx-hm-rows", style: `width:${ROW_LABELS_PX}px;height:${size}px` });
  const columnLabels = h("div", { class: "apx-hm-cols", style: `width:${size}px;height:${COLUMN_LABELS_PX}px` });
  const heatLabels = [];
  for (let i = 0; i < n; i += labelStep) {
    const offset = (i + 0.5) * cell - LABEL_PX / 2;
    const common = { class: "apx-hm-label", "data-index": i, title: `#${i} ${data.tokens[i]}`, text: shortLabel(data.tokens[i]) };
    heatLabels.push(rowLabels.appendChild(h("div", Object.assign({
      "data-testid": `row-label-${i}`, style: `top:${offset}px;width:${ROW_LABELS_PX}px` }, common))));
    heatLabels.push(columnLabels.appendChild(h("div", Object.assign({
      "data-testid": `col-label-${i}`, style: `left:${offset}px;height:${COLUMN_LABELS_PX}px` }, common))));
  }
  const hoverHint = "Hover a cell for A[i, j]; click one (or a label) to select its row's token.";
  const hover = h("div", { class: "apx-hm-hover", "data-testid": "heatmap-hover", text: hoverHint });
  const heatmapCard = h("div", { class: "apx-card apx-heatmap-card" },
    h("h3", { text: "Proximity matrix A" }),
    h("div", { class: "apx-hm-grid",
               style: `grid-template-columns:${ROW_LABELS_PX}px ${size}px;grid-template-rows:${COLUMN_LABELS_PX}px ${size}px` },
      h("div"), columnLabels, rowLabels, canvas),
    hover,
    heatScale.element);

  /* ---- Selection bar, the text's colour scale and the text. ---- */
  const count = h("b", { "data-testid": "selection-count" });
  const selectedList = h("span", { class: "apx-selected-list", "data-testid": "selected-tokens" });
  const clearButton = h("button", { type: "button", "data-testid": "clear-selection", text: "clear" });
  const quantity = h("div", { class: "apx-legend-quantity", "data-testid": "colour-quantity" });
  const textScale = colourScale(lut, "scale", "text colour", paintTokens);
  const flow = h("div", { class: "apx-flow", "data-testid": "text-flow" });
  const spans = data.tokens.map((label, j) => {
    const shown = flowLabel(label);
    const span = flow.appendChild(h("span", {
      class: shown.faint ? "apx-tok apx-ws" : "apx-tok", "data-testid": `token-${j}`, "data-index": j, text: shown.text }));
    for (let b = 0; b < shown.breaks; b++) flow.appendChild(h("br"));
    return span;
  });
  const textCard = h("div", { class: "apx-card apx-text-card" },
    h("div", { class: "apx-toolbar" },
      h("span", {}, document.createTextNode("Selected: "), count),
      selectedList, clearButton,
      h("span", { class: "apx-hint", text: "click: select \u00b7 shift-click: range \u00b7 ctrl/\u2318-click: add or remove" })),
    h("div", { class: "apx-legend" }, quantity, textScale.element),
    flow);

  /* ---- Attention arcs and statistics. ---- */
  const arcsOf = h("span", { "data-testid": "arcs-query" });
  const arcList = h("ol", { class: "apx-arcs", "data-testid": "arcs" });
  const arcsHint = h("div", { class: "apx-hint", text: "Select a token to list where it attends." });
  const arcsCard = h("div", { class: "apx-card apx-arcs-card" },
    h("h3", {}, document.createTextNode(`Top ${ARCS} attention arcs `), arcsOf), arcsHint, arcList);
  const statsCard = h("div", { class: "apx-card apx-stats-card" }, h("h3", { text: "Statistics" }), statsList());

  const s = data.stats;
  const body = h("div", { class: "apx-body" },
    h("h2", { "data-testid": "view-title", text: data.title }),
    h("div", { class: "apx-subtitle",
               text: `${n} tokens \u00b7 layer ${s.layer} \u00b7 temperature ${s.temperature}` }),
    h("div", { class: "apx-row" }, heatmapCard, textCard),
    h("div", { class: "apx-row apx-lower" }, arcsCard, statsCard));
  const fallback = root.querySelector(".apx-nojs");
  if (fallback) fallback.remove();
  root.appendChild(body);

  /* ---- Interactions. ---- */
  const selectByIndex = (event) => {
    const target = event.target.closest("[data-index]");
    if (target) select(Number(target.dataset.index), event);
  };
  flow.addEventListener("click", selectByIndex);
  rowLabels.addEventListener("click", selectByIndex);
  columnLabels.addEventListener("click", selectByIndex);
  canvas.addEventListener("click", (event) => select(cellAt(event)[0], event));
  canvas.addEventListener("mousemove", (event) => {
    const [i, j] = cellAt(event);
    hover.textContent = `A[${i}, ${j}] = ${fmt(A[i * n + j])}  (row ${quote(i)}, column ${quote(j)})`;
  });
  canvas.addEventListener("mouseleave", () => { hover.textContent = hoverHint; });
  clearButton.addEventListener("click", () => {
    state.order = [];
    state.anchor = null;
    update();
  });

  heatScale.show(A);
  colourCells();
  update();
  root.dataset.ready = "true";

  /* Plain click: S = {j}, or clears S when it is already just {j}. Shift-click: S = the range from the anchor
     to j. Ctrl- or Cmd-click: j in or out of S. The focus (arcs) is the most recently added token of S. */
  function select(j, event) {
    const has = state.order.includes(j);
    if (event.shiftKey && state.anchor !== null) {
      const step = j >= state.anchor ? 1 : -1;
      state.order = [];
      for (let k = state.anchor; k !== j + step; k += step) state.order.push(k);
    } else if (event.ctrlKey || event.metaKey) {
      state.order = has ? state.order.filter((k) => k !== j) : state.order.concat([j]);
      state.anchor = j;
    } else {
      state.order = has && state.order.length === 1 ? [] : [j];
      state.anchor = state.order.length ? j : null;
    }
    update();
  }

  function update() {
    const selected = sortedSelection();
    if (selected.length === 0) {
      state.values = apValues;
    } else { /* AP^(S)_j = (1/|S|) sum over i in S of A_ij */
      const values = new Float64Array(n);
      for (const i of selected) for (let j = 0; j < n; j++) values[j] += A[i * n + j];
      for (let j = 0; j < n; j++) values[j] /= selected.length;
      state.values = values;
    }
    textScale.show(state.values);
    quantity.textContent = selected.length === 0
      ? "Colour: AP_i, each token's mean proximity to the other tokens"
      : `Colour: AP^(S)_j, mean proximity to the ${selected.length} selected token${selected.length > 1 ? "s" : ""}`;
    showSelection(selected);
    showArcs();
    drawHeatmap();
    paintTokens();
  }

  function sortedSelection() {
    return state.order.slice().sort((x, y) => x - y);
  }

  function focus() {
    return state.order.length ? state.order[state.order.length - 1] : null;
  }

  function showSelection(selected) {
    const chosen = new Set(selected);
    count.textContent = String(selected.length);
    selectedList.dataset.indices = selected.join(",");
    selectedList.textContent = selected.length ? runs(selected).map(([first, last]) =>
      first === last ? `#${first}` : `#${first}\u2013#${last}`).join(", ") : "none";
    clearButton.disabled = selected.length === 0;
    spans.forEach((span, j) => {
      span.classList.toggle("apx-selected", chosen.has(j));
      span.classList.toggle("apx-focus", j === focus());
    });
    for (const label of heatLabels) label.classList.toggle("apx-selected", chosen.has(Number(label.dataset.index)));
  }

  function showArcs() {
    const query = focus();
    for (const span of spans) span.classList.remove("apx-arc-target");
    arcList.textContent = "";
    arcsOf.textContent = query === null ? "" : `of ${quote(query)}`;
    arcsHint.hidden = query !== null;
    if (query === null) return;
    const row = W.subarray(query * n, (query + 1) * n);
    const keys = Array.from(row.keys()).filter((key) => sees(query, key))
      .sort((x, y) => row[y] - row[x] || x - y).slice(0, ARCS);
    keys.forEach((key, rank) => {
      const weight = row[key];
      const item = arcList.appendChild(h("li", { "data-testid": `arc-${rank}`, "data-key": key, "data-weight": String(weight) },
        h("span", { text: `${quote(key)} \u2014 ${fmt(weight)}` }),
        h("span", { class: "apx-arc-meter" },
          h("span", { class: "apx-arc-bar", style: `width:${Math.min(100, Math.max(1, weight * 100))}%` }))));
      item.addEventListener("mouseenter", () => spans[key].classList.add("apx-arc-target"));
      item.addEventListener("mouseleave", () => spans[key].classList.remove("apx-arc-target"));
    });
  }

  /* The cells' colours follow the heatmap's scale. */
  function colourCells() {
    const [lo, hi] = heatScale.range();
    const context = cells.getContext("2d");
    const image = context.createImageData(n, n);
    for (let k = 0; k < n * n; k++) {
      image.data.set(lut[colourIndex(A[k], lo, hi)].rgb, 4 * k);
      image.data[4 * k + 3] = 255;
    }
    context.putImageData(image, 0, 0);
  }

  /* The cells, and an outline around each run of selected rows. */
  function drawHeatmap() {
    const context = canvas.getContext("2d");
    context.setTransform(dpr, 0, 0, dpr, 0, 0);
    context.imageSmoothingEnabled = false;
    context.drawImage(cells, 0, 0, size, size);
    context.lineWidth = cell >= 6 ? 2 : 1;
    context.strokeStyle = SELECTED;
    for (const [first, last] of runs(sortedSelection())) {
      context.strokeRect(1, first * cell, size - 2, (last - first + 1) * cell);
    }
  }

  /* The token colours follow state.values on the text's scale. */
  function paintTokens() {
    const [lo, hi] = textScale.range();
    spans.forEach((span, j) => {
      const value = state.values[j];
      const colour = lut[colourIndex(value, lo, hi)];
      span.style.backgroundColor = colour.css;
      span.style.color = colour.ink;
      span.dataset.value = String(value);
      span.title = `${quote(j)}: ${fmt(value)}`;
    });
  }

  function cellAt(event) {
    const box = canvas.getBoundingClientRect();
    const at = (offset, extent) => clamp(Math.floor(offset / extent * n), 0, n - 1);
    return [at(event.clientY - box.top, box.height), at(event.clientX - box.left, box.width)];
  }

  function statsList() {
    const s = data.stats;
    const ape = s.ape === null
      ? `undefined (${s.ape_undefined_rows} of ${n} rows undefined)`
      : fmt(s.ape) + (s.ape_undefined_rows ? ` (${s.ape_undefined_rows} of ${n} rows undefined, left out)` : "");
    const rows = [
      ["Tokens", "stat-tokens", String(s.tokens), s.tokens],
      ["AP", "stat-ap", fmt(s.ap), s.ap],
      ["APE", "stat-ape", ape, s.ape],
      ["APE, length-corrected", "stat-ape-normalized", s.ape_normalized === null ? "undefined" : fmt(s.ape_normalized),
       s.ape_normalized],
      ["Mean attention entropy", "stat-entropy", fmt(s.mean_entropy), s.mean_entropy],
      ["Mean normalised entropy", "stat-entropy-normalized", fmt(s.mean_normalized_entropy), s.mean_normalized_entropy],
      ["Max attention weight", "stat-max-weight", `${fmt(s.max_weight)}: ${quote(s.max_query)} \u2192 ${quote(s.max_key)}`,
       s.max_weight],
      ["Most attended token", "stat-most-attended", quote(s.most_attended), s.most_attended],
      ["Layer", "stat-layer", String(s.layer), s.layer],
      ["Temperature", "stat-temperature", String(s.temperature), s.temperature],
    ];
    const list = h("dl", { class: "apx-stats", "data-testid": "stats" });
    for (const [name, testid, text, value] of rows) {
      list.appendChild(h("dt", { text: name }));
      list.appendChild(h("dd", { "data-testid": testid, "data-value": value === null ? "" : String(value), text }));
    }
    return list;
  }
}

/* A colour scale: a bar with two handles, the scale's ends, over the range of the values it shows; the ends'
   values, whether a hand set them, how many values lie beyond them, and a reset button. Until a handle moves the
   scale fits the values' range, and fits it again at each show(); dragging a handle, pressing on the bar or an
   arrow key on a focused handle (shift: ten times further) sets an end by hand, and show() keeps it until reset.
   onChange runs after each change made on the scale. Test ids: <prefix>-track, -handle-min, -handle-max, -min
   and -max (data-value), -mode, -clamped, -reset. */
function colourScale(lut, prefix, name, onChange) {
  const state = {
    values: [],
    dataLo: 0,        /* the range of the values shown */
    dataHi: 1,
    lo: 0,            /* the scale: values at or beyond lo / hi take the end colours */
    hi: 1,
    manual: false,    /* true once an end was set by hand, until reset */
    dragAxis: null,   /* the bar's [from, to], held while a handle is dragged */
  };
  const id = (part) => `${prefix}-${part}`;
  const handle = (end) => h("div", { class: "apx-handle", "data-testid": id(`handle-${end}`), role: "slider",
                                     tabindex: 0, "aria-label": `${name} scale ${end}imum` });
  const bar = h("div", { class: "apx-track-bar" });
  const handles = { lo: handle("min"), hi: handle("max") };
  const track = h("div", { class: "apx-track", "data-testid": id("track") }, bar, handles.lo, handles.hi);
  const minimum = h("span", { "data-testid": id("min") });
  const maximum = h("span", { class: "apx-scale-max", "data-testid": id("max") });
  const mode = h("span", { class: "apx-scale-note", "data-testid": id("mode") });
  const clamped = h("span", { class: "apx-scale-note", "data-testid": id("clamped") });
  const reset = h("button", { type: "button", "data-testid": id("reset"), text: "reset" });
  const element = h("div", { class: "apx-scale" }, track,
    h("div", { class: "apx-scale-labels" }, minimum, mode, clamped, maximum, reset));

  /* The bar spans the values' range and the scale's, so that both handles stay on it. */
  const axis = () => state.dragAxis || [Math.min(state.dataLo, state.lo), Math.max(state.dataHi, state.hi)];

  function paint() {
    const { lo, hi } = state;
    const [from, to] = axis();
    const percent = (value) => (value - from) / (to - from) * 100;
    bar.style.background = gradient(lut, percent(lo), percent(hi));
    for (const end of ["lo", "hi"]) {
      handles[end].style.left = `${percent(state[end])}%`;
      handles[end].setAttribute("aria-valuemin", String(from));
      handles[end].setAttribute("aria-valuemax", String(to));
      handles[end].setAttribute("aria-valuenow", String(state[end]));
    }
    minimum.textContent = fmt(lo);
    minimum.dataset.value = String(lo);
    maximum.textContent = fmt(hi);
    maximum.dataset.value = String(hi);
    mode.textContent = state.manual ? "range set by hand" : "range of the values";
    let below = 0;
    let above = 0;
    for (const v of state.values) {
      if (v < lo) below++;
      else if (v > hi) above++;
    }
    clamped.textContent = below || above ? `(${below} below, ${above} above: end colours)` : "";
  }

  /* Moves one end to value, on the bar and at least one key step away from the other end. */
  function setEnd(end, value) {
    const [from, to] = axis();
    const gap = KEY_STEP * (to - from);
    state[end] = end === "lo" ? clamp(value, from, state.hi - gap) : clamp(value, state.lo + gap, to);
    state.manual = true;
    paint();
    onChange();
  }

  function valueAt(event) {
    const [from, to] = axis();
    const box = track.getBoundingClientRect();
    return from + clamp((event.clientX - box.left) / box.width, 0, 1) * (to - from);
  }

  let dragging = null; /* "lo" or "hi" while a handle is dragged */
  track.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    state.dragAxis = axis();
    if (event.target === handles.lo || event.target === handles.hi) {
      dragging = event.target === handles.lo ? "lo" : "hi";
    } else { /* a press on the bar brings the nearer handle there */
      const value = valueAt(event);
      dragging = Math.abs(value - state.lo) <= Math.abs(value - state.hi) ? "lo" : "hi";
      setEnd(dragging, value);
    }
    handles[dragging].focus();
    track.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  track.addEventListener("pointermove", (event) => { if (dragging) setEnd(dragging, valueAt(event)); });
  const endDrag = () => {
    dragging = null;
    state.dragAxis = null;
    paint();
  };
  track.addEventListener("pointerup", endDrag);
  track.addEventListener("pointercancel", endDrag);
  for (const end of ["lo", "hi"]) {
    handles[end].addEventListener("keydown", (event) => {
      const direction = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1 }[event.key];
      if (!direction) return;
      const [from, to] = axis();
      setEnd(end, state[end] + direction * (event.shiftKey ? 10 : 1) * KEY_STEP * (to - from));
      event.preventDefault();
    });
  }
  reset.addEventListener("click", () => {
    state.manual = false;
    state.lo = state.dataLo;
    state.hi = state.dataHi;
    paint();
    onChange();
  });

  return {
    element,
    /* Shows values: the bar spans their range, and the scale fits it unless set by hand. */
    show(values) {
      state.values = values;
      [state.dataLo, state.dataHi] = rangeOf(values);
      if (!state.manual) {
        state.lo = state.dataLo;
        state.hi = state.dataHi;
      }
      paint();
    },
    range: () => [state.lo, state.hi],
  };
}

/* An element with attributes ("text" sets its text, "class" its class) and children. */
function h(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) node.appendChild(child);
  return node;
}

function flatten(rows, n) {
  const flat = new Float64Array(n * n);
  rows.forEach((row, i) => flat.set(row, i * n));
  return flat;
}

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

/* [min, max] of values; a constant set gets a range around its value so that the scale stays usable. */
function rangeOf(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.5 || 0.5;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

/* [first, last] of each run of consecutive numbers in a sorted list. */
function runs(sorted) {
  const out = [];
  for (const k of sorted) {
    if (out.length && out[out.length - 1][1] === k - 1) out[out.length - 1][1] = k;
    else out.push([k, k]);
  }
  return out;
}

function fmt(x) {
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? x.toExponential(3) : x.toFixed(4);
}

/* LUT_SIZE colours along viridis: rgb, CSS and the ink (text colour) that reads on it. */
function colourTable() {
  const table = [];
  for (let k = 0; k < LUT_SIZE; k++) {
    const x = k / (LUT_SIZE - 1) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const rgb = VIRIDIS[i].map((c, m) => Math.round(c + (x - i) * (VIRIDIS[i + 1][m] - c)));
    const luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    table.push({ rgb, css: `rgb(${rgb.join(", ")})`, ink: luma > 140 ? "#111111" : "#ffffff" });
  }
  return table;
}

/* The colour of value v on the scale [lo, hi]; values beyond it clamp to the end colours. */
function colourIndex(v, lo, hi) {
  const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
  return Math.round(clamp(t, 0, 1) * (LUT_SIZE - 1));
}

/* A CSS gradient of the colour map stretched from one percentage of a bar to another, end colours beyond. */
function gradient(lut, fromPercent, toPercent) {
  const stops = [];
  for (let k = 0; k < VIRIDIS.length; k++) {
    const f = k / (VIRIDIS.length - 1);
    stops.push(`${lut[Math.round(f * (LUT_SIZE - 1))].css} ${(fromPercent + f * (toPercent - fromPercent)).toFixed(3)}%`);
  }
  return `linear-gradient(to right, ${lut[0].css} 0%, ${stops.join(", ")}, ${lut[LUT_SIZE - 1].css} 100%)`;
}

/* Control characters, tabs and line breaks as visible glyphs. */
function visible(text) {
  return text.replace(/\r\n|\n|\r/g, GLYPH.newline).replace(/\t/g, GLYPH.tab)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g,
             (c) => String.fromCharCode(c === "\u007f" ? 0x2421 : 0x2400 + c.charCodeAt(0)));
}

/* How a token reads in the text: whitespace it carries stays (the line also breaks after a newline, at most
   twice), line breaks, tabs and control characters show as glyphs, a token of spaces alone shows a dot per
   space and an empty token an empty-set sign, so that every token can be seen and clicked. */
function flowLabel(label) {
  if (label === "") return { text: GLYPH.empty, faint: true, breaks: 0 };
  const onlySpaces = /^[ \u00a0\u3000]+$/.test(label);
  return {
    text: visible(onlySpaces ? label.replace(/[ \u00a0\u3000]/g, GLYPH.space) : label),
    faint: /^\s+$/.test(label),
    breaks: Math.min(2, (label.match(/\r\n|\n|\r/g) || []).length),
  };
}

/* A token as a heatmap label or in a list: its text without surrounding whitespace, or its glyphs when it is
   whitespace alone. */
function shortLabel(label) {
  return visible(label.trim()) || flowLabel(label).text;
}
