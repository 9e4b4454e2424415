/* attnprox view: the histogram of the values that colour a text, in BINS equal bins over the colour scale's
   range [lo, hi] (values beyond it count in the end bins), each bar in its bin's colour. Hovering a bin calls
   onHover(bin) (null on leaving); mark(bin) outlines the bin of a hovered token. Test ids: histogram (data-lo,
   data-hi, data-total), hist-bin-<k> (data-count). */

const BINS = 100;

function binOf(v, lo, hi) {
  return hi > lo ? clamp(Math.floor((v - lo) / (hi - lo) * BINS), 0, BINS - 1) : Math.floor(BINS / 2);
}

function makeHistogram(onHover) {
  const bins = [];
  const element = h("div", { class: "apx-hist", "data-testid": "histogram", role: "img",
                              "aria-label": "histogram of the values colouring the text" });
  for (let k = 0; k < BINS; k++) {
    const bar = h("span", { class: "apx-bin-bar" });
    const bin = element.appendChild(h("span", { class: "apx-bin", "data-testid": `hist-bin-${k}`, "data-bin": k },
                                      bar));
    bin.addEventListener("mouseenter", () => onHover(k));
    bins.push({ bin, bar });
  }
  element.addEventListener("mouseleave", () => onHover(null));
  let marked = null;
  let active = null;

  return {
    element,
    /* values: the text's values; skip(j): left out (selected tokens); colourOf(v): the CSS colour of a value. */
    draw(values, skip, lo, hi, colourOf) {
      const counts = new Array(BINS).fill(0);
      let total = 0;
      for (let j = 0; j < values.length; j++) {
        if (Number.isNaN(values[j]) || skip(j)) continue;
        counts[binOf(values[j], lo, hi)]++;
        total++;
      }
      const most = Math.max(1, ...counts);
      bins.forEach(({ bin, bar }, k) => {
        bin.dataset.count = String(counts[k]);
        bin.title = `${fmt(lo + k / BINS * (hi - lo))} \u2013 ${fmt(lo + (k + 1) / BINS * (hi - lo))}: ${counts[k]}`;
        bar.style.height = `${counts[k] ? Math.max(4, counts[k] / most * 100) : 0}%`;
        bar.style.background = colourOf(lo + (k + 0.5) / BINS * (hi - lo));
      });
      element.dataset.lo = String(lo);
      element.dataset.hi = String(hi);
      element.dataset.total = String(total);
    },
    mark(k) {
      if (marked !== null) bins[marked].bin.classList.remove("apx-bin-marked");
      marked = k;
      if (k !== null) bins[k].bin.classList.add("apx-bin-marked");
    },
    activate(k) {
      if (active !== null) bins[active].bin.classList.remove("apx-bin-active");
      active = k;
      if (k !== null) bins[k].bin.classList.add("apx-bin-active");
    },
  };
}
