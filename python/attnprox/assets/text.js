/* attnprox view: the text as it was written, one clickable span per token, and the words of the text.

   offsets are each token's [start, end) in the text as indices of its code points (Python's str indices); the page
   works in JavaScript's UTF-16 units. Walking the tokens in order, the text between one token's end and the next
   one's start (spaces, line breaks) is written as it is, so the page's lines break where the text's do; a token
   keeps its own characters (a line break inside one shows as a glyph before the break) and is never split over two
   lines (spans do not wrap; a line may wrap before a token that starts with whitespace or follows whitespace). A
   token with no characters of its own (a special token, or the second token of a character split over two) is a
   small chip with its label. */

const GLYPH = { newline: "\u21b5", empty: "\u2205" };

/* Control characters but line breaks and tabs as visible glyphs. */
function visibleControls(text) {
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g,
                      (c) => String.fromCharCode(c === "\u007f" ? 0x2421 : 0x2400 + c.charCodeAt(0)));
}

/* A token as a label (heatmap, lists): its text without surrounding whitespace, or glyphs for whitespace alone. */
function shortLabel(label) {
  const shown = visibleControls(label.trim().replace(/\r\n|\r|\n/g, GLYPH.newline).replace(/\t/g, "\u2192"));
  if (shown) return shown;
  if (label === "") return GLYPH.empty;
  return label.replace(/\r\n|\r|\n/g, GLYPH.newline).replace(/\t/g, "\u2192").replace(/ /g, "\u00b7");
}

/* Writes the text into flow; returns { spans (one per token), wordOf(j) (the tokens of token j's word) }. */
function writeText(flow, text, offsets, labels) {
  const units = [0]; /* code point index -> UTF-16 index */
  for (const c of text) units.push(units[units.length - 1] + c.length);
  const unit = (p) => units[Math.min(p, units.length - 1)];
  const spans = new Array(labels.length);
  const ranges = new Array(labels.length); /* [start, end) in UTF-16 units */
  let cursor = 0;
  let afterSpace = true;
  labels.forEach((label, j) => {
    const start = unit(offsets[j][0]);
    const end = unit(offsets[j][1]);
    ranges[j] = [start, Math.max(start, end)];
    if (end > start && start > cursor) {
      const gap = text.slice(cursor, start);
      flow.appendChild(document.createTextNode(visibleControls(gap)));
      afterSpace = /\s$/.test(gap);
      cursor = start;
    }
    const from = Math.max(start, cursor);
    let span;
    if (end > from) {
      const piece = text.slice(from, end);
      if (/^\s/.test(piece) || afterSpace) flow.appendChild(h("wbr"));
      span = h("span", { class: "apx-tok", "data-testid": `token-${j}`, "data-index": j,
                         text: visibleControls(piece.replace(/\r\n|\r|\n/g, (b) => GLYPH.newline + b)) });
      afterSpace = /\s$/.test(piece);
      cursor = end;
    } else {
      flow.appendChild(h("wbr"));
      span = h("span", { class: "apx-tok apx-chip", "data-testid": `token-${j}`, "data-index": j,
                         text: shortLabel(label) });
      afterSpace = true;
    }
    spans[j] = flow.appendChild(span);
  });
  if (cursor < text.length) {
    const rest = text.slice(cursor);
    if (/^\s*$/.test(rest)) flow.appendChild(document.createTextNode(rest));
    else flow.appendChild(h("span", { class: "apx-rest", text: ` [${units.length - 1 - offsetOf(units, cursor)} more ` +
                                      "characters of the text are not in the tokens]" }));
  }

  /* The class of the character at UTF-16 index k: "space", "word" (letters, digits, marks, connector punctuation,
     and an apostrophe or hyphen between two of them) or "other"; a low surrogate takes its pair's class. */
  const classes = new Array(text.length);
  const wordChar = (c) => /[\p{L}\p{N}\p{M}\p{Pc}]/u.test(c);
  for (let k = 0; k < text.length; k++) {
    const code = text.charCodeAt(k);
    if (code >= 0xdc00 && code <= 0xdfff && k > 0) {
      classes[k] = classes[k - 1];
      continue;
    }
    const c = String.fromCodePoint(text.codePointAt(k));
    classes[k] = /\s/.test(c) ? "space" : wordChar(c) ? "word" : "other";
  }
  for (let k = 1; k + 1 < text.length; k++) {
    const joiner = /['\u2019\u2010\-]/.test(text[k]);
    if (joiner && classes[k - 1] === "word" && classes[k + 1] === "word") classes[k] = "word";
  }

  /* The tokens of token j's word: the run of characters of one class around the token's first non-space
     character, and every token with a non-space character in it; a token without one is a word alone. */
  function wordOf(j) {
    const [start, end] = ranges[j];
    let k = start;
    while (k < end && classes[k] === "space") k++;
    if (k >= end) return [j];
    const kind = classes[k];
    let a = k;
    while (a > 0 && classes[a - 1] === kind) a--;
    let b = k + 1;
    while (b < text.length && classes[b] === kind) b++;
    const word = [];
    ranges.forEach(([s, e], m) => {
      for (let x = Math.max(s, a); x < Math.min(e, b); x++) {
        if (classes[x] !== "space") {
          word.push(m);
          return;
        }
      }
    });
    return word.length ? word : [j];
  }

  return { spans, wordOf };
}

function offsetOf(units, unitIndex) {
  let lo = 0;
  let hi = units.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (units[mid] < unitIndex) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
