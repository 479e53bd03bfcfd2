/**
 * The one shared WebAssembly.Memory of the CPU backend and an allocator over it.
 *
 * Every tensor (weights, activations, scratch) lives in this memory so the WASM kernels on every
 * worker thread can reach it. Blocks are 64-byte aligned (a cache line; also what SIMD loads like).
 * The memory grows on demand up to the WebAssembly limit of 65536 pages = 4 GiB and never shrinks;
 * freed blocks are reused (best fit, neighbours merged). The low region holding the kernel module's
 * own static data (below its `__heap_base`) is never handed out.
 */

export const PAGE_BYTES = 65536;
export const MAX_PAGES = 65536;
export const MAX_BYTES = PAGE_BYTES * MAX_PAGES;
export const ALIGN = 64;

interface Block { ptr: number; size: number }

function gib(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} bytes`;
}

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  /** First byte the allocator may hand out. */
  readonly base: number;
  private buf: SharedArrayBuffer;
  /** End of the highest block ever handed out and not returned to the top. */
  private top: number;
  /** Free blocks below `top`, sorted by address, never adjacent, none ending at `top`. */
  private readonly freeList: Block[] = [];
  private readonly live = new Map<number, number>();
  private inUse = 0;
  private peakInUse = 0;

  /** `reserved`: bytes at the bottom of memory that belong to the kernel module (its __heap_base). */
  constructor(reserved: number, initialPages = 16) {
    this.base = Math.ceil(Math.max(reserved, ALIGN) / PAGE_BYTES) * PAGE_BYTES;
    const pages = Math.max(initialPages, this.base / PAGE_BYTES);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
    this.buf = this.memory.buffer as unknown as SharedArrayBuffer;
    this.top = this.base;
  }

  /** The memory's current buffer (a new object after every growth; views made earlier stay valid). */
  get buffer(): SharedArrayBuffer { return this.buf; }

  /** Allocates `bytes` (rounded up to 64) and returns the block's byte offset. `what` names the request in errors. */
  alloc(bytes: number, what = 'a tensor'): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`wasm heap: bad size ${bytes} for ${what}`);
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let best = -1;
    for (let i = 0; i < this.freeList.length; i++) {
      const b = this.freeList[i];
      if (b.size >= size && (best < 0 || b.size < this.freeList[best].size)) best = i;
    }
    let ptr: number;
    if (best >= 0) {
      const b = this.freeList[best];
      ptr = b.ptr;
      if (b.size === size) this.freeList.splice(best, 1);
      else { b.ptr += size; b.size -= size; }
    } else {
      // Extend the top (no free block ends at the top: free() gives such blocks back to it).
      ptr = this.top;
      const end = ptr + size;
      if (end > MAX_BYTES) {
        throw new Error(`wasm heap: cannot allocate ${gib(bytes)} for ${what}: ${gib(this.inUse)} already in use ` +
          `(${gib(this.top - this.base - this.inUse)} free in fragments) and WebAssembly memory stops at 4 GiB`);
      }
      this.ensure(end, bytes, what);
      this.top = end;
    }
    this.live.set(ptr, size);
    this.inUse += size;
    this.peakInUse = Math.max(this.peakInUse, this.inUse);
    return ptr;
  }

  /** Allocates `n` bytes and returns the offset with a view on them (e.g. to read a file straight in). */
  allocBytes(n: number, what?: string): { ptr: number; bytes: Uint8Array } {
    const ptr = this.alloc(n, what);
    return { ptr, bytes: new Uint8Array(this.buf, ptr, n) };
  }

  free(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new Error(`wasm heap: free of ${ptr}, which is not an allocated block`);
    this.live.delete(ptr);
    this.inUse -= size;
    if (ptr + size === this.top) {
      this.top = ptr;
      const last = this.freeList[this.freeList.length - 1];
      if (last && last.ptr + last.size === this.top) { this.top = last.ptr; this.freeList.pop(); }
      return;
    }
    // Insert sorted, then merge with the neighbours.
    let lo = 0, hi = this.freeList.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.freeList[mid].ptr < ptr) lo = mid + 1; else hi = mid; }
    this.freeList.splice(lo, 0, { ptr, size });
    const next = this.freeList[lo + 1];
    if (next && ptr + size === next.ptr) { this.freeList[lo].size += next.size; this.freeList.splice(lo + 1, 1); }
    const prev = this.freeList[lo - 1];
    if (prev && prev.ptr + prev.size === ptr) { prev.size += this.freeList[lo].size; this.freeList.splice(lo, 1); }
  }

  /** Size of an allocated block (as rounded up), or undefined. */
  sizeOf(ptr: number): number | undefined { return this.live.get(ptr); }

  stats(): { inUse: number; peak: number; top: number; capacity: number; blocks: number } {
    return { inUse: this.inUse, peak: this.peakInUse, top: this.top, capacity: this.buf.byteLength, blocks: this.live.size };
  }

  /** Grows the memory to cover `end`: at least a quarter more each time (capped) so growth is rare. */
  private ensure(end: number, bytes: number, what: string): void {
    const have = this.buf.byteLength;
    if (end <= have) return;
    const want = Math.min(MAX_BYTES, Math.max(end, have + Math.min(have / 4, 256 * 2 ** 20)));
    const pages = Math.ceil((want - have) / PAGE_BYTES);
    try {
      this.memory.grow(pages);
    } catch (err) {
      throw new Error(`wasm heap: cannot grow memory to ${gib(have + pages * PAGE_BYTES)} for ${gib(bytes)} (${what}): ${(err as Error).message}`);
    }
    this.buf = this.memory.buffer as unknown as SharedArrayBuffer;
  }
}
