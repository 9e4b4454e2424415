/* attnprox view: a head view as bertviz draws one. The tokens stand in two columns, queries on the left and keys
   on the right; a line joins the focused query to each key it gives weight, its opacity the weight over the row's
   largest. Without a focus, a text of at most ALL_LINES_MAX tokens shows every query's lines (opacity: the weight).
   Labels thin out to LABEL_PX apart; the focused query and its strongest keys are always labelled. A click on a
   row selects its token (onSelect(j, event)). Test id: head-view (data-query, data-lines, data-max-weight). */

const HEAD_VIEW_WIDTH = 300;
const HEAD_VIEW_ROW_PX = 16;
const ALL_LINES_MAX = 64;
const LINE_COLOUR = [59, 81, 139];

function makeHeadView(n, labels, onSelect) {
  const margin = 8;  /* above the first row and below the last, so that their labels show whole */
  const height = clamp(n * HEAD_VIEW_ROW_PX, 160, 480) + 2 * margin;
  const pitch = (height - 2 * margin) / n;
  const dpr = window.devicePixelRatio || 1;
  const left = 118;   /* where the query column's labels end and lines start */
  const right = 182;  /* where lines end and the key column's labels start */
  const canvas = h("canvas", { class: "apx-head-canvas", "data-testid": "head-view", role: "img",
                               "aria-label": "attention of the focused token, as lines to the keys",
                               width: Math.round(HEAD_VIEW_WIDTH * dpr), height: Math.round(height * dpr),
                               style: `width:${HEAD_VIEW_WIDTH}px;height:${height}px` });
  const hover = h("div", { class: "apx-hm-hover", "data-testid": "head-view-hover", text: "" });
  const rowAt = (event) =>
    clamp(Math.floor((event.clientY - canvas.getBoundingClientRect().top - margin) / pitch), 0, n - 1);
  let shown = null; /* the row of weights drawn */
  canvas.addEventListener("click", (event) => onSelect(rowAt(event), event));
  canvas.addEventListener("mousemove", (event) => {
    const j = rowAt(event);
    hover.textContent = `\u201c${shortLabel(labels[j])}\u201d #${j}` + (shown ? `: weight ${fmt(shown[j])}` : "");
  });
  canvas.addEventListener("mouseleave", () => { hover.textContent = ""; });

  const y = (j) => margin + (j + 0.5) * pitch;

  function label(context, j, x, align, strong) {
    context.font = `${strong ? "600 " : ""}11px system-ui, sans-serif`;
    context.textAlign = align;
    context.textBaseline = "middle";
    const text = shortLabel(labels[j]).slice(0, 16);
    if (strong) {
      const width = context.measureText(text).width + 4;
      context.fillStyle = "#ffffff";
      context.fillRect(align === "right" ? x - width + 2 : x - 2, y(j) - 7, width, 14);
    }
    context.fillStyle = strong ? "#1d2430" : "#5f6b7a";
    context.fillText(text, x, y(j));
  }

  /* query: the focused token or null; row(i): the weights of query i [N]. */
  function draw(query, row) {
    const context = canvas.getContext("2d");
    context.setTransform(dpr, 0, 0, dpr, 0, 0);
    context.clearRect(0, 0, HEAD_VIEW_WIDTH, height);
    const step = Math.max(1, Math.ceil(LABEL_PX / pitch));
    for (let j = 0; j < n; j += step) {
      label(context, j, left - 4, "right", false);
      label(context, j, right + 4, "left", false);
    }
    context.lineWidth = pitch >= 4 ? 1.5 : 1;
    let lines = 0;
    let largest = 0;
    const line = (i, j, alpha) => {
      context.strokeStyle = `rgba(${LINE_COLOUR.join(", ")}, ${alpha.toFixed(4)})`;
      context.beginPath();
      context.moveTo(left, y(i));
      context.lineTo(right, y(j));
      context.stroke();
      lines++;
    };
    shown = null;
    if (query !== null) {
      shown = row(query);
      for (const w of shown) largest = Math.max(largest, w);
      for (let j = 0; j < n; j++) if (shown[j] > 0 && largest > 0) line(query, j, shown[j] / largest);
      const top = Array.from(shown.keys()).sort((a, b) => shown[b] - shown[a] || a - b).slice(0, 5);
      label(context, query, left - 4, "right", true);
      const labelled = [];
      for (const j of top) { /* strongest first, none over another */
        if (shown[j] > 0 && labelled.every((k) => Math.abs(y(k) - y(j)) >= 12)) {
          label(context, j, right + 4, "left", true);
          labelled.push(j);
        }
      }
      context.fillStyle = SELECTED;
      context.fillRect(left - 2, y(query) - 2, 4, 4);
    } else if (n <= ALL_LINES_MAX) {
      for (let i = 0; i < n; i++) {
        const weights = row(i);
        for (let j = 0; j < n; j++) {
          largest = Math.max(largest, weights[j]);
          if (weights[j] > 0) line(i, j, weights[j]);
        }
      }
    }
    canvas.dataset.query = query === null ? "" : String(query);
    canvas.dataset.lines = String(lines);
    canvas.dataset.maxWeight = String(largest);
  }

  return { canvas, hover, draw, height };
}
