/**
 * A worker thread of the CPU backend's pool: instantiates kernels.wasm over the shared memory,
 * then loops — wait for a job (spin briefly, then Atomics.wait), take chunks of it (pool-control.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  ACTIVE, ARGS_BYTE, type Kernel, readJob, SEQ, SLEEPERS, SPIN_MS, STOP, takeChunks, writeError,
} from './pool-control.js';
import { kernelImports } from './wasm-module.js';

interface WorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly names: readonly string[];
  /** 0-based; workers below the job's ACTIVE count take part. */
  readonly id: number;
  /** This thread's kernel scratch block. */
  readonly scratch: number;
  readonly scratchBytes: number;
}

const init = workerData as WorkerInit;
const exports = new WebAssembly.Instance(init.module, kernelImports(init.memory)).exports;
(exports.set_scratch as (ptr: number, bytes: number) => void)(init.scratch, init.scratchBytes);
const kernels = init.names.map((name) => exports[name] as Kernel);
const ctl = new Int32Array(init.control);
const args = new Float64Array(init.control, ARGS_BYTE);

/** Returns the job number once it differs from `seen` (spinning first: decode jobs come microseconds apart). */
function nextJob(seen: number): number {
  const spinUntil = performance.now() + SPIN_MS;
  for (let i = 1; ; i++) {
    const seq = Atomics.load(ctl, SEQ);
    if (seq !== seen) return seq;
    if ((i & 255) === 0 && performance.now() > spinUntil) {
      Atomics.add(ctl, SLEEPERS, 1);
      Atomics.wait(ctl, SEQ, seen);
      Atomics.sub(ctl, SLEEPERS, 1);
    }
  }
}

const reportError = (err: unknown, job: { fn: Kernel }) =>
  writeError(ctl, `${init.names[kernels.indexOf(job.fn)]}: ${(err as Error).message}`);

// Read the job counter before saying ready: the first job may be published right after.
let seen = Atomics.load(ctl, SEQ);
parentPort!.postMessage('ready');
for (;;) {
  seen = nextJob(seen);
  if (Atomics.load(ctl, STOP)) break;
  if (init.id >= ctl[ACTIVE]) continue;
  takeChunks(ctl, args, kernels, readJob(ctl, args, kernels, seen), reportError);
}
