/* attnprox view: colour schemes, colour scales (the range of values a scheme spans, and how values map onto it)
   and the bar that shows a scale with two draggable handles. */

/* Each scheme sampled at evenly spaced points (viridis; a blue-white-red diverging map, white in the middle). */
const SCHEMES = {
  "viridis": [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129],
              [92, 200, 99], [170, 220, 50], [253, 231, 37]],
  "blue-white-red": [[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199],
                     [239, 138, 98], [178, 24, 43]],
};
const LUT_SIZE = 256;
const UNDEFINED_COLOUR = { rgb: [214, 218, 224], css: "rgb(214, 218, 224)", ink: "#4a5568" };
const KEY_STEP = 0.01;    /* a scale handle moves this share of the bar per arrow key */
const QUANTILES = 4096;   /* percentile scaling: the map's values at this many evenly spaced ranks */
const SAMPLE = 1 << 18;   /* ... taken from at most this many of its values */
const LOG_FLOOR = 1e-4;   /* log scaling: of (value - the map's minimum) + this share of its range */

/* LUT_SIZE colours along a scheme: rgb, CSS and the ink (text colour) that reads on it. */
function colourTable(scheme) {
  const stops = SCHEMES[scheme];
  const table = [];
  for (let k = 0; k < LUT_SIZE; k++) {
    const x = k / (LUT_SIZE - 1) * (stops.length - 1);
    const i = Math.min(Math.floor(x), stops.length - 2);
    const rgb = stops[i].map((c, m) => Math.round(c + (x - i) * (stops[i + 1][m] - c)));
    const luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    table.push({ rgb, css: `rgb(${rgb.join(", ")})`, ink: luma > 140 ? "#111111" : "#ffffff" });
  }
  return table;
}

/* A colour scale: the range [lo, hi] its colours span and how values map onto it ("linear"; "log": of the value
   above the data's minimum plus LOG_FLOOR of its range; "percentile": the value's rank among the data). Until an
   end is set by hand, fit() makes the range the data's; position(v) is v's place on it in [0, 1] (clamped; NaN
   for NaN). */
function makeScale(mode) {
  const scale = {
    mode,
    dataLo: 0,
    dataHi: 1,
    lo: 0,
    hi: 1,
    manual: false,
    below: 0,     /* values below lo and above hi (they take the end colours) */
    above: 0,
    quantiles: null,

    /* sources: [{ values, skip(k) }]: the data, without the entries skip() is true for, and NaN. */
    fit(sources) {
      let lo = Infinity;
      let hi = -Infinity;
      let count = 0;
      for (const { values, skip } of sources) {
        for (let k = 0; k < values.length; k++) {
          const v = values[k];
          if (Number.isNaN(v) || (skip && skip(k))) continue;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
          count++;
        }
      }
      if (!count) [lo, hi] = [0, 1];
      else if (lo === hi) [lo, hi] = [lo - (Math.abs(lo) * 0.5 || 0.5), hi + (Math.abs(hi) * 0.5 || 0.5)];
      scale.dataLo = lo;
      scale.dataHi = hi;
      scale.quantiles = scale.mode === "percentile" ? quantilesOf(sources, count) : null;
      if (!scale.manual) {
        scale.lo = lo;
        scale.hi = hi;
      }
      scale.below = 0;
      scale.above = 0;
      for (const { values, skip } of sources) {
        for (let k = 0; k < values.length; k++) {
          const v = values[k];
          if (Number.isNaN(v) || (skip && skip(k))) continue;
          if (v < scale.lo) scale.below++;
          else if (v > scale.hi) scale.above++;
        }
      }
      scale.sources = sources;
    },

    /* The transform whose linear range the colours span. */
    transform(v) {
      if (scale.mode === "log") {
        return Math.log(Math.max(v - scale.dataLo, 0) + LOG_FLOOR * (scale.dataHi - scale.dataLo));
      }
      if (scale.mode === "percentile") return rank(scale.quantiles, v);
      return v;
    },

    position(v) {
      if (Number.isNaN(v)) return NaN;
      const a = scale.transform(scale.lo);
      const b = scale.transform(scale.hi);
      return b > a ? clamp((scale.transform(v) - a) / (b - a), 0, 1) : 0.5;
    },

    colourIndex(v) {
      return Math.round(scale.position(v) * (LUT_SIZE - 1));
    },

    setMode(next) {
      scale.mode = next;
      if (scale.sources) scale.fit(scale.sources);
    },

    reset() {
      scale.manual = false;
      scale.lo = scale.dataLo;
      scale.hi = scale.dataHi;
    },
  };
  return scale;
}

/* QUANTILES + 1 values at evenly spaced ranks of the data (from an evenly strided sample of at most SAMPLE). */
function quantilesOf(sources, count) {
  if (!count) return Float64Array.of(0, 1);
  const stride = Math.max(1, Math.floor(count / SAMPLE));
  const sample = [];
  let seen = 0;
  for (const { values, skip } of sources) {
    for (let k = 0; k < values.length; k++) {
      const v = values[k];
      if (Number.isNaN(v) || (skip && skip(k))) continue;
      if (seen++ % stride === 0) sample.push(v);
    }
  }
  const sorted = Float64Array.from(sample).sort();
  const out = new Float64Array(QUANTILES + 1);
  for (let q = 0; q <= QUANTILES; q++) out[q] = sorted[Math.round(q / QUANTILES * (sorted.length - 1))];
  return out;
}

/* The rank of v among the quantiles, in [0, 1]: interpolated between two of them, the middle of a run of equal
   ones. */
function rank(quantiles, v) {
  const last = quantiles.length - 1;
  let lo = 0;
  let hi = last + 1;
  while (lo < hi) { /* first index whose quantile is >= v */
    const mid = (lo + hi) >> 1;
    if (quantiles[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  const first = lo;
  hi = last + 1;
  while (lo < hi) { /* first index whose quantile is > v */
    const mid = (lo + hi) >> 1;
    if (quantiles[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  const after = lo;
  if (after > first) return (first + after - 1) / 2 / last;
  if (first === 0) return 0;
  if (first > last) return 1;
  const k = first - 1;
  return (k + (v - quantiles[k]) / (quantiles[k + 1] - quantiles[k])) / last;
}

/* The bar of a scale: its colours along the values, two handles (the ends), the ends' values, whether a hand set
   them, how many values lie beyond, a reset button and, with modes, a choice of scaling. Dragging a handle, pressing
   on the bar or an arrow key on a focused handle (shift: ten times further) sets an end by hand; onChange runs
   after each change made on the bar. Test ids: <prefix>-track, -handle-min, -handle-max, -min and -max
   (data-value), -mode, -clamped, -reset, -scaling. */
function scaleBar(scale, colours, prefix, name, modes, onChange) {
  let dragAxis = null; /* the bar's [from, to], held while a handle is dragged */
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
  const labels = h("div", { class: "apx-scale-labels" }, minimum, mode, clamped, maximum, reset);
  let scaling = null;
  if (modes.length > 1) {
    scaling = h("select", { "data-testid": id("scaling"), "aria-label": `${name} scaling` },
      ...modes.map((m) => h("option", { value: m, text: m })));
    labels.insertBefore(h("label", { class: "apx-scale-note" }, document.createTextNode("scaling "), scaling), maximum);
    scaling.addEventListener("change", () => {
      scale.setMode(scaling.value);
      paint();
      onChange("mode");
    });
  }
  const element = h("div", { class: "apx-scale" }, track, labels);

  /* The bar spans the data's range and the scale's, so that both handles stay on it. */
  const axis = () => dragAxis || [Math.min(scale.dataLo, scale.lo), Math.max(scale.dataHi, scale.hi)];

  function paint() {
    const [from, to] = axis();
    const percent = (value) => (value - from) / (to - from) * 100;
    const lut = colours();
    const stops = [];
    for (let k = 0; k <= 48; k++) {
      stops.push(`${lut[scale.colourIndex(from + k / 48 * (to - from))].css} ${(k / 48 * 100).toFixed(2)}%`);
    }
    bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    for (const end of ["lo", "hi"]) {
      handles[end].style.left = `${percent(scale[end])}%`;
      handles[end].setAttribute("aria-valuemin", String(from));
      handles[end].setAttribute("aria-valuemax", String(to));
      handles[end].setAttribute("aria-valuenow", String(scale[end]));
    }
    minimum.textContent = fmt(scale.lo);
    minimum.dataset.value = String(scale.lo);
    maximum.textContent = fmt(scale.hi);
    maximum.dataset.value = String(scale.hi);
    mode.textContent = scale.manual ? "range set by hand" : "range of the values";
    clamped.textContent = scale.below || scale.above
      ? `(${scale.below} below, ${scale.above} above: end colours)` : "";
    if (scaling) scaling.value = scale.mode;
  }

  /* Moves one end to value, on the bar and at least one key step away from the other end. */
  function setEnd(end, value) {
    const [from, to] = axis();
    const gap = KEY_STEP * (to - from);
    scale[end] = end === "lo" ? clamp(value, from, scale.hi - gap) : clamp(value, scale.lo + gap, to);
    scale.manual = true;
    onChange("range");
  }

  function valueAt(event) {
    const [from, to] = axis();
    const box = track.getBoundingClientRect();
    return from + clamp((event.clientX - box.left) / box.width, 0, 1) * (to - from);
  }

  let dragging = null; /* "lo" or "hi" while a handle is dragged */
  track.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    dragAxis = axis();
    if (event.target === handles.lo || event.target === handles.hi) {
      dragging = event.target === handles.lo ? "lo" : "hi";
    } else { /* a press on the bar brings the nearer handle there */
      const value = valueAt(event);
      dragging = Math.abs(value - scale.lo) <= Math.abs(value - scale.hi) ? "lo" : "hi";
      setEnd(dragging, value);
    }
    handles[dragging].focus();
    track.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  track.addEventListener("pointermove", (event) => { if (dragging) setEnd(dragging, valueAt(event)); });
  const endDrag = () => {
    dragging = null;
    dragAxis = null;
    paint();
  };
  track.addEventListener("pointerup", endDrag);
  track.addEventListener("pointercancel", endDrag);
  for (const end of ["lo", "hi"]) {
    handles[end].addEventListener("keydown", (event) => {
      const direction = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1 }[event.key];
      if (!direction) return;
      const [from, to] = axis();
      setEnd(end, scale[end] + direction * (event.shiftKey ? 10 : 1) * KEY_STEP * (to - from));
      event.preventDefault();
    });
  }
  reset.addEventListener("click", () => {
    scale.reset();
    onChange("range");
  });

  return { element, paint };
}

function fmt(x) {
  if (x === null || Number.isNaN(x)) return "n/a";
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? x.toExponential(3) : x.toFixed(4);
}

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
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
