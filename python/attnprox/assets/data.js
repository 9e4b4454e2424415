/* attnprox view: the arrays of the page's data, decoded (attnprox/html_view.py, encode_array, writes them).

   Each array is {"dtype", "shape", "scale", "offset", "max_error", "data"}: data is the base64 of little-endian
   float32 values, of float16 values, or of uint8 codes; the value is offset + stored * scale. The decoded values
   are a Float32Array in row-major order, equal to html_view.decode_array's. ASCII only. */

let float16Table = null;

/* The value of every float16 bit pattern (sign, 5 exponent bits, 10 fraction bits). */
function float16Values() {
  if (float16Table) return float16Table;
  float16Table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    float16Table[bits] = exponent === 0 ? sign * fraction * 2 ** -24
      : exponent === 31 ? (fraction ? NaN : sign * Infinity)
      : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  return float16Table;
}

function bytesOf(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let k = 0; k < binary.length; k++) bytes[k] = binary.charCodeAt(k);
  return bytes;
}

function decodeArray(encoded) {
  const bytes = bytesOf(encoded.data);
  const count = encoded.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  const { scale, offset } = encoded;
  if (encoded.dtype === "float32") {
    const stored = new Float32Array(bytes.buffer, 0, count);
    for (let k = 0; k < count; k++) out[k] = offset + stored[k] * scale;
  } else if (encoded.dtype === "float16") {
    const stored = new Uint16Array(bytes.buffer, 0, count);
    const table = float16Values();
    for (let k = 0; k < count; k++) out[k] = offset + table[stored[k]] * scale;
  } else {
    for (let k = 0; k < count; k++) out[k] = offset + bytes[k] * scale;
  }
  return out;
}

/* Yields to the browser (events, painting) between slices of long work, without setTimeout's clamping. */
function yieldToBrowser() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
