/**
 * Plain-TypeScript twin of wasm/indexer.ts: same name, same arguments (the memory first), same
 * memory. Written from the definition of spec §6.5 with the kernel's f32 summation order spelled
 * out (every operation rounded to f32): each dot keeps four lane sums of j mod 4 over the whole
 * fours, adds them (0 + 1) + (2 + 3), then the tail in order; heads are accumulated in order.
 */
const f = Math.fround;

/** q · k over d f32 values, in the kernel's order. */
function dot(q: Float32Array, qo: number, k: Float32Array, ko: number, d: number): number {
  const lanes = [0, 0, 0, 0], d4 = d - (d % 4);
  for (let j = 0; j < d4; j++) lanes[j % 4] = f(lanes[j % 4] + f(q[qo + j] * k[ko + j]));
  let s = f(f(lanes[0] + lanes[1]) + f(lanes[2] + lanes[3]));
  for (let j = d4; j < d; j++) s = f(s + f(q[qo + j] * k[ko + j]));
  return s;
}

export function indexer_scores_f32(mem: ArrayBufferLike, q: number, w: number, keys: number, visible: number, out: number,
  heads: number, d: number, cols: number, row0: number, row1: number): void {
  const vis = new Int32Array(mem, visible);
  const qs = new Float32Array(mem, q), ws = new Float32Array(mem, w), ks = new Float32Array(mem, keys), os = new Float32Array(mem, out);
  for (let r = row0; r < row1; r++) {
    const t = Math.floor(r / cols), e = r % cols;
    if (e >= vis[t]) { os[r] = -Infinity; continue; }
    let s = 0;
    for (let h = 0; h < heads; h++) {
      const x = dot(qs, (t * heads + h) * d, ks, e * d, d);
      if (x > 0) s = f(s + f(ws[t * heads + h] * x));
    }
    os[r] = s;
  }
}
