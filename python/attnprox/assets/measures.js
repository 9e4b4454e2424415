/* attnprox view: the maps and measurements the view shows, computed from a panel's layers (SPEC sections 2 and 3;
   docs of attnprox.metrics). A "choice" is the set of layers and heads a map averages over:
   { layers: [layer, ...], heads: null (every head) or [h] }.

   From queries Q_h [N, d] and keys K_g [N, d] (query head h reads key head g(h) = floor(h / (H / Hkv))):
     proximity  A = (A_raw + A_raw^T) / 2,  A_raw = mean over the chosen (layer, head) of Q_h K_g(h)^T / sqrt(d)
     attention  P = mean over the chosen (layer, head) of softmax_j(softcap(scaling * q_i . k_j) / T + M_ij),
                q and k after the layer's rotary embedding where it has one (the proximity: before it),
                M the layer's causal / sliding-window mask (-inf), and where the layer has sinks one more logit
                sink_h / T per row, dropped after the softmax
   Ready-made layers (matrices, mean of their heads) average their matrices over the chosen layers.
   From a proximity matrix A: AP_i = sum_{j != i} A_ij / (N - 1); iAPE_i the entropy of row i without A_ii under
   the policy (literal, shift, clamp, softmax; as attnprox.metrics; shift with the original code's 1e-8 and
   1e-10); AP^(S)_j = (1/|S|) sum_{i in S} A_ij. */

/* A panel's layers, decoded. */
function layersOf(panel) {
  return panel.layers.map((layer) => {
    const out = {
      layer: layer.layer,
      causal: !!layer.causal,
      window: layer.sliding_window || 0,
      scaling: layer.scaling,
      softcap: layer.softcap || 0,
      sinks: layer.sinks || null,
      apTokens: layer.ap_tokens ? Float64Array.from(layer.ap_tokens) : null,
      apeTokens: layer.ape_tokens ? Float64Array.from(layer.ape_tokens, (v) => (v === null ? NaN : v)) : null,
      maxError: 0,
    };
    for (const name of ["queries", "keys", "proximity", "attention"]) {
      if (!layer[name]) continue;
      out[name] = decodeArray(layer[name]);
      out.maxError = Math.max(out.maxError, layer[name].max_error);
    }
    if (out.queries) {
      [out.heads, , out.headDim] = layer.queries.shape;
      out.kvHeads = layer.keys.shape[0];
      // The attention uses them after the rotary embedding, where the layer has one (queries and keys are given
      // before it, as the proximity family measures them).
      const n = layer.queries.shape[1];
      out.attentionQueries = layer.rope ? rotated(out.queries, n, out.headDim, layer.rope) : out.queries;
      out.attentionKeys = layer.rope ? rotated(out.keys, n, out.headDim, layer.rope) : out.keys;
    }
    return out;
  });
}

/* x [heads, N, d] turned at positions 0..N-1 by the rotary embedding `rope` (docs/model-file.md, "rope"): each pair
   (a, b) of a head's vector by the angle t * inv_freq[k] (in float32, as the model computes it), scaled by
   attention_scaling, a' = a c - b s, b' = b c + a s; pairs (k, k + R/2) in the rotate_half layout, (2k, 2k + 1) in
   the interleaved one; dimensions from R on are not turned. */
function rotated(x, n, d, rope) {
  const out = Float32Array.from(x);
  const half = rope.rotary_dim / 2;
  const scaling = rope.attention_scaling || 1;
  const interleaved = rope.layout === "interleaved";
  const cos = new Float64Array(n * half);
  const sin = new Float64Array(n * half);
  for (let t = 0; t < n; t++) {
    for (let k = 0; k < half; k++) {
      const angle = Math.fround(Math.fround(t) * Math.fround(rope.inv_freq[k]));
      cos[t * half + k] = Math.fround(Math.fround(Math.cos(angle)) * scaling);
      sin[t * half + k] = Math.fround(Math.fround(Math.sin(angle)) * scaling);
    }
  }
  const rows = x.length / d;
  for (let row = 0; row < rows; row++) {
    const t = row % n;
    const base = row * d;
    for (let k = 0; k < half; k++) {
      const ia = base + (interleaved ? 2 * k : k);
      const ib = base + (interleaved ? 2 * k + 1 : k + half);
      const c = cos[t * half + k];
      const s = sin[t * half + k];
      out[ia] = x[ia] * c - x[ib] * s;
      out[ib] = x[ib] * c + x[ia] * s;
    }
  }
  return out;
}

/* Whether query i sees key j in a layer: causal, j <= i (and i - j < W with a window W); bidirectional,
   |i - j| <= W. */
function sees(layer, i, j) {
  const w = layer.window;
  return layer.causal ? j <= i && (!w || i - j < w) : !w || Math.abs(i - j) <= w;
}

function chosenHeads(choice) {
  const heads = choice.layers[0].heads;
  return choice.heads || Array.from({ length: heads }, (_, h) => h);
}

/* The proximity matrix of a choice [N * N], computed in slices between which the browser keeps running; null
   when stop() says the result is no longer wanted. */
async function proximityMatrix(n, choice, stop) {
  const out = new Float32Array(n * n);
  if (!choice.layers[0].queries) {
    for (const layer of choice.layers) {
      for (let k = 0; k < n * n; k++) out[k] += layer.proximity[k] / choice.layers.length;
    }
    return out;
  }
  // A_raw = U V^T with, per chosen layer and key head g, U's block c * (sum of the chosen heads of g's queries)
  // and V's block K_g, c = 1 / (layers * heads * sqrt(d)): one product of width (blocks * d).
  const { heads, kvHeads, headDim: d } = choice.layers[0];
  const chosen = chosenHeads(choice);
  const c = 1 / (choice.layers.length * chosen.length * Math.sqrt(d));
  const blocks = [];
  for (const layer of choice.layers) {
    for (let g = 0; g < kvHeads; g++) {
      const members = chosen.filter((h) => Math.floor(h / (heads / kvHeads)) === g);
      if (members.length) blocks.push({ layer, g, members });
    }
  }
  const width = blocks.length * d;
  const u = new Float64Array(n * width);
  const v = new Float64Array(n * width);
  blocks.forEach(({ layer, g, members }, b) => {
    for (let t = 0; t < n; t++) {
      for (let x = 0; x < d; x++) {
        let q = 0;
        for (const h of members) q += layer.queries[(h * n + t) * d + x];
        u[t * width + b * d + x] = c * q;
        v[t * width + b * d + x] = layer.keys[(g * n + t) * d + x];
      }
    }
  });
  let slice = performance.now();
  for (let i = 0; i < n; i++) {
    const ui = i * width;
    for (let j = i; j < n; j++) {
      const uj = j * width;
      let s = 0;
      for (let x = 0; x < width; x++) s += u[ui + x] * v[uj + x] + u[uj + x] * v[ui + x];
      out[i * n + j] = out[j * n + i] = s / 2;
    }
    if (performance.now() - slice > 30) {
      await yieldToBrowser();
      if (stop()) return null;
      slice = performance.now();
    }
  }
  return out;
}

/* Row i of the attention weights of a choice, into out [N] (a Float64Array); scratch is a Float64Array [N]. */
function attentionRow(n, choice, temperature, i, out, scratch) {
  out.fill(0);
  if (!choice.layers[0].queries) {
    for (const layer of choice.layers) {
      for (let j = 0; j < n; j++) out[j] += layer.attention[i * n + j] / choice.layers.length;
    }
    return out;
  }
  const { heads, kvHeads, headDim: d } = choice.layers[0];
  const chosen = chosenHeads(choice);
  const share = 1 / (choice.layers.length * chosen.length);
  const logits = scratch || new Float64Array(n);
  for (const layer of choice.layers) {
    for (const h of chosen) {
      const g = Math.floor(h / (heads / kvHeads));
      const q = (h * n + i) * d;
      let top = -Infinity;
      for (let j = 0; j < n; j++) {
        if (!sees(layer, i, j)) {
          logits[j] = -Infinity;
          continue;
        }
        const k = (g * n + j) * d;
        let s = 0;
        for (let x = 0; x < d; x++) s += layer.attentionQueries[q + x] * layer.attentionKeys[k + x];
        s *= layer.scaling;
        if (layer.softcap) s = layer.softcap * Math.tanh(s / layer.softcap);
        s /= temperature;
        logits[j] = s;
        if (s > top) top = s;
      }
      const sink = layer.sinks ? layer.sinks[h] / temperature : null;
      if (sink !== null && sink > top) top = sink;
      let total = sink === null ? 0 : Math.exp(sink - top);
      for (let j = 0; j < n; j++) {
        logits[j] = logits[j] === -Infinity ? 0 : Math.exp(logits[j] - top);
        total += logits[j];
      }
      for (let j = 0; j < n; j++) out[j] += share * logits[j] / total;
    }
  }
  return out;
}

/* The attention weights of a choice [N * N] (rows are queries), in slices; null when stop() says so. */
async function attentionMatrix(n, choice, temperature, stop) {
  const out = new Float32Array(n * n);
  const row = new Float64Array(n);
  const scratch = new Float64Array(n);
  let slice = performance.now();
  for (let i = 0; i < n; i++) {
    attentionRow(n, choice, temperature, i, row, scratch);
    out.set(row, i * n);
    if (performance.now() - slice > 30) {
      await yieldToBrowser();
      if (stop()) return null;
      slice = performance.now();
    }
  }
  return out;
}

/* Whether query i sees key j in any layer of the choice. */
function seenInChoice(choice, i, j) {
  return choice.layers.some((layer) => sees(layer, i, j));
}

/* AP_i of a proximity matrix (zeros for a single token: AP needs two). */
function apTokensOf(a, n) {
  const out = new Float64Array(n);
  if (n < 2) return out;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) if (j !== i) s += a[i * n + j];
    out[i] = s / (n - 1);
  }
  return out;
}

/* iAPE_i of a proximity matrix under a policy: NaN where the row is undefined. */
function apeTokensOf(a, n, policy) {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rowEntropy(a.subarray(i * n, (i + 1) * n), i, policy);
  return out;
}

/* -sum_{j != skip} p_j log p_j, p_j proportional to weight(row_j) as the policy says; 0 log 0 = 0; NaN when the
   normaliser is not positive (or, for "literal", when an entry is negative). */
function rowEntropy(row, skip, policy) {
  const n = row.length;
  let weight;
  if (policy === "literal") {
    for (let j = 0; j < n; j++) if (j !== skip && row[j] < 0) return NaN;
    weight = (x) => x;
  } else if (policy === "shift") {
    // The original Attention Proximity code's formula: w = A - min + 1e-8, -sum p log(p + 1e-10).
    let lowest = Infinity;
    for (let j = 0; j < n; j++) if (j !== skip && row[j] < lowest) lowest = row[j];
    let sum = 0;
    for (let j = 0; j < n; j++) if (j !== skip) sum += row[j] - lowest + 1e-8;
    if (!(sum > 0) || !Number.isFinite(sum)) return NaN;
    let shifted = 0;
    for (let j = 0; j < n; j++) {
      if (j === skip) continue;
      const p = (row[j] - lowest + 1e-8) / sum;
      shifted -= p * Math.log(p + 1e-10);
    }
    return shifted;
  } else if (policy === "clamp") {
    weight = (x) => Math.max(x, 0);
  } else {
    let highest = -Infinity;
    for (let j = 0; j < n; j++) if (j !== skip && row[j] > highest) highest = row[j];
    weight = (x) => Math.exp(x - highest);
  }
  let total = 0;
  for (let j = 0; j < n; j++) if (j !== skip) total += weight(row[j]);
  if (!(total > 0) || !Number.isFinite(total)) return NaN;
  let entropy = 0;
  for (let j = 0; j < n; j++) {
    if (j === skip) continue;
    const p = weight(row[j]) / total;
    if (p > 0) entropy -= p * Math.log(p);
  }
  return entropy;
}

/* APE from iAPE_i: the mean over the defined rows, the length-corrected mean of iAPE_i / log(N - 1) (0 per row
   for N = 2), and how many rows are undefined. value and normalized are NaN when no row is defined. */
function apeSummary(tokens) {
  const n = tokens.length;
  const uniform = n > 2 ? Math.log(n - 1) : 0;
  let sum = 0;
  let normalized = 0;
  let defined = 0;
  for (const t of tokens) {
    if (Number.isNaN(t)) continue;
    sum += t;
    normalized += uniform > 0 ? t / uniform : 0;
    defined++;
  }
  return { tokens, value: defined ? sum / defined : NaN, normalized: defined ? normalized / defined : NaN,
           undefinedRows: n - defined };
}

/* AP^(S)_j = (1/|S|) sum_{i in S} A_ij. */
function subsetProximity(a, n, selected) {
  const out = new Float64Array(n);
  for (const i of selected) for (let j = 0; j < n; j++) out[j] += a[i * n + j];
  for (let j = 0; j < n; j++) out[j] /= selected.length;
  return out;
}

function mean(values) {
  let s = 0;
  for (const v of values) s += v;
  return values.length ? s / values.length : NaN;
}
