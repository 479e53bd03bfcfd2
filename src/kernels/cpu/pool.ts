/**
 * The worker pool: `threads − 1` worker_threads plus the calling thread, each with its own instance
 * of kernels.wasm over the one shared memory. A job is a kernel export, its arguments, and a row
 * count cut into chunks; every thread, the caller included, claims chunks until none are left, and
 * the caller returns once all chunks are done (pool-control.ts) — a worker the OS has not run yet
 * simply finds nothing left. Dispatch costs a few microseconds: workers spin on the job counter for
 * SPIN_MS before sleeping in Atomics.wait, and are only notified when asleep. Workers are unref'd,
 * so an open pool never keeps the process alive; close() ends them.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  ACTIVE, ARGS_BYTE, CALLER_WAITING, CHUNK, COMPLETED, CONTROL_BYTES, END, FN, firstClaim, type Kernel, MAX_ARGS,
  MAX_CHUNKS, NARGS, NEXT, readError, SEQ, SLEEPERS, STOP, takeChunks,
} from './pool-control.js';
import type { WasmHeap } from './heap.js';
import { kernelImports, kernelModule } from './wasm-module.js';

/** Thread count: the option, else MINKE_THREADS, else every available core. */
export function defaultThreads(option?: number): number {
  const env = process.env.MINKE_THREADS;
  const n = option ?? (env !== undefined && env !== '' ? Number(env) : availableParallelism());
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new Error(`thread count must be an integer from 1 to 256, got ${option ?? `MINKE_THREADS=${env}`}`);
  }
  return n;
}

/** Chunks per thread a job is cut into: enough that a thread the OS delays holds up little work. */
export const CHUNKS_PER_THREAD = 8;
/** After its own share the caller spins this long for the workers before it sleeps (milliseconds). */
const CALLER_SPIN_MS = 2;
/** Each thread's kernel scratch (wasm/scratch.ts): room for a rescaled x of up to 65536 values. */
export const SCRATCH_BYTES = 256 * 1024;

export class WorkerPool {
  readonly threads: number;
  /** The calling thread's instance of the kernels. */
  readonly exports: WebAssembly.Exports;
  private readonly index: Map<string, number>;
  private readonly kernels: Kernel[];
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: Worker[];
  private closed = false;

  private constructor(threads: number, exports: WebAssembly.Exports, names: string[], control: SharedArrayBuffer, workers: Worker[]) {
    this.threads = threads;
    this.exports = exports;
    this.index = new Map(names.map((n, i) => [n, i]));
    this.kernels = names.map((n) => exports[n] as Kernel);
    this.ctl = new Int32Array(control);
    this.args = new Float64Array(control, ARGS_BYTE, MAX_ARGS);
    this.workers = workers;
  }

  static async create(heap: WasmHeap, threads: number): Promise<WorkerPool> {
    const module = kernelModule();
    const memory = heap.memory;
    const exports = new WebAssembly.Instance(module, kernelImports(memory)).exports;
    const names = Object.keys(exports).filter((n) => typeof exports[n] === 'function');
    const scratch = Array.from({ length: threads }, (_, i) => heap.alloc(SCRATCH_BYTES, `kernel scratch of thread ${i}`));
    (exports.set_scratch as (ptr: number, bytes: number) => void)(scratch[0], SCRATCH_BYTES);
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 0; i < threads - 1; i++) {
      const w = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: { module, memory, control, names, id: i, scratch: scratch[i + 1], scratchBytes: SCRATCH_BYTES },
        // The worker is plain JS: it needs none of the parent's Node flags (an --input-type for an
        // --eval string would even stop it). V8 flags are process-wide anyway.
        execArgv: [],
      });
      w.unref();
      workers.push(w);
      ready.push(new Promise((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', (err) => reject(new Error(`CPU backend worker ${i} failed to start: ${err.message}`)));
        w.once('exit', (code) => reject(new Error(`CPU backend worker ${i} exited during start (code ${code})`)));
      }));
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
    return new WorkerPool(threads, exports, names, control, workers);
  }

  has(kernel: string): boolean { return this.index.has(kernel); }

  /**
   * Runs `kernel(...args, row0, row1)` over rows [0, rows), split between up to `threads` threads
   * (default all) in about `chunksPerThread` chunks per thread, each a multiple of `align` rows.
   * With one thread, or a job of one chunk, the caller runs it alone.
   */
  run(kernel: string, args: readonly number[], rows: number, align = 4, threads = this.threads, chunksPerThread = CHUNKS_PER_THREAD): void {
    if (this.closed) throw new Error('the CPU backend is closed');
    const fi = this.index.get(kernel);
    if (fi === undefined) throw new Error(`kernels.wasm has no export ${JSON.stringify(kernel)}`);
    if (rows <= 0) return;
    const fn = this.kernels[fi];
    const used = Math.max(1, Math.min(threads, this.threads));
    const chunk = Math.max(align, Math.ceil(rows / Math.min(used * chunksPerThread, MAX_CHUNKS) / align) * align);
    if (used === 1 || chunk >= rows) {
      Reflect.apply(fn, undefined, [...args, 0, rows]);
      return;
    }
    if (args.length > MAX_ARGS - 2) throw new Error(`${kernel}: too many arguments for the pool`);
    const chunks = Math.ceil(rows / chunk);
    if (chunks > MAX_CHUNKS) throw new Error(`${kernel}: ${chunks} chunks is more than the pool's ${MAX_CHUNKS}`);
    const ctl = this.ctl;
    this.args.set(args);
    ctl[FN] = fi; ctl[NARGS] = args.length; ctl[END] = rows; ctl[CHUNK] = chunk; ctl[ACTIVE] = used - 1;
    Atomics.store(ctl, COMPLETED, 0);
    const seq = (Atomics.load(ctl, SEQ) + 1) | 0;
    Atomics.store(ctl, NEXT, firstClaim(seq, chunks));
    Atomics.store(ctl, SEQ, seq);
    if (Atomics.load(ctl, SLEEPERS) > 0) Atomics.notify(ctl, SEQ);
    let failure: unknown;
    const job = { seq, fn, call: [...args, 0, 0], end: rows, chunk };
    takeChunks(ctl, this.args, this.kernels, job, (err) => { failure ??= err; });
    this.waitForChunks(chunks);
    const workerError = readError(ctl);
    if (failure) throw failure;
    if (workerError) throw new Error(`kernel failed in a worker thread: ${workerError}`);
  }

  /** Blocks until all `chunks` chunks of the current job are done. */
  private waitForChunks(chunks: number): void {
    const ctl = this.ctl;
    const spinUntil = performance.now() + CALLER_SPIN_MS;
    for (let i = 1; Atomics.load(ctl, COMPLETED) < chunks; i++) {
      if ((i & 255) !== 0 || performance.now() < spinUntil) continue;
      Atomics.store(ctl, CALLER_WAITING, 1);
      for (let d = Atomics.load(ctl, COMPLETED); d < chunks; d = Atomics.load(ctl, COMPLETED)) Atomics.wait(ctl, COMPLETED, d);
      Atomics.store(ctl, CALLER_WAITING, 0);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
