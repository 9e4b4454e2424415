// Reference tokenizer harness: runs an independent JavaScript tokenizer over a list of texts so that the
// Python tests can compare the project's C++ tokenizer against it.
//
//   ATTNPROX_JS_MODULES=/tmp/jsref node tests/tokenizer/js/reference_encode.mjs JOB.json OUT.json
//
// ATTNPROX_JS_MODULES names a folder holding node_modules/ with @lenml/tokenizers@3.7.2 and
// gpt-3-encoder@1.1.4 (npm install --prefix DIR @lenml/tokenizers@3.7.2 gpt-3-encoder@1.1.4).
//
// JOB.json:
//   {"tokenizer": {"kind": "lenml", "tokenizer_json": PATH, "tokenizer_config": PATH or null}
//              or {"kind": "gpt-3-encoder"},
//    "texts": [string, ...],
//    "add_special_tokens": [false, true],   // optional: which encodings to make (false -> "ids", true -> "ids_special")
//    "decode": true,                        // optional: decode "ids" into "decoded"
//    "clean_up_tokenization_spaces": false} // optional (lenml only), see below
//
// OUT.json:
//   {"results": [{"ids": [...], "ids_special": [...], "decoded": "..."} or {"error": "..."}, ...],
//    "tokenizer": {...}, "package": {"name": ..., "version": ...},
//    "timing": {"load_seconds", "encode_seconds", "encode_special_seconds", "decode_seconds"},
//    "tokens": total length of all "ids", "tokens_special": total length of all "ids_special"}
//
// Semantics follow Hugging Face `tokenizers` (Rust), the arbiter of correctness:
//   ids         = encode(text, add_special_tokens=False)
//   ids_special = encode(text, add_special_tokens=True)   (gpt-3-encoder has no special tokens: same as ids)
//   decoded     = decode(ids, skip_special_tokens=False)  ("" for no ids; @lenml refuses an empty list)
// @lenml (like transformers.js) applies transformers' clean_up_tokenization() after the decoder whenever
// tokenizer_config's clean_up_tokenization_spaces is true or absent; the Rust library never does (its WordPiece
// decoder does its own cleanup), so the harness passes clean_up_tokenization_spaces=false unless the job says
// otherwise.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";

function fail(message) {
  process.stderr.write(`reference_encode: ${message}\n`);
  process.exit(2);
}

function readJSON(path) {
  let text = readFileSync(path, "utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM before the JSON document itself
  return JSON.parse(text);
}

function moduleRequire() {
  const dir = process.env.ATTNPROX_JS_MODULES;
  if (!dir) fail("set ATTNPROX_JS_MODULES to a folder that contains node_modules/");
  // createRequire resolves bare names as a file in `dir` would: from dir/node_modules upwards.
  return createRequire(join(resolve(dir), "attnprox-reference.cjs"));
}

function packageInfo(require, name) {
  try {
    const root = dirname(require.resolve(`${name}/package.json`));
    const pkg = readFileSync(join(root, "package.json"), "utf8");
    return { name, version: JSON.parse(pkg).version };
  } catch {
    // @lenml/tokenizers' "exports" map does not list package.json; find it from the main entry instead.
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 4; i++, dir = dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
        if (pkg.name === name) return { name, version: pkg.version };
      } catch {
        // keep looking upwards
      }
    }
    return { name, version: null };
  }
}

// gpt-3-encoder's encode() grows its result with Array.concat once per pre-token, which is quadratic in the
// number of tokens (about 1.3 s for 100 KB of English). Its output is a pure function of the sequence of
// pre-tokens that its regex `pat` finds, so a long text is encoded in pieces that end at pre-token
// boundaries; a piece is used only if the package's own regex (read from Encoder.js) finds exactly the same
// pre-tokens in it as in the whole text, otherwise the text is encoded in one call.
const GPT3_CHUNK_CHARS = 2048;

function chunkedGpt3Encode(gpt3, require) {
  let pat = null;
  try {
    const source = readFileSync(require.resolve("gpt-3-encoder/Encoder.js"), "utf8");
    const found = /^const pat = \/(.+)\/([a-z]*)$/m.exec(source);
    if (found) pat = new RegExp(found[1], found[2].includes("g") ? found[2] : found[2] + "g");
  } catch {
    pat = null;
  }
  if (pat === null) return (text) => gpt3.encode(text);
  const split = (text) => Array.from(text.matchAll(pat), (m) => m[0]);
  return (text) => {
    if (text.length <= 2 * GPT3_CHUNK_CHARS) return gpt3.encode(text);
    const pieces = split(text);
    if (pieces.join("") !== text) return gpt3.encode(text);
    const chunks = [];
    let start = 0;
    let length = 0;
    for (let i = 0; i < pieces.length; i++) {
      length += pieces[i].length;
      // Cut only after a pre-token that ends in a non-space, so that no `\s+(?!\S)` look-ahead straddles a cut.
      if (length >= GPT3_CHUNK_CHARS && i + 1 < pieces.length && /\S$/u.test(pieces[i])) {
        chunks.push([start, i + 1]);
        start = i + 1;
        length = 0;
      }
    }
    chunks.push([start, pieces.length]);
    const ids = [];
    for (const [from, to] of chunks) {
      const part = pieces.slice(from, to);
      const chunk = part.join("");
      const again = split(chunk);
      if (again.length !== part.length || again.some((piece, k) => piece !== part[k])) return gpt3.encode(text);
      for (const id of gpt3.encode(chunk)) ids.push(id);
    }
    return ids;
  };
}

// Returns {encode(text, addSpecial) -> number[], decode(ids) -> string, pkg, sameWithSpecial?}.
function loadTokenizer(spec, job) {
  const require = moduleRequire();
  if (spec.kind === "gpt-3-encoder") {
    const gpt3 = require("gpt-3-encoder");
    const encode = chunkedGpt3Encode(gpt3, require);
    return {
      encode: (text) => encode(text),
      sameWithSpecial: true, // GPT-2's BPE adds no special tokens: ids_special is ids
      decode: (ids) => (ids.length === 0 ? "" : gpt3.decode(ids)),
      pkg: packageInfo(require, "gpt-3-encoder"),
    };
  }
  if (spec.kind === "lenml") {
    const { TokenizerLoader } = require("@lenml/tokenizers");
    if (!spec.tokenizer_json) fail("tokenizer.tokenizer_json is required for kind lenml");
    const tokenizerJSON = readJSON(spec.tokenizer_json);
    const tokenizerConfig = spec.tokenizer_config ? readJSON(spec.tokenizer_config) : {};
    const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
    const cleanup = job.clean_up_tokenization_spaces ?? false;
    return {
      encode: (text, addSpecial) => tokenizer.encode(text, { add_special_tokens: addSpecial }),
      decode: (ids) =>
        ids.length === 0
          ? ""
          : tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: cleanup }),
      pkg: packageInfo(require, "@lenml/tokenizers"),
    };
  }
  fail(`unknown tokenizer kind ${JSON.stringify(spec.kind)} (expected "lenml" or "gpt-3-encoder")`);
}

function main(argv) {
  if (argv.length !== 2) fail("usage: reference_encode.mjs JOB.json OUT.json");
  const [jobPath, outPath] = argv;
  const job = readJSON(jobPath);
  if (!job.tokenizer || typeof job.tokenizer !== "object") fail("job.tokenizer is required");
  if (!Array.isArray(job.texts)) fail("job.texts must be a list of strings");
  const modes = job.add_special_tokens ?? [false, true];
  const plain = modes.includes(false);
  const special = modes.includes(true);
  const decode = plain && job.decode !== false;

  const t0 = performance.now();
  const tok = loadTokenizer(job.tokenizer, job);
  const timing = { load_seconds: (performance.now() - t0) / 1000, encode_seconds: 0, encode_special_seconds: 0,
                   decode_seconds: 0 };
  let tokens = 0;
  let tokensSpecial = 0;
  const results = job.texts.map((text) => {
    try {
      if (typeof text !== "string") throw new Error(`text is ${typeof text}, not a string`);
      const row = {};
      if (plain) {
        const t = performance.now();
        row.ids = Array.from(tok.encode(text, false));
        timing.encode_seconds += (performance.now() - t) / 1000;
        tokens += row.ids.length;
      }
      if (special && plain && tok.sameWithSpecial) {
        row.ids_special = row.ids.slice();
        tokensSpecial += row.ids_special.length;
      } else if (special) {
        const t = performance.now();
        row.ids_special = Array.from(tok.encode(text, true));
        timing.encode_special_seconds += (performance.now() - t) / 1000;
        tokensSpecial += row.ids_special.length;
      }
      if (decode) {
        const t = performance.now();
        row.decoded = tok.decode(row.ids);
        timing.decode_seconds += (performance.now() - t) / 1000;
      }
      return row;
    } catch (err) {
      return { error: String(err && err.message ? err.message : err) };
    }
  });
  const out = { results, tokenizer: job.tokenizer, package: tok.pkg, timing, tokens, tokens_special: tokensSpecial };
  writeFileSync(outPath, JSON.stringify(out));
}

main(process.argv.slice(2));
