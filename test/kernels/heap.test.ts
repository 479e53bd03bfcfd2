/** The shared-memory allocator: alignment, reuse, merging, growth, the 4 GiB limit, the reserved low region. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuBackend } from '../../src/kernels/cpu/cpu-backend.js';
import { ALIGN, MAX_BYTES, PAGE_BYTES, WasmHeap } from '../../src/kernels/cpu/heap.js';

describe('WasmHeap', () => {
  it('starts above the reserved region, on a page boundary', () => {
    const h = new WasmHeap(1648);
    assert.equal(h.base, PAGE_BYTES);
    assert.equal(h.alloc(10), PAGE_BYTES);
    assert.equal(new WasmHeap(3 * PAGE_BYTES + 1).base, 4 * PAGE_BYTES);
  });

  it('hands out 64-byte aligned, disjoint blocks and reuses freed ones', () => {
    const h = new WasmHeap(0);
    const a = h.alloc(1), b = h.alloc(100), c = h.alloc(64);
    for (const p of [a, b, c]) assert.equal(p % ALIGN, 0);
    assert.equal(b - a, 64);
    assert.equal(c - b, 128);
    h.free(b);
    assert.equal(h.alloc(65), b, 'a freed block that fits is reused');
    assert.equal(h.stats().blocks, 3);
  });

  it('merges neighbouring free blocks and gives the top back', () => {
    const h = new WasmHeap(0);
    const a = h.alloc(64), b = h.alloc(64), c = h.alloc(64), d = h.alloc(64);
    h.free(a); h.free(c); h.free(b);
    assert.equal(h.alloc(192), a, 'a, b and c merged into one block');
    h.free(d);
    assert.equal(h.stats().top, a + 192, 'freeing the last block lowers the top');
    const e = h.alloc(64);
    assert.equal(e, d);
  });

  it('prefers the smallest free block that fits', () => {
    const h = new WasmHeap(0);
    const big = h.alloc(1024); h.alloc(64);
    const small = h.alloc(128); h.alloc(64);
    h.free(big); h.free(small);
    assert.equal(h.alloc(100), small);
  });

  it('grows the memory on demand and the new bytes are usable', () => {
    const h = new WasmHeap(0);
    const before = h.buffer.byteLength;
    const { ptr, bytes } = h.allocBytes(64 * 2 ** 20, 'big');
    assert.ok(h.buffer.byteLength >= ptr + 64 * 2 ** 20);
    assert.ok(h.buffer.byteLength > before);
    assert.equal(bytes.length, 64 * 2 ** 20);
    bytes[bytes.length - 1] = 7;
    assert.equal(new Uint8Array(h.buffer)[ptr + bytes.length - 1], 7, 'allocBytes is a view of the memory');
    assert.equal(h.memory.buffer.byteLength, h.buffer.byteLength);
  });

  it('names the request when 4 GiB would be exceeded', () => {
    const h = new WasmHeap(0);
    h.alloc(3 * 2 ** 30, 'first'); // reserved address space only: nothing is touched
    assert.throws(() => h.alloc(1.5 * 2 ** 30, 'blk.7.ffn_up.weight'),
      /cannot allocate 1\.50 GiB for blk\.7\.ffn_up\.weight: 3\.00 GiB already in use .*4 GiB/);
    assert.throws(() => new WasmHeap(0).alloc(MAX_BYTES, 'everything'), /for everything/);
  });

  it('rejects bad sizes and frees of unknown blocks', () => {
    const h = new WasmHeap(0);
    assert.throws(() => h.alloc(-1, 'x'), /bad size -1 for x/);
    assert.throws(() => h.alloc(1.5), /bad size/);
    assert.throws(() => h.free(12345), /not an allocated block/);
    const p = h.alloc(8);
    h.free(p);
    assert.throws(() => h.free(p), /not an allocated block/);
  });

  it("in the backend, starts above the kernel module's __heap_base", async () => {
    const be = await CpuBackend.create({ threads: 1 });
    try {
      const heapBase = (be.pool.exports.heap_base as () => number)();
      assert.ok(heapBase > 0);
      assert.ok(be.heap.base >= heapBase);
    } finally {
      await be.close();
    }
  });
});
