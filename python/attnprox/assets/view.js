/* attnprox view: the page. attnprox/html_view.py inlines the assets' scripts into one function scope and calls
   attnproxView(root, data) with the view's root element and the page's data (the validated payload, arrays
   encoded; its schema is in html_view.py). Everything the view creates lives under root; nothing is global.

   The page holds one panel (one text) or two side by side; they share the kind of map shown, the measure that
   colours the text, the colour scheme, and the two colour scales (text and heatmap), which fit the values of both
   panels: one colour range for both texts. Each panel has its own layer, head and selection. ctrl/cmd+Z undoes the
   last selection change of the panel changed last. ASCII only: other characters are written as \u escapes. */

const SCALINGS = ["linear", "log", "percentile"];

function attnproxView(root, data) {
  root.dataset.built = "true";
  const single = data.panels.length === 1;
  const app = {
    single,
    kind: data.state.kind,
    measure: data.state.measure,
    scheme: data.state.scheme,
    lut: colourTable(data.state.scheme),
    textScale: makeScale("linear"),
    heatScale: makeScale(data.state.heatmap_scaling || scalingFor(data.state.kind)),
    scalingChosen: !!data.state.heatmap_scaling,
    lastPanel: null,
    selectionChanged,
    choiceChanged,
  };
  const textBar = scaleBar(app.textScale, () => app.lut, "scale", "text colour", ["linear"], refreshText);
  const heatBar = scaleBar(app.heatScale, () => app.lut, "heatmap-scale", "heatmap colour", SCALINGS, (what) => {
    if (what === "mode") app.scalingChosen = true;
    refreshHeatmaps();
  });

  /* ---- Page controls. ---- */
  const choose = (testid, label, options, value) => {
    const select = h("select", { "data-testid": testid, "aria-label": label },
      ...options.map(([v, text]) => h("option", { value: v, text })));
    select.value = value;
    return select;
  };
  const kindSelect = choose("kind", "map shown", [["proximity", "proximity A"], ["attention", "attention weights P"]],
                            app.kind);
  const measureSelect = choose("measure", "text colour", [["ap", "AP_i"], ["ape", "iAPE_i (APE)"]], app.measure);
  const schemeSelect = choose("scheme", "colour scheme", [["viridis", "viridis"], ["blue-white-red", "blue-white-red"]],
                              app.scheme);
  const exportButton = h("button", { type: "button", "data-testid": "export", text: "export JSON" });
  const status = h("span", { class: "apx-status", "data-testid": "status", role: "status" });
  const first = data.panels[0];
  const subtitle = single
    ? `${first.tokens.length} tokens${first.model ? ` \u00b7 ${first.model}` : ""} \u00b7 ` +
      `temperature ${first.temperature}`
    : `two texts, one colour range \u00b7 ${data.panels.map((p) => `${p.tokens.length} tokens`).join(" and ")}`;
  const header = h("div", { class: "apx-header" },
    h("h2", { "data-testid": "view-title", text: data.title }),
    h("div", { class: "apx-subtitle", text: subtitle }),
    h("div", { class: "apx-controls" },
      h("label", {}, document.createTextNode("Map "), kindSelect),
      h("label", {}, document.createTextNode("Text colour "), measureSelect),
      h("label", {}, document.createTextNode("Colours "), schemeSelect),
      exportButton, status));
  if (!single) {
    header.appendChild(h("div", { class: "apx-row apx-shared-scales" },
      h("div", { class: "apx-card" }, h("h3", { text: "Text colour range (both texts)" }), textBar.element),
      h("div", { class: "apx-card" }, h("h3", { text: "Heatmap colour range (both texts)" }), heatBar.element)));
  }

  const panels = data.panels.map((panel, k) => makePanel(app, panel, k,
    single ? { text: textBar.element, heat: heatBar.element } : null));
  const body = h("div", { class: single ? "apx-body" : "apx-body apx-compare" }, header,
    h("div", { class: "apx-panels" }, ...panels.map((p) => p.element)));
  const fallback = root.querySelector(".apx-nojs");
  if (fallback) fallback.remove();
  root.appendChild(body);

  /* ---- Interactions. ---- */
  kindSelect.addEventListener("change", () => {
    app.kind = kindSelect.value;
    app.heatScale.manual = false;
    if (!app.scalingChosen) app.heatScale.mode = scalingFor(app.kind);
    reload(panels);
  });
  measureSelect.addEventListener("change", () => {
    app.measure = measureSelect.value;
    refreshText();
  });
  schemeSelect.addEventListener("change", () => {
    app.scheme = schemeSelect.value;
    app.lut = colourTable(app.scheme);
    refreshHeatmaps();
    refreshText();
  });
  exportButton.addEventListener("click", () => {
    const exported = single ? panels[0].exportData()
      : { format: "attnprox-compare", version: 1, panels: panels.map((p) => p.exportData()) };
    download(`attnprox-${slug(panels[0].textOf())}.json`, JSON.stringify(exported));
  });
  /* ctrl/cmd+Z reaches this view when the focus is in it, or when nothing has the focus (a clicked button that
     became disabled lets it go) and this view is the one the pointer pressed last. */
  root.addEventListener("pointerdown", () => {
    root.dataset.pressed = String(performance.now());
    if (!root.contains(document.activeElement)) root.focus({ preventScroll: true });
  });
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.shiftKey || event.altKey || event.key.toLowerCase() !== "z") return;
    const active = document.activeElement;
    const idle = !active || active === document.body || active === document.documentElement;
    if (!root.contains(active) && !(idle && pressedLast() === root)) return;
    if (app.lastPanel) app.lastPanel.undo();
    event.preventDefault();
    event.stopPropagation();
  });

  let loads = 0;
  (async () => {
    await reload(panels);
    root.dataset.readyMs = String(Math.round(performance.now())); /* since the navigation began */
    root.dataset.ready = "true";
  })();

  /* Computes the panels' maps, then redraws everything; the page is busy meanwhile. */
  async function reload(which) {
    const ticket = ++loads;
    root.dataset.busy = "true";
    status.textContent = "computing\u2026";
    const done = await Promise.all(which.map((panel) => panel.load()));
    if (ticket !== loads || done.includes(false)) return;
    refreshHeatmaps();
    refreshText();
    delete root.dataset.busy;
    status.textContent = "";
  }

  function selectionChanged(panel) {
    app.lastPanel = panel;
    refreshText();
  }

  function choiceChanged() {
    reload(panels);
  }

  /* The text's scale fits the panels' values (less their selected tokens); then the texts and selections. */
  function refreshText() {
    for (const panel of panels) panel.refreshValues();
    app.textScale.fit(panels.map((panel) => ({ values: panel.values(), skip: panel.skip })));
    textBar.paint();
    for (const panel of panels) {
      panel.paintText();
      panel.renderSelection();
    }
  }

  function refreshHeatmaps() {
    app.heatScale.fit(panels.map((panel) => ({ values: panel.matrix() })));
    heatBar.paint();
    for (const panel of panels) {
      panel.colourHeatmap();
      panel.renderSelection();
    }
  }

  /* (The object-URL calls go through .call, so that the page holds no CSS-like url-call for a check of loads to
     flag.) */
  function download(name, text) {
    const url = URL.createObjectURL.call(URL, new Blob([text], { type: "application/json" }));
    const link = root.appendChild(h("a", { href: url, download: name, hidden: "" }));
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL.call(URL, url), 10000);
  }
}

/* The view of the page the pointer pressed last. */
function pressedLast() {
  let last = null;
  for (const view of document.querySelectorAll(".apx-view[data-pressed]")) {
    if (!last || Number(view.dataset.pressed) > Number(last.dataset.pressed)) last = view;
  }
  return last;
}

/* The heatmap's scaling for a kind of map: attention weights are skewed (most near 0), so log. */
function scalingFor(kind) {
  return kind === "attention" ? "log" : "linear";
}

/* A file name from the first words of a text. */
function slug(text) {
  return text.trim().split(/\s+/).slice(0, 5).join("_").replace(/[^A-Za-z0-9_]/g, "").toLowerCase() || "view";
}
