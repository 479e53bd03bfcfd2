/**
 * Argument checks of the Backend ops, shared by every backend: each validates dtypes and shapes
 * (nothing else about a tensor is needed) and returns the sizes the kernels run over, or throws
 * an error that names the op, the argument and what it should have been.
 */
import { byteSize, type DType, rowBytes, type WeightFormat } from '../tensor/dtype.js';
import { type AttentionOptions, numel, type RopeOptions, type Tensor } from './backend.js';

/** Rows × row length of an f32 tensor (its last dimension). */
export interface Rows { readonly n: number; readonly d: number }

export function f32Elems(what: string, t: Tensor, elems: number): void {
  if (t.dtype !== 'f32' || numel(t.shape) !== elems) {
    throw new Error(`${what} must be f32 with ${elems} elements, got ${t.dtype} [${t.shape.join(', ')}]`);
  }
}

export function f32Rows(what: string, t: Tensor): Rows {
  if (t.dtype !== 'f32') throw new Error(`${what} must be f32, got ${t.dtype}`);
  const d = t.shape.length ? t.shape[t.shape.length - 1] : 1;
  return { n: d ? numel(t.shape) / d : 0, d };
}

/** W [rows, k]. */
export function matrixShape(op: string, w: Tensor): { rows: number; k: number } {
  if (w.shape.length !== 2) throw new Error(`${op}: weight must be 2-D, got [${w.shape.join(', ')}]`);
  return { rows: w.shape[0], k: w.shape[1] };
}

/** matmul's token count n of x [n, k]; y must be [n, rows]. */
export function matmulTokens(w: { rows: number; k: number }, x: Tensor, y: Tensor): number {
  if (x.dtype !== 'f32' || numel(x.shape) % w.k !== 0 || numel(x.shape) === 0) {
    throw new Error(`matmul: x must be f32 [n, ${w.k}], got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  const n = numel(x.shape) / w.k;
  f32Elems('matmul: y', y, n * w.rows);
  return n;
}

/** add / mul: b is a's shape (bstep = d) or one row broadcast (bstep = 0). */
export function binaryShape(op: string, a: Tensor, b: Tensor, y: Tensor): Rows & { bstep: number } {
  const r = f32Rows(`${op}: a`, a);
  f32Elems(`${op}: y`, y, r.n * r.d);
  const nb = numel(b.shape);
  if (b.dtype !== 'f32' || (nb !== r.n * r.d && nb !== r.d)) {
    throw new Error(`${op}: b must be f32 with a's ${r.n * r.d} elements or one row of ${r.d}, got ${b.dtype} [${b.shape.join(', ')}]`);
  }
  return { ...r, bstep: nb === r.n * r.d ? r.d : 0 };
}

/** rope: tokens n and the rotated width; positions must be non-negative integers. */
export function ropeShape(x: Tensor, freqs: Float32Array, positions: ArrayLike<number>, o: RopeOptions): { n: number; ropeDim: number } {
  const ropeDim = o.ropeDim ?? o.headDim;
  const width = o.heads * o.headDim;
  if (x.dtype !== 'f32' || width <= 0 || numel(x.shape) % width !== 0) {
    throw new Error(`rope: x must be f32 [n, ${o.heads}·${o.headDim}], got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  if (!(ropeDim > 0 && ropeDim % 2 === 0 && ropeDim <= o.headDim)) throw new Error(`rope: ropeDim ${ropeDim} must be even and ≤ headDim ${o.headDim}`);
  if (freqs.length !== ropeDim / 2) throw new Error(`rope: ${freqs.length} frequencies for ropeDim ${ropeDim} (need ${ropeDim / 2})`);
  const n = numel(x.shape) / width;
  if (positions.length !== n) throw new Error(`rope: ${positions.length} positions for ${n} tokens`);
  for (let i = 0; i < n; i++) {
    const p = positions[i];
    if (!Number.isInteger(p) || p < 0 || p > 0x7fffffff) throw new Error(`rope: position ${p} is not a non-negative integer`);
  }
  return { n, ropeDim };
}

/** embedding: the table's [vocab, d]; every id must be a row of it. */
export function embeddingShape(table: Tensor, ids: ArrayLike<number>, y: Tensor): { vocab: number; d: number } {
  if (table.shape.length !== 2 || table.scale) throw new Error(`embedding: table must be an unscaled 2-D tensor, got [${table.shape.join(', ')}]`);
  const [vocab, d] = table.shape;
  f32Elems('embedding: y', y, ids.length * d);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`embedding: id ${id} is outside the table's ${vocab} rows`);
  }
  return { vocab, d };
}

/** copy: f32 x into y of f32 or f16 with as many elements. */
export function copyShape(x: Tensor, y: Tensor): Rows {
  const r = f32Rows('copy: x', x);
  if ((y.dtype !== 'f32' && y.dtype !== 'f16') || numel(y.shape) !== r.n * r.d) {
    throw new Error(`copy: y must be f32 or f16 with x's ${r.n * r.d} elements, got ${y.dtype} [${y.shape.join(', ')}]`);
  }
  return r;
}

/** attention: query tokens n and the window (0 = none). */
export function attentionShape(q: Tensor, k: Tensor, v: Tensor, out: Tensor, o: AttentionOptions): { n: number; window: number } {
  const { heads, kvHeads, headDim, start } = o;
  const window = o.window ?? 0;
  if (![heads, kvHeads, headDim].every((x) => Number.isInteger(x) && x > 0) || heads % kvHeads !== 0) {
    throw new Error(`attention: heads ${heads} must be a positive multiple of kvHeads ${kvHeads}, headDim ${headDim} positive`);
  }
  if (!Number.isInteger(window) || window < 0) throw new Error(`attention: window ${window} must be a non-negative integer`);
  const width = heads * headDim, kvWidth = kvHeads * headDim;
  if (q.dtype !== 'f32' || numel(q.shape) % width !== 0 || numel(q.shape) === 0) {
    throw new Error(`attention: q must be f32 [n, ${heads}·${headDim}], got ${q.dtype} [${q.shape.join(', ')}]`);
  }
  const n = numel(q.shape) / width;
  f32Elems('attention: out', out, n * width);
  for (const [what, c] of [['kCache', k], ['vCache', v]] as const) {
    if ((c.dtype !== 'f32' && c.dtype !== 'f16') || c.dtype !== k.dtype || c.shape.length !== 2 || c.shape[1] !== kvWidth) {
      throw new Error(`attention: ${what} must be f32 or f16 [capacity, ${kvHeads}·${headDim}] like kCache, got ${c.dtype} [${c.shape.join(', ')}]`);
    }
  }
  const capacity = Math.min(k.shape[0], v.shape[0]);
  if (!Number.isInteger(start) || start < 0 || start + n > capacity) {
    throw new Error(`attention: positions ${start} … ${start + n - 1} are outside the cache's ${capacity} rows`);
  }
  return { n, window };
}

/** sparseAttention: tokens n, heads and head width d. */
export function sparseAttentionShape(q: Tensor, kv: Tensor, rows: Int32Array, count: number, sink: Tensor, out: Tensor): { n: number; heads: number; d: number } {
  if (kv.dtype !== 'f32' || kv.shape.length !== 2 || kv.shape[1] === 0) {
    throw new Error(`sparseAttention: kv must be f32 [rows, d], got ${kv.dtype} [${kv.shape.join(', ')}]`);
  }
  const [kvRows, d] = kv.shape;
  const heads = numel(sink.shape);
  if (sink.dtype !== 'f32' || heads === 0) throw new Error(`sparseAttention: sink must be f32 [heads], got ${sink.dtype} [${sink.shape.join(', ')}]`);
  if (q.dtype !== 'f32' || numel(q.shape) % (heads * d) !== 0) {
    throw new Error(`sparseAttention: q must be f32 [n, ${heads}·${d}], got ${q.dtype} [${q.shape.join(', ')}]`);
  }
  const n = numel(q.shape) / (heads * d);
  f32Elems('sparseAttention: out', out, n * heads * d);
  if (!Number.isInteger(count) || count < 0) throw new Error(`sparseAttention: count ${count} must be a non-negative integer`);
  if (rows.length !== n * count) throw new Error(`sparseAttention: ${rows.length} candidate rows for ${n} tokens × ${count}`);
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] < -1 || rows[i] >= kvRows) throw new Error(`sparseAttention: candidate row ${rows[i]} is outside kv's ${kvRows} rows (−1 skips)`);
  }
  return { n, heads, d };
}

/** indexerScores: tokens n, heads, key width d, key rows (entries) and output columns cols. */
export function indexerScoresShape(q: Tensor, w: Tensor, keys: Tensor, visible: Int32Array, heads: number, out: Tensor):
  { n: number; heads: number; d: number; entries: number; cols: number } {
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`indexerScores: heads ${heads} must be a positive integer`);
  if (keys.dtype !== 'f32' || keys.shape.length !== 2 || keys.shape[1] === 0) {
    throw new Error(`indexerScores: keys must be f32 [entries, d], got ${keys.dtype} [${keys.shape.join(', ')}]`);
  }
  const [entries, d] = keys.shape;
  if (q.dtype !== 'f32' || numel(q.shape) % (heads * d) !== 0) {
    throw new Error(`indexerScores: q must be f32 [n, ${heads}·${d}], got ${q.dtype} [${q.shape.join(', ')}]`);
  }
  const n = numel(q.shape) / (heads * d);
  f32Elems('indexerScores: w', w, n * heads);
  if (out.dtype !== 'f32' || out.shape.length !== 2 || out.shape[0] !== n) {
    throw new Error(`indexerScores: out must be f32 [${n}, cols], got ${out.dtype} [${out.shape.join(', ')}]`);
  }
  const cols = out.shape[1];
  if (visible.length !== n) throw new Error(`indexerScores: ${visible.length} visible counts for ${n} tokens`);
  for (let t = 0; t < n; t++) {
    if (visible[t] < 0 || visible[t] > entries || visible[t] > cols) {
      throw new Error(`indexerScores: token ${t} sees ${visible[t]} entries, outside 0 … min(${entries} key rows, ${cols} columns)`);
    }
  }
  return { n, heads, d, entries, cols };
}

export function topkCount(k: number, d: number): void {
  if (!Number.isInteger(k) || k < 1 || k > d) throw new Error(`topk: k = ${k} must be from 1 to the row length ${d}`);
}

// ---- memory ops (view, rows): where a slice of a tensor's bytes starts and how long it is ----------

/** Bytes of a `dtype` tensor of `shape`, or an error naming it. */
export function tensorBytes(dtype: DType, shape: readonly number[], what: string): number {
  for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: bad shape [${shape.join(', ')}]`);
  const n = byteSize(dtype, numel(shape));
  if (n === undefined) throw new Error(`${what}: [${shape.join(', ')}] is not a whole number of ${dtype} blocks`);
  return n;
}

/** Shape of the scale tensor of a [rows, cols] weight in `format`. */
export function scaleShape(format: WeightFormat, rows: number, cols: number): [number, number] {
  const s = format.scale!;
  return [Math.ceil(rows / s.rows), Math.ceil(cols / s.cols)];
}

/** view(t, offset, shape) of a tensor of `byteLength` bytes: the view's first byte and length. */
export function viewRange(t: Tensor, byteLength: number, offset: number, shape: readonly number[]): { start: number; bytes: number } {
  if (t.scale) throw new Error('view: a scaled weight can only be sliced by rows(); use rows(t, row0, row1)');
  const start = byteSize(t.dtype, offset);
  if (!Number.isInteger(offset) || offset < 0 || start === undefined) {
    throw new Error(`view: offset ${offset} is not a whole number of ${t.dtype} blocks`);
  }
  const bytes = tensorBytes(t.dtype, shape, 'view');
  if (start + bytes > byteLength) {
    throw new Error(`view: [${shape.join(', ')}] at element ${offset} overruns a tensor of [${t.shape.join(', ')}]`);
  }
  return { start, bytes };
}

/** A byte range and the shape it holds. */
export interface Slice { readonly start: number; readonly bytes: number; readonly shape: [number, number] }

/** rows(t, row0, row1) of a 2-D weight: its rows' bytes and, for scaled formats, the scale rows' (tile-aligned). */
export function rowsRange(t: Tensor, row0: number, row1: number): { rows: Slice; scale?: Slice } {
  if (t.shape.length !== 2) throw new Error(`rows: needs a 2-D tensor, got [${t.shape.join(', ')}]`);
  const [rows, cols] = t.shape;
  if (!(Number.isInteger(row0) && Number.isInteger(row1) && row0 >= 0 && row0 < row1 && row1 <= rows)) {
    throw new Error(`rows: bad range [${row0}, ${row1}) of ${rows} rows`);
  }
  const rb = rowBytes(t.dtype, cols);
  const slice: Slice = { start: row0 * rb, bytes: (row1 - row0) * rb, shape: [row1 - row0, cols] };
  if (!t.scale) return { rows: slice };
  const tr = t.scale.rows, st = t.scale.tensor;
  if (row0 % tr !== 0 || (row1 % tr !== 0 && row1 !== rows)) {
    throw new Error(`rows: [${row0}, ${row1}) does not follow the ${tr}-row scale tiles`);
  }
  const srb = rowBytes(st.dtype, st.shape[1]);
  const s0 = row0 / tr, s1 = Math.ceil(row1 / tr);
  return { rows: slice, scale: { start: s0 * srb, bytes: (s1 - s0) * srb, shape: [s1 - s0, st.shape[1]] } };
}
