/**
 * Pieces the DeepSeek architecture files share: linear maps from host activations through the
 * backend's matrix kernels, row-wise RMSNorm, and top-k selection. The DeepSeek forward passes keep
 * their per-token state on the host (latent caches, compressor buffers) and send every product with
 * a stored weight to the backend, so this is where host and backend meet.
 */
import { type Backend, numel, type Tensor } from '../kernels/backend.js';
import { byteSize } from '../tensor/dtype.js';
import { dequantizeRow } from '../tensor/quant-gguf.js';
import type { WeightFile } from '../formats/weight-file.js';
import type { ModelDescription } from './model.js';

/** y[r] = w ⊙ x[r] / sqrt(mean(x[r]²) + eps) for every row of width `width`; w null = weightless. */
export function rmsnormRows(x: Float32Array, width: number, w: Float32Array | null, eps: number, y = x): Float32Array {
  for (let o = 0; o < x.length; o += width) {
    let ss = 0;
    for (let i = o; i < o + width; i++) ss += x[i] * x[i];
    const inv = 1 / Math.sqrt(ss / width + eps);
    if (w) for (let i = 0; i < width; i++) y[o + i] = w[i] * (x[o + i] * inv);
    else for (let i = o; i < o + width; i++) y[i] = x[i] * inv;
  }
  return y;
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Indices of the k largest of v[0..n) (ties: lower index first), largest first. */
export function topIndices(v: ArrayLike<number>, n: number, k: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => (v[b] - v[a]) || (a - b));
  return idx.slice(0, k);
}

/** A small tensor of the file (norm weights, biases, scales) as f32 on the host, whatever its stored type. */
export function readVector(file: WeightFile, name: string): Float32Array {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`${file.path}: no tensor named '${name}'`);
  const out = new Float32Array(numel(t.shape));
  dequantizeRow(t.dtype, file.read(name), out, out.length);
  return out;
}

/** A sequence's saved state: its f32 parts, then its token ids (as int32), in one byte array. */
export function packState(parts: readonly Float32Array[], tokens: readonly number[]): Uint8Array {
  const all = [...parts, new Float32Array(Int32Array.from(tokens).buffer)];
  const out = new Float32Array(all.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of all) { out.set(p, o); o += p.length; }
  return new Uint8Array(out.buffer);
}

/** Bytes of a weight tensor and its block scales. */
export function tensorBytes(t: Tensor): number {
  return (byteSize(t.dtype, numel(t.shape)) ?? 0) + (t.scale ? tensorBytes(t.scale.tensor) : 0);
}

/** A backend f32 buffer reused between calls, grown (at least doubled) when a call needs more. */
export class DeviceBuffer {
  private t?: Tensor;

  constructor(private readonly be: Backend, private readonly what: string) {}

  /** A view of the buffer's first numel(shape) values with `shape`. */
  view(shape: readonly number[]): Tensor {
    const n = numel(shape), have = this.t?.shape[0] ?? 0;
    if (n > have) {
      if (this.t) this.be.free(this.t);
      this.t = this.be.alloc('f32', [Math.max(n, 2 * have)], this.what);
    }
    return this.be.view(this.t!, 0, shape);
  }

  free(): void {
    if (this.t) this.be.free(this.t);
    this.t = undefined;
  }
}

/** Host ↔ backend linear maps through two reusable activation buffers. */
export class HostLinear {
  private readonly xT: DeviceBuffer;
  private readonly yT: DeviceBuffer;
  /** Weight bytes the matrix kernels have streamed (benchmarks divide by time for bandwidth). */
  weightBytes = 0;

  /**
   * `perToken`: several rows go through the matrix-vector kernel one by one instead of the
   * matrix-matrix one, so a token's output does not depend on which others share its pass
   * (matmul kernels sum in another order). The DeepSeek models need that: their FP8 rounding of
   * activations turns a last-bit difference into a different value now and then, so a prefill
   * (or a speculative verify pass) would not give exactly what one-token decoding gives. On the
   * CPU the FP8 and FP4 matvec kernels are also the faster ones for the rows a step has.
   */
  constructor(private readonly be: Backend, private readonly perToken = false) {
    this.xT = new DeviceBuffer(be, 'activations');
    this.yT = new DeviceBuffer(be, 'activations');
  }

  /** x [n, k] → x·Wᵀ [n, rows], after `prepare` (e.g. an activation round trip) on a copy of x. */
  async run(w: Tensor, x: Float32Array, n: number, prepare?: (x: Float32Array) => void): Promise<Float32Array> {
    const [rows, k] = w.shape;
    if (x.length !== n * k) throw new Error(`linear: input of ${x.length} values is not [${n}, ${k}]`);
    if (prepare) {
      x = x.slice();
      prepare(x);
    }
    const be = this.be;
    const xv = this.xT.view([n, k]), yv = this.yT.view([n, rows]);
    be.upload(xv, x);
    if (n === 1) be.matvec(w, xv, yv);
    else if (this.perToken) for (let t = 0; t < n; t++) be.matvec(w, be.view(xv, t * k, [1, k]), be.view(yv, t * rows, [1, rows]));
    else be.matmul(w, xv, yv);
    this.weightBytes += tensorBytes(w);
    return be.download(yv);
  }

  free(): void {
    this.xT.free();
    this.yT.free();
  }
}

/**
 * Runs `expert(e, slots)` once per expert over the tokens routed to it: `chosen` holds K expert
 * ids per token, `slots` are indices into `chosen` (token = slot div K). One matrix pass per
 * expert serves all its tokens.
 */
export async function forEachExpert(chosen: Int32Array, expert: (e: number, slots: number[]) => Promise<void>): Promise<void> {
  const byExpert = new Map<number, number[]>();
  for (let i = 0; i < chosen.length; i++) {
    const list = byExpert.get(chosen[i]);
    if (list) list.push(i);
    else byExpert.set(chosen[i], [i]);
  }
  for (const [e, slots] of [...byExpert].sort((a, b) => a[0] - b[0])) await expert(e, slots);
}

/**
 * What the DeepSeek models share around their forward passes: handing out sequences of a checked
 * capacity and releasing everything on close.
 */
export abstract class SequenceOwner<S extends { free(): void }> {
  /** Context newSequence() gives by default. */
  readonly defaultContext: number;
  private readonly sequences = new Set<S>();
  private closed = false;

  constructor(description: ModelDescription, private readonly trainedContext: number,
    private readonly release: () => Promise<void>, private readonly file?: WeightFile) {
    this.defaultContext = description.details.defaultContext as number;
  }

  protected abstract makeSequence(capacity: number, onFree: () => void): S;

  newSequence(opts: { contextLength?: number } = {}): S {
    if (this.closed) throw new Error('the model is closed');
    const n = opts.contextLength ?? this.defaultContext;
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`contextLength ${n} must be a positive integer`);
    if (n > this.trainedContext) throw new Error(`context length ${n} is longer than the model's context of ${this.trainedContext} tokens`);
    const s = this.makeSequence(n, () => this.sequences.delete(s));
    this.sequences.add(s);
    return s;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.sequences]) s.free();
    await this.release();
    this.file?.close();
  }
}
