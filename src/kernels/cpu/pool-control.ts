/**
 * The control block the worker pool and its workers share (one SharedArrayBuffer), and the loop
 * every thread uses to take chunks of a job. Int32 slots first, then the job's arguments as f64
 * (byte offsets up to 4 GiB do not fit an i32), then room for one error message.
 *
 * A job is published by writing its description, then its claim word NEXT, then bumping SEQ. The
 * claim word carries the job's tag (low bits of its number), its chunk count and the next chunk
 * index, so a compare-and-swap on it is a valid claim by itself: it succeeds only while the job
 * has chunks left, and a claimed chunk pins the job (it cannot finish before that chunk does).
 * Every thread counts the chunks it finished in COMPLETED, and the caller waits for all of them —
 * never for a worker that has not shown up, so a thread the OS delays costs only the chunks it
 * already holds.
 */

export const SEQ = 0;            // job number, bumped by the caller to publish a job
export const NEXT = 1;           // claim word: job tag | chunk count | next chunk index
export const COMPLETED = 2;      // chunks of the current job finished
export const END = 3;            // rows of the current job: [0, END)
export const CHUNK = 4;          // rows per chunk
export const FN = 5;             // index of the kernel export in the shared name list
export const NARGS = 6;          // arguments before the row range
export const ACTIVE = 7;         // workers taking part (ids below it); the others sit the job out
export const STOP = 8;           // set by close(): workers leave their loop
export const SLEEPERS = 9;       // workers blocked in Atomics.wait on SEQ
export const CALLER_WAITING = 10; // the caller is blocked in Atomics.wait on COMPLETED
export const ERROR = 11;         // 1 when a kernel threw in a worker; message below
export const ERROR_LEN = 12;

const CHUNK_BITS = 11;
export const MAX_CHUNKS = (1 << CHUNK_BITS) - 1;
const TAG_MASK = (1 << (32 - 2 * CHUNK_BITS)) - 1;

export const ARGS_BYTE = 64;
export const MAX_ARGS = 14;
export const ERROR_BYTE = ARGS_BYTE + 8 * MAX_ARGS;
export const ERROR_BYTES = 512;
export const CONTROL_BYTES = ERROR_BYTE + ERROR_BYTES;

/** How long an idle worker spins on SEQ before it sleeps in Atomics.wait (milliseconds). */
export const SPIN_MS = 0.5;

export type Kernel = (...args: number[]) => unknown;

/** The claim word of job `seq`, cut into `chunks` chunks, before any is taken. */
export function firstClaim(seq: number, chunks: number): number {
  return ((seq & TAG_MASK) << (2 * CHUNK_BITS)) | (chunks << CHUNK_BITS);
}

/** A job as one thread sees it: the kernel, its call array (arguments, then row0, row1), its shape. */
export interface JobView {
  seq: number;
  fn: Kernel;
  call: number[];
  end: number;
  chunk: number;
}

/** Reads the job published as `seq` (valid only while that job is pinned: see takeChunks). */
export function readJob(ctl: Int32Array, args: Float64Array, kernels: readonly Kernel[], seq: number): JobView {
  const call = Array.from(args.subarray(0, ctl[NARGS] + 2));
  return { seq, fn: kernels[ctl[FN]], call, end: ctl[END], chunk: ctl[CHUNK] };
}

/**
 * Claims and runs chunks of whatever job is current until none are left. `job` is this thread's
 * view of it, possibly stale or torn (read while the caller rewrote it); after each claim the
 * claimed job is pinned, so once SEQ names it (the caller stores SEQ right after NEXT) the view is
 * re-read if it was of another job. `onError` gets a kernel's exception; the chunk still counts.
 */
export function takeChunks(ctl: Int32Array, args: Float64Array, kernels: readonly Kernel[], job: JobView,
  onError: (err: unknown, job: JobView) => void): void {
  for (;;) {
    const v = Atomics.load(ctl, NEXT);
    const idx = v & MAX_CHUNKS, chunks = (v >>> CHUNK_BITS) & MAX_CHUNKS, tag = v >>> (2 * CHUNK_BITS);
    if (idx >= chunks) return;
    if (Atomics.compareExchange(ctl, NEXT, v, v + 1) !== v) continue;
    let seq = Atomics.load(ctl, SEQ);
    while ((seq & TAG_MASK) !== tag) seq = Atomics.load(ctl, SEQ);
    if (seq !== job.seq) job = readJob(ctl, args, kernels, seq);
    const n = job.call.length;
    job.call[n - 2] = idx * job.chunk;
    job.call[n - 1] = Math.min(job.end, (idx + 1) * job.chunk);
    try {
      Reflect.apply(job.fn, undefined, job.call);
    } catch (err) {
      onError(err, job);
    }
    if (Atomics.add(ctl, COMPLETED, 1) + 1 === chunks && Atomics.load(ctl, CALLER_WAITING)) {
      Atomics.notify(ctl, COMPLETED);
    }
  }
}

export function writeError(ctl: Int32Array, message: string): void {
  if (Atomics.compareExchange(ctl, ERROR, 0, 1) !== 0) return;
  const bytes = new TextEncoder().encode(message).subarray(0, ERROR_BYTES);
  new Uint8Array(ctl.buffer, ERROR_BYTE, ERROR_BYTES).set(bytes);
  Atomics.store(ctl, ERROR_LEN, bytes.length);
}

export function readError(ctl: Int32Array): string | undefined {
  if (Atomics.load(ctl, ERROR) === 0) return undefined;
  const len = Atomics.load(ctl, ERROR_LEN);
  const msg = new TextDecoder().decode(new Uint8Array(ctl.buffer, ERROR_BYTE, len).slice());
  Atomics.store(ctl, ERROR, 0);
  return msg;
}
