/* attnprox view: one text's panel. Its choice of layer and head; its selection S with an undo history; the text
   coloured by the proximity values of the choice (AP_i or iAPE_i, or AP^(S) with a selection) with their histogram;
   the heatmap of the map shown (the page's kind, proximity or attention, at the choice); the head view and the top
   arcs of the focused token (the one added to S last) in the attention of the choice; the statistics.

   app holds what the panels share (attnproxView in view.js): kind, measure, colours (lut), the two scales, and
   selectionChanged / choiceChanged, which redraw. bars, in a page of one panel, holds the scale bars to place in
   the panel's cards. */

const ARCS = 5;          /* attention arcs listed */
const CACHE_SIZE = 4;    /* maps kept per panel */
const HISTORY_SIZE = 500;

function makePanel(app, data, index, bars) {
  const n = data.tokens.length;
  const labels = data.tokens;
  const layers = layersOf(data);
  const heads = layers[0].queries ? layers[0].heads : 0;
  const kvHeads = heads ? layers[0].kvHeads : 0;
  const state = {
    layer: data.state.layer === "mean" ? "mean" : layers.findIndex((l) => l.layer === data.state.layer),
    head: data.state.head,
    order: data.state.selection.slice(),  /* S in the order its tokens were added; the last one has the focus */
    anchor: data.state.selection.length ? data.state.selection[data.state.selection.length - 1] : null,
    history: [],                          /* earlier { order, anchor }, for undo */
    lastClick: null,                      /* the token of the last single click and the history it left */
  };
  const cache = new Map();               /* "kind|layer|head" -> map */
  let current = null;                    /* what is shown: choice, kind, proximity, matrix, apTokens, ape */
  let values = new Float64Array(n);      /* what colours the text */
  let chosen = new Set(state.order);
  let loads = 0;
  const rows = { query: null, weights: new Float64Array(n), scratch: new Float64Array(n) };

  const quote = (j) => `\u201c${shortLabel(labels[j])}\u201d #${j}`;
  const choiceOf = (layer, head) => ({ layers: layer === "mean" ? layers : [layers[layer]],
                                       heads: head === "mean" ? null : [head] });
  const describe = (layer, head) =>
    (layer === "mean" ? `mean of ${layers.length} layers` : `layer ${layers[layer].layer}`) +
    (heads ? ` \u00b7 ${head === "mean" ? `mean of ${heads} heads` : `head ${head}`}` : "");

  /* ---- Choice of layer and head, pills. ---- */
  const option = (value, text, selected) => {
    const node = h("option", { value, text });
    node.selected = selected;
    return node;
  };
  const layerSelect = h("select", { "data-testid": "layer", "aria-label": "layer" },
    ...layers.map((l, k) => option(k, `layer ${l.layer}`, state.layer === k)),
    ...(layers.length > 1 ? [option("mean", `mean of ${layers.length} layers`, state.layer === "mean")] : []));
  const headSelect = h("select", { "data-testid": "head", "aria-label": "head" },
    option("mean", heads ? `mean of ${heads} heads` : "mean of the heads", state.head === "mean"),
    ...Array.from({ length: heads }, (_, k) => option(
      k, kvHeads < heads ? `head ${k} (kv ${Math.floor(k / (heads / kvHeads))})` : `head ${k}`, state.head === k)));
  headSelect.disabled = !heads;
  const pill = (name, testid) => {
    const value = h("b", { "data-testid": testid });
    return [h("span", { class: "apx-pill" }, document.createTextNode(`${name} `), value), value];
  };
  const [apPill, apValue] = pill("AP", "pill-ap");
  const [apePill, apeValue] = pill("APE", "pill-ape");
  const controls = h("div", { class: "apx-panel-controls" },
    h("label", {}, document.createTextNode("Layer "), layerSelect),
    h("label", {}, document.createTextNode("Head "), headSelect),
    h("span", { class: "apx-pill", text: `${n} tokens` }), apPill, apePill);

  /* ---- Text card: selection bar, colour legend (histogram and, alone, the scale's bar) and the text. ---- */
  const count = h("b", { "data-testid": "selection-count" });
  const selectedList = h("span", { class: "apx-selected-list", "data-testid": "selected-tokens" });
  const clearButton = h("button", { type: "button", "data-testid": "clear-selection", text: "clear" });
  const quantity = h("div", { class: "apx-legend-quantity", "data-testid": "colour-quantity" });
  const histogram = makeHistogram(highlightBin);
  const flow = h("div", { class: "apx-flow", "data-testid": "text-flow" });
  const text = writeText(flow, data.text, data.offsets, labels);
  const spans = text.spans;
  const textCard = h("div", { class: "apx-card apx-text-card" },
    h("div", { class: "apx-toolbar" },
      h("span", {}, document.createTextNode("Selected: "), count), selectedList, clearButton),
    h("div", { class: "apx-hint", text: "click: select \u00b7 shift-click: range \u00b7 ctrl/\u2318-click: add or " +
                                        "remove \u00b7 double-click: word \u00b7 ctrl/\u2318+Z: undo" }),
    h("div", { class: "apx-legend" }, quantity, histogram.element, ...(bars ? [bars.text] : [])),
    flow);

  /* ---- Heatmap, head view. ---- */
  const size = Math.max(200, Math.min(bars ? 440 : 360, n * 18));
  const heatmap = makeHeatmap(n, labels, size, select, (i, j) =>
    `${current && current.kind === "attention" ? "P" : "A"}[${i}, ${j}] = ` +
    `${current ? fmt(current.matrix[i * n + j]) : ""}  (row ${quote(i)}, column ${quote(j)})`);
  const heatTitle = h("h3");
  /* The card's width is the heatmap's, so that what its labels say never moves the scale's bar under a drag. */
  const heatmapCard = h("div", { class: "apx-card apx-heatmap-card", style: `width:${ROW_LABELS_PX + size + 26}px` },
                        heatTitle, heatmap.grid, heatmap.hover, ...(bars ? [bars.heat] : []));
  const headView = makeHeadView(n, labels, select);
  const headTitle = h("h3");
  const headHint = h("div", { class: "apx-hint", "data-testid": "head-view-hint" });
  const headCard = h("div", { class: "apx-card apx-head-card", style: `width:${HEAD_VIEW_WIDTH + 26}px` },
                     headTitle, headHint, headView.canvas, headView.hover);

  /* ---- Arcs, statistics, notes. ---- */
  const arcsOf = h("span", { "data-testid": "arcs-query" });
  const arcList = h("ol", { class: "apx-arcs", "data-testid": "arcs" });
  const arcsHint = h("div", { class: "apx-hint", text: "Select a token to list where it attends." });
  const arcsCard = h("div", { class: "apx-card apx-arcs-card" },
    h("h3", {}, document.createTextNode(`Top ${ARCS} attention arcs `), arcsOf), arcsHint, arcList);
  const lower = [arcsCard];
  if (data.stats) lower.push(h("div", { class: "apx-card apx-stats-card" }, h("h3", { text: "Statistics" }),
                                statsList(data.stats)));
  const notes = h("div", { class: "apx-notes", "data-testid": "precision", text: precisionNote() });

  const element = h("div", { class: "apx-panel", "data-testid": `panel-${index}` },
    ...(app.single ? [] : [h("h3", { class: "apx-panel-title", text: data.title })]),
    controls,
    h("div", { class: "apx-row" }, textCard, h("div", { class: "apx-maps" }, heatmapCard, headCard)),
    h("div", { class: "apx-row apx-lower" }, ...lower),
    notes);

  /* ---- Interactions. ---- */
  const indexOf = (event) => {
    const target = event.target.closest("[data-index]");
    return target ? Number(target.dataset.index) : null;
  };
  flow.addEventListener("click", (event) => {
    const j = indexOf(event);
    if (j !== null && event.detail <= 1) select(j, event); /* the second click of a double-click selects the word */
  });
  flow.addEventListener("dblclick", (event) => {
    const j = indexOf(event);
    if (j !== null) selectWord(j, event);
  });
  flow.addEventListener("mouseover", (event) => {
    const j = indexOf(event);
    histogram.mark(j === null || chosen.has(j) || Number.isNaN(values[j]) ? null
                     : binOf(values[j], app.textScale.lo, app.textScale.hi));
  });
  flow.addEventListener("mouseleave", () => histogram.mark(null));
  clearButton.addEventListener("click", () => change([], null));
  layerSelect.addEventListener("change", () => {
    state.layer = layerSelect.value === "mean" ? "mean" : Number(layerSelect.value);
    app.choiceChanged(panel);
  });
  headSelect.addEventListener("change", () => {
    state.head = headSelect.value === "mean" ? "mean" : Number(headSelect.value);
    app.choiceChanged(panel);
  });

  /* Plain click: S = {j}, or clears S when it is already just {j}. Shift-click: S = the range from the anchor
     to j. Ctrl- or Cmd-click: j in or out of S. */
  function select(j, event) {
    const has = state.order.includes(j);
    let order;
    let anchor = state.anchor;
    if (event.shiftKey && state.anchor !== null) {
      const step = j >= state.anchor ? 1 : -1;
      order = [];
      for (let k = state.anchor; k !== j + step; k += step) order.push(k);
    } else if (event.ctrlKey || event.metaKey) {
      order = has ? state.order.filter((k) => k !== j) : state.order.concat([j]);
      anchor = j;
    } else {
      order = has && state.order.length === 1 ? [] : [j];
      anchor = order.length ? j : null;
    }
    change(order, anchor);
    state.lastClick = { token: j, depth: state.history.length };
  }

  /* Double-click: S = the word's tokens; with ctrl or cmd, S plus them. The click before it is taken back, so
     that undo returns to the selection before the double-click. */
  function selectWord(j, event) {
    if (state.lastClick && state.lastClick.token === j && state.lastClick.depth === state.history.length &&
        state.history.length) {
      const before = state.history.pop();
      state.order = before.order;
      state.anchor = before.anchor;
    }
    state.lastClick = null;
    const word = text.wordOf(j);
    const order = event.ctrlKey || event.metaKey
      ? state.order.concat(word.filter((k) => !state.order.includes(k))) : word;
    change(order, j);
  }

  /* A new selection, the one before it kept for undo. */
  function change(order, anchor) {
    state.history.push({ order: state.order, anchor: state.anchor });
    if (state.history.length > HISTORY_SIZE) state.history.shift();
    state.order = order;
    state.anchor = anchor;
    state.lastClick = null;
    app.selectionChanged(panel);
  }

  function undo() {
    const before = state.history.pop();
    if (!before) return false;
    state.order = before.order;
    state.anchor = before.anchor;
    state.lastClick = null;
    app.selectionChanged(panel);
    return true;
  }

  function highlightBin(k) {
    histogram.activate(k);
    const [lo, hi] = [app.textScale.lo, app.textScale.hi];
    spans.forEach((span, j) => span.classList.toggle("apx-bin-hit", k !== null && !chosen.has(j) &&
                                                      !Number.isNaN(values[j]) && binOf(values[j], lo, hi) === k));
  }

  const sorted = () => state.order.slice().sort((x, y) => x - y);
  const focus = () => (state.order.length ? state.order[state.order.length - 1] : null);

  /* ---- Computing what is shown. ---- */

  async function cached(kind, key, compute) {
    const name = `${kind}|${key}`;
    if (cache.has(name)) {
      const map = cache.get(name);
      cache.delete(name);
      cache.set(name, map);
      return map;
    }
    const map = await compute();
    if (map) {
      cache.set(name, map);
      while (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value);
    }
    return map;
  }

  /* Computes the maps of the panel's choice for the page's kind; false when a later load took over. */
  async function load() {
    const ticket = ++loads;
    const stop = () => ticket !== loads;
    const layer = state.layer;
    const head = state.head;
    const kind = app.kind;
    const choice = choiceOf(layer, head);
    const key = `${layer}|${head}`;
    const proximity = await cached("proximity", key, () => proximityMatrix(n, choice, stop));
    if (!proximity || stop()) return false;
    const matrix = kind === "proximity" ? proximity
      : await cached("attention", key, () => attentionMatrix(n, choice, data.temperature, stop));
    if (!matrix || stop()) return false;
    const own = choice.layers.length === 1 && choice.heads === null ? choice.layers[0] : null;
    const apTokens = own && own.apTokens ? own.apTokens : apTokensOf(proximity, n);
    const ape = apeSummary(own && own.apeTokens ? own.apeTokens : apeTokensOf(proximity, n, data.policy));
    current = { layer, head, kind, choice, proximity, matrix, apTokens, ape };
    rows.query = null;
    heatTitle.textContent = `${kind === "proximity" ? "Proximity matrix A" : "Attention weights P"} \u00b7 ` +
      describe(layer, head);
    headTitle.textContent = `Head view \u00b7 attention, ${describe(layer, head)}`;
    heatmap.canvas.dataset.kind = kind;
    heatmap.canvas.dataset.layer = layer === "mean" ? "mean" : String(layers[layer].layer);
    heatmap.canvas.dataset.head = String(head);
    apValue.textContent = fmt(n >= 2 ? mean(apTokens) : NaN);
    apValue.dataset.value = String(n >= 2 ? mean(apTokens) : NaN);
    apeValue.textContent = fmt(ape.value);
    apeValue.dataset.value = String(ape.value);
    return true;
  }

  /* The text's values: with S empty AP_i or iAPE_i (the page's measure), else AP^(S). */
  function refreshValues() {
    const selected = sorted();
    chosen = new Set(selected);
    if (selected.length) values = subsetProximity(current.proximity, n, selected);
    else values = app.measure === "ap" ? current.apTokens : current.ape.tokens;
    return values;
  }

  /* Row i of the attention of the choice shown (the focus row is kept). */
  function attentionOf(i) {
    if (rows.query === i) return rows.weights;
    rows.query = i;
    return attentionRow(n, current.choice, data.temperature, i, rows.weights, rows.scratch);
  }

  /* ---- Drawing. ---- */

  function paintText() {
    const scale = app.textScale;
    spans.forEach((span, j) => {
      const v = values[j];
      span.dataset.value = String(v);
      if (chosen.has(j)) {
        span.style.backgroundColor = "";
        span.style.color = "";
        span.title = `${quote(j)}: selected (${fmt(v)})`;
        return;
      }
      const colour = Number.isNaN(v) ? UNDEFINED_COLOUR : app.lut[scale.colourIndex(v)];
      span.style.backgroundColor = colour.css;
      span.style.color = colour.ink;
      span.title = `${quote(j)}: ${Number.isNaN(v) ? "undefined" : fmt(v)}`;
    });
    histogram.draw(values, (j) => chosen.has(j), scale.lo, scale.hi, (v) => app.lut[scale.colourIndex(v)].css);
    histogram.mark(null); /* a hovered token's bin is marked again at the next hover, on the values now shown */
    const selected = state.order.length;
    quantity.title = quantity.textContent = selected
      ? `Colour: AP^(S)_j, mean proximity to the ${selected} selected token${selected > 1 ? "s" : ""} ` +
        "(selected tokens outlined, uncoloured)"
      : app.measure === "ap" ? "Colour: AP_i, each token's mean proximity to the other tokens"
      : `Colour: iAPE_i, the entropy of each token's proximity to the others (${data.policy} policy` +
        `${current.ape.undefinedRows ? `; ${current.ape.undefinedRows} undefined, grey` : ""})`;
  }

  function colourHeatmap() {
    heatmap.colour(current.matrix, app.heatScale.colourIndex, app.lut);
  }

  function renderSelection() {
    const selected = sorted();
    count.textContent = String(selected.length);
    selectedList.dataset.indices = selected.join(",");
    selectedList.textContent = selected.length ? runs(selected).map(([first, last]) =>
      first === last ? `#${first}` : `#${first}\u2013#${last}`).join(", ") : "none";
    selectedList.title = selectedList.textContent;
    clearButton.disabled = selected.length === 0;
    spans.forEach((span, j) => {
      span.classList.toggle("apx-selected", chosen.has(j));
      span.classList.toggle("apx-focus", j === focus());
    });
    heatmap.markLabels(chosen);
    heatmap.draw(runs(selected));
    showArcs();
    const query = focus();
    headHint.textContent = query !== null ? `Lines from ${quote(query)} to the keys it sees; opacity: weight / largest.`
      : n <= ALL_LINES_MAX ? "Every query's lines (opacity: weight); select a token for its own."
      : "Select a token to draw its lines to the keys it attends to.";
    headView.draw(query, attentionOf);
  }

  function showArcs() {
    const query = focus();
    for (const span of spans) span.classList.remove("apx-arc-target");
    arcList.textContent = "";
    arcsOf.textContent = query === null ? "" : `of ${quote(query)}`;
    arcsHint.hidden = query !== null;
    if (query === null) return;
    const row = attentionOf(query);
    const keys = Array.from(row.keys()).filter((key) => seenInChoice(current.choice, query, key))
      .sort((x, y) => row[y] - row[x] || x - y).slice(0, ARCS);
    keys.forEach((key, rank) => {
      const weight = row[key];
      const item = arcList.appendChild(h("li",
        { "data-testid": `arc-${rank}`, "data-key": key, "data-weight": String(weight) },
        h("span", { text: `${quote(key)} \u2014 ${fmt(weight)}` }),
        h("span", { class: "apx-arc-meter" },
          h("span", { class: "apx-arc-bar", style: `width:${Math.min(100, Math.max(1, weight * 100))}%` }))));
      item.addEventListener("mouseenter", () => spans[key].classList.add("apx-arc-target"));
      item.addEventListener("mouseleave", () => spans[key].classList.remove("apx-arc-target"));
    });
  }

  function statsList(s) {
    const ape = s.ape === null
      ? `undefined (${s.ape_undefined_rows} of ${n} rows undefined)`
      : fmt(s.ape) + (s.ape_undefined_rows ? ` (${s.ape_undefined_rows} of ${n} rows undefined, left out)` : "");
    const list = h("dl", { class: "apx-stats", "data-testid": "stats" });
    const entries = [
      ["Tokens", "stat-tokens", String(s.tokens), s.tokens],
      ["AP", "stat-ap", fmt(s.ap), s.ap],
      ["APE", "stat-ape", ape, s.ape],
      ["APE, length-corrected", "stat-ape-normalized", s.ape_normalized === null ? "undefined" : fmt(s.ape_normalized),
       s.ape_normalized],
      ["Mean attention entropy", "stat-entropy", fmt(s.mean_entropy), s.mean_entropy],
      ["Mean normalised entropy", "stat-entropy-normalized", fmt(s.mean_normalized_entropy), s.mean_normalized_entropy],
      ["Max attention weight", "stat-max-weight",
       `${fmt(s.max_weight)}: ${quote(s.max_query)} \u2192 ${quote(s.max_key)}`, s.max_weight],
      ["Most attended token", "stat-most-attended", quote(s.most_attended), s.most_attended],
      ["Layer (mean of its heads)", "stat-layer", String(s.layer), s.layer],
      ["Temperature", "stat-temperature", String(s.temperature), s.temperature],
    ];
    for (const [name, testid, shown, value] of entries) {
      list.appendChild(h("dt", { text: name }));
      list.appendChild(h("dd", { "data-testid": testid, "data-value": value === null ? "" : String(value),
                                 text: shown }));
    }
    return list;
  }

  function precisionNote() {
    const stored = data.layers[0].queries || data.layers[0].proximity;
    const what = data.layers[0].queries ? "queries and keys" : "matrices";
    const bound = { float32: "2^-24", float16: "2^-11 = 4.9e-4" }[stored.dtype];
    const error = Math.max(...layers.map((l) => l.maxError));
    let note = `The page stores the ${what} as ${stored.dtype} (` +
      (bound ? `relative error at most ${bound}` : `error at most half a step`) + `; largest here ${fmt(error)}).`;
    if (data.layers[0].queries) note += " The maps are computed from them.";
    if (data.omitted_layers.length) {
      note += ` Layers ${data.omitted_layers.join(", ")} are not in this page (its size limit); ` +
        "choose the layers to embed with layers=.";
    }
    return note;
  }

  /* ---- Export: what is shown, as attnprox.View.export() gives it. ---- */
  function exportData() {
    const selected = sorted();
    const shownValues = refreshValues();
    const matrix = [];
    for (let i = 0; i < n; i++) {
      matrix.push(Array.from(current.matrix.subarray(i * n, (i + 1) * n), (v) => Number(v.toPrecision(7))));
    }
    const finite = (v) => (Number.isNaN(v) ? null : v);
    const stored = data.layers[0].queries || data.layers[0].proximity;
    return {
      format: "attnprox-view",
      version: 1,
      model: data.model,
      text: data.text,
      text_from_tokens: data.text_from_tokens,
      tokens: labels,
      ids: data.ids,
      char_spans: data.offsets,
      kind: current.kind,
      measure: app.measure,
      layer: current.layer === "mean" ? "mean" : layers[current.layer].layer,
      head: current.head,
      layers: layers.map((l) => l.layer),
      omitted_layers: data.omitted_layers,
      heads,
      temperature: data.temperature,
      policy: data.policy,
      selection: selected,
      ap_tokens: Array.from(current.apTokens),
      ape_tokens: Array.from(current.ape.tokens, finite),
      ap: n >= 2 ? mean(current.apTokens) : null,
      ape: finite(current.ape.value),
      ape_normalized: finite(current.ape.normalized),
      ape_undefined_rows: current.ape.undefinedRows,
      subset_proximity: selected.length ? Array.from(subsetProximity(current.proximity, n, selected)) : null,
      values: Array.from(shownValues, finite),
      colour: { scheme: app.scheme, range: [app.textScale.lo, app.textScale.hi],
                heatmap_range: [app.heatScale.lo, app.heatScale.hi], heatmap_scaling: app.heatScale.mode },
      matrix,
      precision: { encoding: stored.dtype, max_abs_error: Math.max(...layers.map((l) => l.maxError)),
                   computed_from: "page" },
    };
  }

  const panel = {
    element,
    load,
    refreshValues,
    values: () => values,
    skip: (j) => chosen.has(j),
    matrix: () => current.matrix,
    paintText,
    colourHeatmap,
    renderSelection,
    exportData,
    undo,
    textOf: () => data.text,
  };
  return panel;
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
