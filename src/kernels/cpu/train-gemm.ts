/**
 * The f32 products of training (src/train/matmul.ts) on the WASM SIMD kernels of
 * wasm/train_matmul.ts. Training keeps its tensors in ordinary typed arrays, so each call copies
 * the operands into a kernel memory of its own and the result back: O(n·k + m·k + n·m) copying
 * against O(n·k·m) products. One instance per process: made synchronously on first use (the
 * autograd ops are synchronous) on the calling thread alone, or by `F32Gemm.start(threads)` (async:
 * workers must report in) over a worker pool that splits the rows of big products (pool.ts).
 */
import { WasmHeap } from './heap.js';
import { defaultThreads, WorkerPool } from './pool.js';
import { kernelImports, kernelModule } from './wasm-module.js';

/** Multiply-adds from which a product is split between the pool's threads (below, one thread is faster). */
const PARALLEL_MIN_MACS = 1 << 16;


/** A growable block of the kernel memory. */
export class Slot {
  ptr = 0;
  bytes = 0;
  constructor(private readonly heap: WasmHeap, private readonly what: string) {}

  /** The block's offset, grown to hold `n` f32 values. */
  fit(n: number): number {
    const bytes = n * 4;
    if (bytes > this.bytes) {
      if (this.bytes) this.heap.free(this.ptr);
      this.bytes = Math.max(bytes, this.bytes * 2);
      this.ptr = this.heap.alloc(this.bytes, this.what);
    }
    return this.ptr;
  }
}

export class F32Gemm {
  private static instance: F32Gemm | undefined;
  private readonly heap: WasmHeap;
  private readonly xwt: (...a: number[]) => void;
  private readonly accum: (...a: number[]) => void;
  private readonly slots: [Slot, Slot, Slot];

  private constructor(heap: WasmHeap, private readonly pool: WorkerPool | null) {
    this.heap = heap;
    const ex = pool ? pool.exports : new WebAssembly.Instance(kernelModule(), kernelImports(heap.memory)).exports;
    this.xwt = ex.train_xwt_f32 as (...a: number[]) => void;
    this.accum = ex.train_accum_rows_f32 as (...a: number[]) => void;
    this.slots = [new Slot(this.heap, 'training matmul operand A'), new Slot(this.heap, 'training matmul operand B'),
      new Slot(this.heap, 'training matmul result')];
  }

  private static newHeap(): WasmHeap {
    // The module's static data ends at __heap_base: ask a throwaway instance where that is.
    const probe = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    return new WasmHeap((new WebAssembly.Instance(kernelModule(), kernelImports(probe)).exports.heap_base as () => number)());
  }

  /** The process's instance (single-threaded unless start() made it). */
  static get(): F32Gemm {
    F32Gemm.instance ??= new F32Gemm(F32Gemm.newHeap(), null);
    return F32Gemm.instance;
  }

  /**
   * Makes the process's instance run over `threads` threads (default MINKE_THREADS, else every
   * core); the previous instance's pool, if any, is closed. One thread needs no pool.
   */
  static async start(threads?: number): Promise<F32Gemm> {
    const n = defaultThreads(threads), heap = F32Gemm.newHeap();
    const pool = n > 1 ? await WorkerPool.create(heap, n) : null;
    await F32Gemm.instance?.pool?.close();
    F32Gemm.instance = new F32Gemm(heap, pool);
    return F32Gemm.instance;
  }

  /** Closes the pool (the process's instance is single-threaded again). */
  static async stop(): Promise<void> {
    await F32Gemm.instance?.pool?.close();
    F32Gemm.instance = undefined;
  }

  /** Threads the products use. */
  get threads(): number { return this.pool?.threads ?? 1; }

  /** Runs `kernel` over `rows` rows, split between the threads when the product is big enough. */
  private run(kernel: 'train_xwt_f32' | 'train_accum_rows_f32', fn: (...a: number[]) => void, args: number[], rows: number, macs: number): void {
    if (this.pool && macs >= PARALLEL_MIN_MACS) this.pool.run(kernel, args, rows, kernel === 'train_xwt_f32' ? 2 : 4);
    else fn(...args, 0, rows);
  }

  /** Copies `src` into slot `i`; returns its offset. */
  private put(i: number, src: Float32Array, n: number): number {
    const p = this.slots[i].fit(n);
    new Float32Array(this.heap.buffer, p, n).set(n === src.length ? src : src.subarray(0, n));
    return p;
  }

  /** y[t, o] = Σ_i x[t, i]·w[o, i]: x [n, k], w [m, k] → y [n, m] (overwritten). */
  matmulXWt(x: Float32Array, w: Float32Array, y: Float32Array, n: number, k: number, m: number): void {
    if (x.length < n * k || w.length < m * k || y.length < n * m) throw new Error(`F32Gemm.matmulXWt: arrays too short for [${n}, ${k}]·[${m}, ${k}]ᵀ`);
    const px = this.put(0, x, n * k), pw = this.put(1, w, m * k), py = this.slots[2].fit(n * m);
    this.run('train_xwt_f32', this.xwt, [px, pw, py, k, m], n, n * k * m);
    y.set(new Float32Array(this.heap.buffer, py, n * m));
  }

  /**
   * out[a, :] += Σ_b g[b·gs + a·ga]·v[b, :] for a < A, b < B, rows of v of width k (the backward
   * products; see src/train/matmul.ts accumulateRows). `g` spans (A−1)·ga + (B−1)·gs + 1 values.
   */
  accumulateRows(g: Float32Array, gs: number, ga: number, v: Float32Array, out: Float32Array, A: number, B: number, k: number): void {
    const gn = A && B ? (A - 1) * ga + (B - 1) * gs + 1 : 0;
    if (g.length < gn || v.length < B * k || out.length < A * k) throw new Error(`F32Gemm.accumulateRows: arrays too short for ${A} rows from ${B} of width ${k}`);
    const pg = this.put(0, g, gn), pv = this.put(1, v, B * k), po = this.put(2, out, A * k);
    this.run('train_accum_rows_f32', this.accum, [pg, gs, ga, pv, po, B, k], A, A * B * k);
    out.set(new Float32Array(this.heap.buffer, po, A * k));
  }
}
