/**
 * Plain-TypeScript twin of wasm/sparse_attention.ts: same name, same arguments (the memory first),
 * same memory. The softmax is the textbook two-pass one of spec §6.6 in f64: the maximum over the
 * scores and the sink, then the exponentials, their sum (the sink's included) and the weighted
 * values — so the online one-pass kernel is held to the definition, not to a copy of itself.
 */
export function sparse_attention_f32(mem: ArrayBufferLike, q: number, kv: number, rows: number, count: number, sink: number,
  out: number, heads: number, d: number, scale: number, row0: number, row1: number): void {
  const sinks = new Float32Array(mem, sink, heads);
  for (let r = row0; r < row1; r++) {
    const t = Math.floor(r / heads), h = r % heads;
    const qr = new Float32Array(mem, q + r * d * 4, d);
    const cand = Array.from(new Int32Array(mem, rows + t * count * 4, count)).filter((row) => row >= 0);
    const values = cand.map((row) => new Float32Array(mem, kv + row * d * 4, d));
    const z = values.map((v) => {
      let s = 0;
      for (let i = 0; i < d; i++) s += qr[i] * v[i];
      return Math.fround(scale) * s;
    });
    const o = new Float64Array(d);
    if (values.length) {
      const m = z.reduce((a, b) => Math.max(a, b), sinks[h]);
      const e = z.map((s) => Math.exp(s - m));
      const sum = e.reduce((a, b) => a + b, Math.exp(sinks[h] - m));
      values.forEach((v, j) => { for (let i = 0; i < d; i++) o[i] += (e[j] / sum) * v[i]; });
    }
    new Float32Array(mem, out + r * d * 4, d).set(o);
  }
}
