/**
 * The CPU backend: tensors in one shared WebAssembly.Memory (heap.ts), ops run by the WASM SIMD
 * kernels, split over a worker pool (pool.ts). Ops run to completion before they return.
 */
import { type DType, formatName, rowBytes, type WeightFormat } from '../../tensor/dtype.js';
import { dequantizeRow } from '../../tensor/quant-gguf.js';
import {
  type AttentionOptions, type Backend, formatOf, intoView, type RopeOptions, type Tensor, type TensorScale, type TopK, type WeightSource,
  type WeightSpec,
} from '../backend.js';
import {
  attentionShape, binaryShape, copyShape, embeddingShape, f32Elems, f32Rows, matmulTokens, matrixShape, ropeShape, rowsRange, scaleShape,
  indexerScoresShape, sparseAttentionShape, tensorBytes, topkCount, viewRange,
} from '../op-checks.js';
import { WasmHeap } from './heap.js';
import { ACT_QUANTIZERS } from './kernels-quant.js';
import { CHUNKS_PER_THREAD, defaultThreads, WorkerPool } from './pool.js';
import { type ActQuantizer, MATRIX_KERNELS, type MatrixKernel } from './registry.js';
import { kernelImports, kernelModule } from './wasm-module.js';

/**
 * Block bytes of the formats whose matvecs switch paths on subnormal block scales (an f16 heads
 * each block). Q8_0 only: its scales are amax/127, subnormal below amax 0.0078 (72 % of the blocks
 * of the synthetic 1.1B model's output and down projections); Q4_0's amax/8 practically never are.
 */
const F16_HEADED: Partial<Record<DType, number>> = { q8_0: 34 };

/**
 * Whether a weight of one of those formats has a subnormal f16 block scale (a block of tiny
 * weights). Their matvecs multiply the scale's raw bits (f16 · 2^−112) by the activation's scale;
 * with a subnormal there, this x86 takes a microcode assist per block (a third of the speed), so
 * such weights go through a path that forms the products with fused multiply-adds instead.
 */
function subnormalScales(dtype: DType, b: Uint8Array): boolean {
  const block = F16_HEADED[dtype];
  if (!block) return false;
  // exponent bits zero, mantissa bits not (zero scales are fine)
  for (let i = 0; i + 1 < b.length; i += block) if ((b[i + 1] & 0x7c) === 0 && (b[i] | (b[i + 1] & 3)) !== 0) return true;
  return false;
}

function panelColumns(opts: CpuBackendOptions): number {
  const p = opts.panelColumns ?? 2048;
  // Up to 65536: the panel kernels stage a panel of x in a thread's scratch.
  if (!(Number.isInteger(p) && p >= 0 && p <= 65536 && p % 8 === 0)) throw new Error(`panelColumns must be 0 or a multiple of 8 up to 65536, got ${p}`);
  return p;
}

/** Weight bytes a matrix op's chunk should hold at least (see matrix()). */
const CHUNK_BYTES = 512 * 1024;

export interface CpuBackendOptions {
  /** Threads including the caller; default MINKE_THREADS, else os.availableParallelism(). */
  readonly threads?: number;
  /**
   * Smallest jobs worth splitting between threads: matrix weights of `matrixBytes`, row ops on
   * `opElements` values (default 256 KiB and 32768; smaller jobs cost less than a dispatch).
   * Tests set both to 0 to send every job through the pool.
   */
  readonly parallelMin?: { readonly matrixBytes?: number; readonly opElements?: number };
  /**
   * Use the int8-activation kernel variants where a format has one (FP4: x quantised to q8_0
   * first; faster, approximate against f32 x). Default: MINKE_INT8_ACT=1, else off (exact kernels).
   */
  readonly fastActivations?: boolean;
  /**
   * f16 / bf16 matrices with longer rows, loaded as matrixOnly, are stored as column panels of this
   * many columns (see CpuTensor.panel). Default 2048; a multiple of 8 up to 65536; 0 keeps every matrix in rows.
   */
  readonly panelColumns?: number;
}

export class CpuTensor implements Tensor {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    /** Byte offset in the backend's memory. */
    readonly ptr: number,
    readonly byteLength: number,
    /** Allocated by the backend (freeable), as opposed to a view. */
    readonly owned: boolean,
    readonly scale?: TensorScale,
  ) {}

  /**
   * Whether some block scale is a subnormal f16 (formats with an f16 at the head of each block:
   * see subnormalScales). Set when weights are loaded or uploaded, kept by row views.
   */
  subnormalScales = false;

  /**
   * Columns per panel when the matrix is stored as column panels, else 0 (plain rows). Panel p
   * holds every row's columns [p·panel, p·panel + width), row after row, so a matvec reads x one
   * panel at a time (it stays in L1 beside the streaming weights) and the weights still stream in
   * order. Only loadWeight makes such tensors, for matrixOnly weights.
   */
  panel = 0;
}

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly heap: WasmHeap;
  readonly pool: WorkerPool;
  private readonly kernels: Map<string, MatrixKernel>;
  private readonly quantizers: Map<string, ActQuantizer>;
  private scratchPtr = 0;
  private scratchBytes = 0;
  private opThreads: number;
  private readonly minMatrixBytes: number;
  private readonly minOpElements: number;
  private readonly panelColumns: number;

  private constructor(heap: WasmHeap, pool: WorkerPool, opts: CpuBackendOptions) {
    this.heap = heap;
    this.pool = pool;
    this.kernels = new Map();
    this.setFastActivations(opts.fastActivations ?? process.env.MINKE_INT8_ACT === '1');
    this.quantizers = new Map(ACT_QUANTIZERS.map((q) => [q.act, q]));
    this.opThreads = pool.threads;
    this.minMatrixBytes = opts.parallelMin?.matrixBytes ?? 1 << 18;
    this.minOpElements = opts.parallelMin?.opElements ?? 1 << 15;
    this.panelColumns = panelColumns(opts);
  }

  static async create(opts: CpuBackendOptions = {}): Promise<CpuBackend> {
    panelColumns(opts); // checked before any worker starts
    const threads = defaultThreads(opts.threads);
    // The module's static data ends at __heap_base: ask a throwaway instance where that is.
    const probe = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const heapBase = (new WebAssembly.Instance(kernelModule(), kernelImports(probe)).exports.heap_base as () => number)();
    const heap = new WasmHeap(heapBase);
    const pool = await WorkerPool.create(heap, threads);
    return new CpuBackend(heap, pool, opts);
  }

  /** Threads the ops use: at most the pool's. */
  get threads(): number { return this.opThreads; }

  /** Lets ops use only `n` of the pool's threads (benchmarks compare thread counts this way). */
  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > this.pool.threads) throw new Error(`setThreads: ${n} is not from 1 to ${this.pool.threads}`);
    this.opThreads = n;
  }

  /** Switches between the exact kernels and the int8-activation variants (see CpuBackendOptions.fastActivations). */
  setFastActivations(on: boolean): void {
    this.kernels.clear();
    for (const k of MATRIX_KERNELS) if (!k.variant) this.kernels.set(formatName(k.format), k);
    if (on) for (const k of MATRIX_KERNELS) if (k.variant === 'int8-act') this.kernels.set(formatName(k.format), k);
  }

  /** The matrix kernel for a weight's format, or an error listing the supported ones. */
  kernelFor(w: Tensor): MatrixKernel {
    const name = formatName(formatOf(w));
    const k = this.kernels.get(name);
    if (!k) throw new Error(`no CPU matrix kernel for weight format ${name} (have: ${[...this.kernels.keys()].join(', ')})`);
    return k;
  }

  // ---- memory ----------------------------------------------------------------------------------

  /** The CpuTensor behind a handle, checked to come from a CPU backend. */
  t(x: Tensor, what = 'tensor'): CpuTensor {
    if (!(x instanceof CpuTensor)) throw new Error(`${what} is not a CPU backend tensor`);
    return x;
  }

  alloc(dtype: DType, shape: readonly number[], what = `${dtype} [${shape.join(', ')}]`): Tensor {
    const t = this.allocRaw(dtype, shape, what);
    new Uint8Array(this.heap.buffer, t.ptr, t.byteLength).fill(0);
    return t;
  }

  private allocRaw(dtype: DType, shape: readonly number[], what: string, scale?: TensorScale): CpuTensor {
    const bytes = tensorBytes(dtype, shape, what);
    return new CpuTensor(dtype, [...shape], this.heap.alloc(bytes, what), bytes, true, scale);
  }

  allocWeight(format: WeightFormat, shape: readonly [number, number], what = `${formatName(format)} [${shape.join(', ')}]`): Tensor {
    return this.allocWeightRaw(format, shape, what, true);
  }

  private allocWeightRaw(format: WeightFormat, shape: readonly [number, number], what: string, zero: boolean): CpuTensor {
    const [rows, cols] = shape;
    let scale: TensorScale | undefined;
    if (format.scale) {
      const st = this.allocRaw(format.scale.dtype, scaleShape(format, rows, cols), `${what} scales`);
      scale = { tensor: st, rows: format.scale.rows, cols: format.scale.cols };
    }
    const t = this.allocRaw(format.dtype, shape, what, scale);
    if (zero) {
      new Uint8Array(this.heap.buffer, t.ptr, t.byteLength).fill(0);
      if (scale) { const s = this.t(scale.tensor); new Uint8Array(this.heap.buffer, s.ptr, s.byteLength).fill(0); }
    }
    return t;
  }

  free(x: Tensor): void {
    const t = this.t(x);
    if (!t.owned) throw new Error('free: this tensor is a view; free the tensor it views');
    this.heap.free(t.ptr);
    if (t.scale) this.heap.free(this.t(t.scale.tensor).ptr);
  }

  view(x: Tensor, offset: number, shape: readonly number[]): Tensor {
    const t = this.unpaneled(x, 'view');
    const { start, bytes } = viewRange(t, t.byteLength, offset, shape);
    return new CpuTensor(t.dtype, [...shape], t.ptr + start, bytes, false);
  }

  rows(x: Tensor, row0: number, row1: number): Tensor {
    const t = this.unpaneled(x, 'rows');
    const { rows, scale } = rowsRange(t, row0, row1);
    const st = scale && this.t(t.scale!.tensor);
    const sv = st && { ...t.scale!, tensor: new CpuTensor(st.dtype, scale.shape, st.ptr + scale.start, scale.bytes, false) };
    const view = new CpuTensor(t.dtype, rows.shape, t.ptr + rows.start, rows.bytes, false, sv);
    view.subnormalScales = t.subnormalScales;
    return view;
  }

  private unpaneled(x: Tensor, op: string): CpuTensor {
    const t = this.t(x);
    if (t.panel) throw new Error(`${op}: this ${t.dtype} [${t.shape.join(', ')}] matrix is stored as column panels (loaded matrixOnly): only matvec and matmul read it`);
    return t;
  }

  /** A live view of a tensor's bytes (shared memory is never detached, so it stays valid). */
  bytes(x: Tensor): Uint8Array {
    const t = this.t(x);
    return new Uint8Array(this.heap.buffer, t.ptr, t.byteLength);
  }

  /** A live Float32Array over an f32 tensor. */
  f32(x: Tensor): Float32Array {
    const t = this.t(x);
    if (t.dtype !== 'f32') throw new Error(`expected an f32 tensor, got ${t.dtype}`);
    return new Float32Array(this.heap.buffer, t.ptr, t.byteLength / 4);
  }

  upload(x: Tensor, data: ArrayBufferView): void {
    const t = this.t(x);
    if (data.byteLength !== t.byteLength) {
      throw new Error(`upload: ${data.byteLength} bytes for a ${t.dtype} [${t.shape.join(', ')}] tensor of ${t.byteLength} bytes`);
    }
    this.bytes(t).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    t.subnormalScales = subnormalScales(t.dtype, this.bytes(t));
  }

  async download(x: Tensor, into?: Float32Array): Promise<Float32Array> {
    const v = this.f32(x);
    if (!into) return v.slice();
    const out = intoView(into, v.length);
    out.set(v);
    return out;
  }

  async downloadBytes(x: Tensor): Promise<Uint8Array> { return this.bytes(x).slice(); }

  async load(src: WeightSource, name: string, dtype: DType, shape: readonly number[]): Promise<Tensor> {
    const t = this.allocRaw(dtype, shape, name);
    try {
      await this.readInto(src, name, t);
    } catch (err) {
      this.free(t);
      throw err;
    }
    return t;
  }

  async loadWeight(src: WeightSource, spec: WeightSpec): Promise<Tensor> {
    if (spec.format.scale && !spec.scaleName) throw new Error(`${spec.name}: format ${formatName(spec.format)} needs scaleName`);
    const t = this.allocWeightRaw(spec.format, spec.shape, spec.name, false);
    try {
      await this.readInto(src, spec.name, t);
      if (t.scale) await this.readInto(src, spec.scaleName!, this.t(t.scale.tensor));
      t.subnormalScales = subnormalScales(t.dtype, this.bytes(t));
      if (spec.matrixOnly) this.toPanels(t);
    } catch (err) {
      this.free(t);
      throw err;
    }
    return t;
  }

  /** Rewrites a matrix with rows longer than a panel as column panels, where its format has a panel kernel. */
  private toPanels(t: CpuTensor): void {
    const [rows, k] = t.shape, P = this.panelColumns;
    if (!P || k <= P || !this.kernelFor(t).wasm.matvecPanels) return;
    const eb = t.byteLength / (rows * k);
    const dst = this.bytes(t), src = dst.slice(); // one matrix, while loading
    let o = 0;
    for (let c0 = 0; c0 < k; c0 += P) {
      const width = Math.min(P, k - c0) * eb;
      for (let r = 0; r < rows; r++, o += width) dst.set(src.subarray((r * k + c0) * eb, (r * k + c0) * eb + width), o);
    }
    t.panel = P;
  }

  /** Reads a tensor's bytes straight into its block of memory (no intermediate copy). */
  private async readInto(src: WeightSource, name: string, t: CpuTensor): Promise<void> {
    const got = await src.read(name, this.bytes(t));
    if (got instanceof Uint8Array && got.length !== t.byteLength) {
      throw new Error(`${name}: the source holds ${got.length} bytes, but ${t.dtype} [${t.shape.join(', ')}] is ${t.byteLength}`);
    }
  }

  /** A scratch block of at least `bytes`, reused between ops (contents are the caller's until the next op). */
  scratch(bytes: number): number {
    if (bytes > this.scratchBytes) {
      if (this.scratchBytes) this.heap.free(this.scratchPtr);
      this.scratchBytes = Math.max(bytes, 2 * this.scratchBytes, 4096);
      this.scratchPtr = this.heap.alloc(this.scratchBytes, 'backend scratch');
    }
    return this.scratchPtr;
  }

  // ---- matrix ops ------------------------------------------------------------------------------

  /** Validates W [rows, k] and returns its kernel, the pointers, and the row alignment. */
  private matrix(op: string, wt: Tensor) {
    const w = this.t(wt, `${op}: w`);
    const { rows, k } = matrixShape(op, w);
    const kernel = this.kernelFor(w);
    const scalePtr = w.scale ? this.t(w.scale.tensor).ptr : 0;
    // Chunks follow tall scale tiles, so a thread reads each tile's scales once.
    const align = w.scale && w.scale.rows > 4 ? Math.max(4, w.scale.rows) : 4;
    const threads = w.byteLength >= this.minMatrixBytes ? this.threads : 1;
    // Chunks of at least CHUNK_BYTES of weights: a thread streams each chunk from memory, and the
    // prefetchers restart at every chunk (a 768×768 Q8_0 decode matvec took 55 µs in 16 chunks and
    // 40 µs in 4). Up to CHUNKS_PER_THREAD, so a thread the OS delays still holds up little.
    const chunksPerThread = Math.max(1, Math.min(CHUNKS_PER_THREAD, Math.round(w.byteLength / CHUNK_BYTES / threads)));
    // Formats without a scale tensor read the kernels' `scale` argument as a flag: 1 when the weight has subnormal scales.
    const scale = scalePtr || (w.subnormalScales ? 1 : 0);
    return { w, kernel, rows, k, scale, align, threads, chunksPerThread };
  }

  /** Pointer to `n` activation rows of length k in the kernel's activation type (quantised into scratch when needed). */
  private activation(op: string, kernel: MatrixKernel, x: CpuTensor, k: number, n: number): number {
    if (kernel.act === 'f32') return x.ptr;
    const q = this.quantizers.get(kernel.act);
    if (!q) throw new Error(`${op}: no activation quantizer ${kernel.act} for ${formatName(kernel.format)}`);
    if (k % q.blockElems !== 0) throw new Error(`${op}: k = ${k} is not a multiple of the ${q.act} block (${q.blockElems})`);
    const rowBytesQ = (k / q.blockElems) * q.blockBytes;
    const out = this.scratch(n * rowBytesQ);
    const fn = this.pool.exports[q.wasm] as (x: number, out: number, k: number) => void;
    for (let t = 0; t < n; t++) fn(x.ptr + t * k * 4, out + t * rowBytesQ, k);
    return out;
  }

  matvec(wt: Tensor, xt: Tensor, yt: Tensor): void {
    const m = this.matrix('matvec', wt);
    const x = this.f32Tensor('matvec: x', xt, m.k), y = this.f32Tensor('matvec: y', yt, m.rows);
    const xp = this.activation('matvec', m.kernel, x, m.k, 1);
    if (m.w.panel) this.pool.run(m.kernel.wasm.matvecPanels!, [m.w.ptr, m.rows, m.w.panel, xp, y.ptr, m.k], m.rows, m.align, m.threads, m.chunksPerThread);
    else this.pool.run(m.kernel.wasm.matvec, [m.w.ptr, m.scale, xp, y.ptr, m.k], m.rows, m.align, m.threads, m.chunksPerThread);
  }

  matmul(wt: Tensor, xt: Tensor, yt: Tensor): void {
    const m = this.matrix('matmul', wt);
    const x = this.t(xt, 'matmul: x'), y = this.t(yt, 'matmul: y');
    const n = matmulTokens(m, x, y);
    if (m.w.panel) return this.matmulPanels(m, x, y, n);
    const xp = this.activation('matmul', m.kernel, x, m.k, n);
    this.pool.run(m.kernel.wasm.matmul, [m.w.ptr, m.scale, xp, y.ptr, m.k, n, m.rows], m.rows, m.align, m.threads, m.chunksPerThread);
  }

  /** matmul of a column-panel matrix: each panel against its columns of x (copied out), summed into y. */
  private matmulPanels(m: ReturnType<CpuBackend['matrix']>, x: CpuTensor, y: CpuTensor, n: number): void {
    const { rows, k } = m, P = m.w.panel, eb = m.w.byteLength / (rows * k);
    const xs = this.scratch(4 * n * (P + rows)), ys = xs + 4 * n * P;
    const f32 = new Float32Array(this.heap.buffer);
    const partial = new CpuTensor('f32', [n, rows], ys, 4 * n * rows, false);
    for (let c0 = 0; c0 < k; c0 += P) {
      const width = Math.min(P, k - c0);
      for (let t = 0; t < n; t++) {
        const from = x.ptr / 4 + t * k + c0;
        f32.copyWithin(xs / 4 + t * width, from, from + width);
      }
      this.pool.run(m.kernel.wasm.matmul, [m.w.ptr + rows * c0 * eb, m.scale, xs, c0 ? ys : y.ptr, width, n, rows], rows, m.align, m.threads, m.chunksPerThread);
      if (c0) this.add(y, partial, y);
    }
  }

  /** An f32 tensor of exactly `elems` elements. */
  private f32Tensor(what: string, x: Tensor, elems: number): CpuTensor {
    const t = this.t(x, what);
    f32Elems(what, t, elems);
    return t;
  }

  // ---- row ops ---------------------------------------------------------------------------------

  /** Rows and row length of an f32 tensor (its last dimension). */
  private rowsOf(what: string, x: Tensor): { t: CpuTensor; n: number; d: number } {
    const t = this.t(x, what);
    return { t, ...f32Rows(what, t) };
  }

  private same(what: string, a: { n: number; d: number }, b: Tensor): CpuTensor {
    return this.f32Tensor(what, b, a.n * a.d);
  }

  private runRows(kernel: string, args: number[], rows: number, elems: number): void {
    this.pool.run(kernel, args, rows, 1, elems >= this.minOpElements ? this.threads : 1);
  }

  rmsnorm(xt: Tensor, wt: Tensor | null, yt: Tensor, eps: number): void {
    const x = this.rowsOf('rmsnorm: x', xt);
    const y = this.same('rmsnorm: y', x, yt);
    const w = wt ? this.f32Tensor('rmsnorm: weight', wt, x.d).ptr : 0;
    this.runRows('rmsnorm_f32', [x.t.ptr, w, y.ptr, x.d, eps], x.n, x.n * x.d);
  }

  rope(xt: Tensor, freqs: Float32Array, positions: ArrayLike<number>, o: RopeOptions): void {
    const x = this.t(xt, 'rope: x');
    const { n, ropeDim } = ropeShape(x, freqs, positions, o);
    const fp = this.scratch(freqs.byteLength + 64 + 4 * n);
    const pp = fp + Math.ceil(freqs.byteLength / 64) * 64;
    new Float32Array(this.heap.buffer, fp, freqs.length).set(freqs);
    new Int32Array(this.heap.buffer, pp, n).set(Array.from(positions));
    this.runRows('rope_f32', [x.ptr, fp, pp, o.heads, o.headDim, ropeDim, o.layout === 'neox' ? 1 : 0, o.inverse ? 1 : 0],
      n, n * o.heads * ropeDim * 4);
  }

  softmax(xt: Tensor, yt: Tensor, scale = 1): void {
    const x = this.rowsOf('softmax: x', xt);
    const y = this.same('softmax: y', x, yt);
    this.runRows('softmax_f32', [x.t.ptr, y.ptr, x.d, scale], x.n, x.n * x.d);
  }

  silu(xt: Tensor, yt: Tensor): void {
    const x = this.rowsOf('silu: x', xt);
    const y = this.same('silu: y', x, yt);
    this.runRows('silu_f32', [x.t.ptr, y.ptr, x.d], x.n, x.n * x.d);
  }

  swiglu(gt: Tensor, ut: Tensor, yt: Tensor, limit = 0): void {
    const g = this.rowsOf('swiglu: g', gt);
    const u = this.same('swiglu: u', g, ut), y = this.same('swiglu: y', g, yt);
    this.runRows('swiglu_f32', [g.t.ptr, u.ptr, y.ptr, g.d, limit], g.n, g.n * g.d);
  }

  add(a: Tensor, b: Tensor, y: Tensor): void { this.binary('add', a, b, y); }
  mul(a: Tensor, b: Tensor, y: Tensor): void { this.binary('mul', a, b, y); }

  private binary(op: 'add' | 'mul', at: Tensor, bt: Tensor, yt: Tensor): void {
    const a = this.t(at, `${op}: a`), b = this.t(bt, `${op}: b`), y = this.t(yt, `${op}: y`);
    const { n, d, bstep } = binaryShape(op, a, b, y);
    this.runRows(`${op}_f32`, [a.ptr, b.ptr, y.ptr, d, bstep], n, n * d);
  }

  embedding(table: Tensor, ids: ArrayLike<number>, yt: Tensor): void {
    const tb = this.t(table, 'embedding: table'), y = this.t(yt, 'embedding: y');
    const { d } = embeddingShape(tb, ids, y);
    const n = ids.length;
    const kernel = `embed_${tb.dtype}`;
    if (this.pool.has(kernel)) {
      const ip = this.scratch(4 * n);
      new Int32Array(this.heap.buffer, ip, n).set(Array.from(ids));
      this.runRows(kernel, [tb.ptr, ip, y.ptr, d], n, n * d);
      return;
    }
    // Other dtypes (GGUF blocks, FP8/FP4 codes) decode row by row in TypeScript.
    const rb = rowBytes(tb.dtype, d);
    const mem = this.bytes(tb), out = this.f32(y);
    for (let t = 0; t < n; t++) dequantizeRow(tb.dtype, mem, out, d, ids[t] * rb, t * d);
  }

  copy(xt: Tensor, yt: Tensor): void {
    const xc = this.t(xt, 'copy: x'), y = this.t(yt, 'copy: y');
    const { n, d } = copyShape(xc, y);
    this.runRows(`copy_f32_${y.dtype}`, [xc.ptr, y.ptr, d], n, n * d);
  }

  attention(qt: Tensor, kt: Tensor, vt: Tensor, outt: Tensor, o: AttentionOptions): void {
    const { heads, kvHeads, headDim, start } = o;
    const q = this.t(qt, 'attention: q'), k = this.t(kt, 'attention: kCache'), v = this.t(vt, 'attention: vCache');
    const out = this.t(outt, 'attention: out');
    const { n, window } = attentionShape(q, k, v, out, o);
    // Work ≈ visible positions × headDim per (token, head) row.
    const work = n * heads * (start + n) * headDim;
    this.pool.run(`attention_${k.dtype}`, [q.ptr, k.ptr, v.ptr, out.ptr, heads, kvHeads, headDim, start, window, o.scale],
      n * heads, 1, work >= this.minOpElements ? this.threads : 1);
  }

  sparseAttention(qt: Tensor, kvt: Tensor, rows: Int32Array, count: number, sinkt: Tensor, outt: Tensor, scale: number): void {
    const kv = this.t(kvt, 'sparseAttention: kv'), sink = this.t(sinkt, 'sparseAttention: sink');
    const q = this.t(qt, 'sparseAttention: q'), out = this.t(outt, 'sparseAttention: out');
    const { n, heads, d } = sparseAttentionShape(q, kv, rows, count, sink, out);
    const rp = this.scratch(rows.byteLength);
    new Int32Array(this.heap.buffer, rp, rows.length).set(rows);
    // Work ≈ candidates × d per (token, head) row; chunks of whole fours of heads (the kernel's group).
    const work = n * heads * count * d;
    this.pool.run('sparse_attention_f32', [q.ptr, kv.ptr, rp, count, sink.ptr, out.ptr, heads, d, scale],
      n * heads, 4, work >= this.minOpElements ? this.threads : 1);
  }

  indexerScores(qt: Tensor, wt: Tensor, keyst: Tensor, visible: Int32Array, heads: number, outt: Tensor): void {
    const q = this.t(qt, 'indexerScores: q'), w = this.t(wt, 'indexerScores: w');
    const keys = this.t(keyst, 'indexerScores: keys'), out = this.t(outt, 'indexerScores: out');
    const { n, d, cols } = indexerScoresShape(q, w, keys, visible, heads, out);
    const vp = this.scratch(visible.byteLength);
    new Int32Array(this.heap.buffer, vp, n).set(visible);
    // One work row per output element (a decode token's entries split over threads); chunks of
    // whole fours (the kernel's entry group). Work ≈ visible entries × heads × d.
    let work = 0;
    for (let t = 0; t < n; t++) work += visible[t] * heads * d;
    this.pool.run('indexer_scores_f32', [q.ptr, w.ptr, keys.ptr, vp, out.ptr, heads, d, cols],
      n * cols, 4, work >= this.minOpElements ? this.threads : 1);
  }

  async argmax(xt: Tensor): Promise<Int32Array> {
    const x = this.rowsOf('argmax: x', xt);
    if (x.d === 0) throw new Error('argmax: rows are empty');
    const out = this.scratch(4 * x.n);
    this.runRows('argmax_f32', [x.t.ptr, x.d, out], x.n, x.n * x.d);
    return new Int32Array(this.heap.buffer, out, x.n).slice();
  }

  async topk(xt: Tensor, k: number): Promise<TopK> {
    const x = this.rowsOf('topk: x', xt);
    topkCount(k, x.d);
    const vp = this.scratch(8 * x.n * k + 64);
    const ip = vp + Math.ceil((4 * x.n * k) / 64) * 64;
    this.runRows('topk_f32', [x.t.ptr, x.d, k, vp, ip], x.n, x.n * x.d);
    return {
      values: new Float32Array(this.heap.buffer, vp, x.n * k).slice(),
      indices: new Int32Array(this.heap.buffer, ip, x.n * k).slice(),
    };
  }

  async close(): Promise<void> { await this.pool.close(); }
}
