/* attnprox view: the heatmap of an N x N map on a canvas, with row and column labels thinned out to LABEL_PX apart.
   One pixel per entry in an offscreen canvas, drawn onto the shown one without smoothing while it has fewer
   entries than pixels, smoothed when it has more. onSelect(i, event) runs on a click on a cell or a label (row i);
   describe(i, j) gives the hover line of a cell. */

const LABEL_PX = 14;        /* least spacing of the labels, CSS pixels */
const ROW_LABELS_PX = 88;   /* width of the row labels */
const COLUMN_LABELS_PX = 76;
const SELECTED = "#e6194b"; /* outline of selected rows (matches view.css) */

function makeHeatmap(n, labels, size, onSelect, describe) {
  const cell = size / n;
  const labelStep = Math.max(1, Math.ceil(LABEL_PX / cell));
  const dpr = window.devicePixelRatio || 1;
  const cells = document.createElement("canvas");
  cells.width = n;
  cells.height = n;
  const canvas = h("canvas", {
    class: "apx-hm-canvas", "data-testid": "heatmap", role: "img",
    width: Math.round(size * dpr), height: Math.round(size * dpr), style: `width:${size}px;height:${size}px`,
  });
  const rowLabels = h("div", { class: "apx-hm-rows", style: `width:${ROW_LABELS_PX}px;height:${size}px` });
  const columnLabels = h("div", { class: "apx-hm-cols", style: `width:${size}px;height:${COLUMN_LABELS_PX}px` });
  const labelNodes = [];
  for (let i = 0; i < n; i += labelStep) {
    const offset = (i + 0.5) * cell - LABEL_PX / 2;
    const common = { class: "apx-hm-label", "data-index": i, title: `#${i} ${labels[i]}`, text: shortLabel(labels[i]) };
    labelNodes.push(rowLabels.appendChild(h("div", Object.assign({
      "data-testid": `row-label-${i}`, style: `top:${offset}px;width:${ROW_LABELS_PX}px` }, common))));
    labelNodes.push(columnLabels.appendChild(h("div", Object.assign({
      "data-testid": `col-label-${i}`, style: `left:${offset}px;height:${COLUMN_LABELS_PX}px` }, common))));
  }
  const hint = "Hover a cell for its value; click one (or a label) to select its row's token.";
  const hover = h("div", { class: "apx-hm-hover", "data-testid": "heatmap-hover", text: hint });
  const grid = h("div", { class: "apx-hm-grid",
                          style: `grid-template-columns:${ROW_LABELS_PX}px ${size}px;` +
                                 `grid-template-rows:${COLUMN_LABELS_PX}px ${size}px` },
    h("div"), columnLabels, rowLabels, canvas);

  const cellAt = (event) => {
    const box = canvas.getBoundingClientRect();
    const at = (offset, extent) => clamp(Math.floor(offset / extent * n), 0, n - 1);
    return [at(event.clientY - box.top, box.height), at(event.clientX - box.left, box.width)];
  };
  const byLabel = (event) => {
    const target = event.target.closest("[data-index]");
    if (target) onSelect(Number(target.dataset.index), event);
  };
  rowLabels.addEventListener("click", byLabel);
  columnLabels.addEventListener("click", byLabel);
  canvas.addEventListener("click", (event) => onSelect(cellAt(event)[0], event));
  canvas.addEventListener("mousemove", (event) => { hover.textContent = describe(...cellAt(event)); });
  canvas.addEventListener("mouseleave", () => { hover.textContent = hint; });

  return {
    grid,
    hover,
    canvas,
    /* Colours the cells: values [N * N], colourIndex(v) on the scale, lut the scheme's colours. */
    colour(values, colourIndex, lut) {
      const context = cells.getContext("2d");
      const image = context.createImageData(n, n);
      const pixels = image.data;
      for (let k = 0; k < n * n; k++) {
        const v = values[k];
        const rgb = Number.isNaN(v) ? UNDEFINED_COLOUR.rgb : lut[colourIndex(v)].rgb;
        pixels[4 * k] = rgb[0];
        pixels[4 * k + 1] = rgb[1];
        pixels[4 * k + 2] = rgb[2];
        pixels[4 * k + 3] = 255;
      }
      context.putImageData(image, 0, 0);
    },
    /* The cells, and an outline around each run of selected rows. */
    draw(selectedRuns) {
      const context = canvas.getContext("2d");
      context.setTransform(dpr, 0, 0, dpr, 0, 0);
      context.imageSmoothingEnabled = n > size * dpr;
      context.imageSmoothingQuality = "high";
      context.drawImage(cells, 0, 0, size, size);
      context.lineWidth = cell >= 6 ? 2 : 1;
      context.strokeStyle = SELECTED;
      for (const [first, last] of selectedRuns) {
        context.strokeRect(1, first * cell, size - 2, (last - first + 1) * cell);
      }
    },
    markLabels(chosen) {
      for (const label of labelNodes) label.classList.toggle("apx-selected", chosen.has(Number(label.dataset.index)));
    },
  };
}
