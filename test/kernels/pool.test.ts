/** The worker pool: thread count, row splitting, errors from workers, and closing. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { CpuBackend, type CpuTensor } from '../../src/kernels/cpu/cpu-backend.js';
import { defaultThreads } from '../../src/kernels/cpu/pool.js';
import { rng } from './util.js';

describe('defaultThreads', () => {
  it('takes the option, else MINKE_THREADS, else every core', () => {
    const saved = process.env.MINKE_THREADS;
    try {
      delete process.env.MINKE_THREADS;
      assert.equal(defaultThreads(), availableParallelism());
      process.env.MINKE_THREADS = '3';
      assert.equal(defaultThreads(), 3);
      assert.equal(defaultThreads(5), 5);
      process.env.MINKE_THREADS = 'many';
      assert.throws(() => defaultThreads(), /MINKE_THREADS=many/);
      assert.throws(() => defaultThreads(0), /from 1 to 256, got 0/);
    } finally {
      if (saved === undefined) delete process.env.MINKE_THREADS; else process.env.MINKE_THREADS = saved;
    }
  });
});

describe('WorkerPool', () => {
  let be: CpuBackend;
  before(async () => { be = await CpuBackend.create({ threads: 3 }); });
  after(() => be.close());

  it('runs every row exactly once, whatever the row count and alignment', () => {
    const d = 3;
    for (const rows of [1, 2, 3, 4, 5, 7, 8, 33, 100, 257, 1001]) {
      for (const align of [1, 4, 128]) {
        // a[r] += b[r] in place: a skipped row stays 0, a row run twice becomes 2.
        const a = be.alloc('f32', [rows, d]) as CpuTensor;
        const b = be.alloc('f32', [rows, d]) as CpuTensor;
        be.f32(b).fill(1);
        be.pool.run('add_f32', [a.ptr, b.ptr, a.ptr, d, d], rows, align);
        assert.deepEqual(Array.from(new Set(be.f32(a))), [1], `rows ${rows}, align ${align}`);
        be.free(a); be.free(b);
      }
    }
  });

  it('stays exact over thousands of back-to-back jobs with more threads than cores', async () => {
    // 5 threads on (typically) fewer cores: workers are often preempted mid-job and wake up to
    // stale jobs, which is what the claim protocol of pool-control.ts must survive.
    const busy = await CpuBackend.create({ threads: 5 });
    try {
      const d = 2, maxRows = 200;
      const a = busy.alloc('f32', [maxRows, d]) as CpuTensor, b = busy.alloc('f32', [maxRows, d]) as CpuTensor;
      busy.f32(b).fill(1);
      const av = busy.f32(a);
      const r = rng(7);
      for (let j = 0; j < 5000; j++) {
        const rows = 1 + Math.floor(r() * maxRows), threads = 1 + Math.floor(r() * 5), align = [1, 4, 8][j % 3];
        av.fill(0, 0, rows * d);
        busy.pool.run('add_f32', [a.ptr, b.ptr, a.ptr, d, d], rows, align, threads);
        for (let i = 0; i < rows * d; i++) if (av[i] !== 1) assert.fail(`job ${j} (${rows} rows, ${threads} threads): element ${i} is ${av[i]}`);
      }
    } finally {
      await busy.close();
    }
  });

  it('uses fewer threads when asked, with the same result', () => {
    const a = be.alloc('f32', [64, 8]) as CpuTensor, b = be.alloc('f32', [64, 8]) as CpuTensor;
    be.f32(b).fill(2);
    for (const t of [1, 2, 3]) be.pool.run('add_f32', [a.ptr, b.ptr, a.ptr, 8, 8], 64, 4, t);
    assert.deepEqual(Array.from(new Set(be.f32(a))), [6]);
  });

  it('reports a kernel that traps, in a worker or the caller, and keeps working', () => {
    const rows = 64;
    const y = be.alloc('f32', [rows]) as CpuTensor;
    const outside = 2 ** 32 - 2 ** 20; // far beyond the memory's current size
    assert.throws(() => be.pool.run('rowsum_f32', [outside, y.ptr, 1024], rows, 4), /out of bounds/);
    const x = be.alloc('f32', [rows, 4]) as CpuTensor;
    be.f32(x).fill(0.5);
    be.pool.run('rowsum_f32', [x.ptr, y.ptr, 4], rows, 4);
    assert.deepEqual(Array.from(new Set(be.f32(y))), [2]);
  });

  it('names an unknown kernel', () => {
    assert.throws(() => be.pool.run('no_such_kernel', [], 4), /no export "no_such_kernel"/);
  });
});

describe('closing', () => {
  const backend = new URL('../../src/kernels/cpu/cpu-backend.js', import.meta.url).href;
  const script = (close: boolean) => `
    const { CpuBackend } = await import(${JSON.stringify(backend)});
    const be = await CpuBackend.create({ threads: 2, parallelMin: { matrixBytes: 0 } });
    const w = be.alloc('f32', [64, 64]), x = be.alloc('f32', [64]), y = be.alloc('f32', [64]);
    be.matvec(w, x, y);
    ${close ? 'await be.close();' : ''}
    console.log('done');`;

  for (const close of [true, false]) {
    it(`the process exits when the script ends${close ? ' after close()' : ' without close() (workers are unref\'d)'}`, () => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(close)], { timeout: 20000, encoding: 'utf8' });
      assert.equal(r.error, undefined, `child did not exit: ${r.error?.message}`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'done');
    });
  }

  it('refuses work after close()', async () => {
    const be = await CpuBackend.create({ threads: 2 });
    await be.close();
    assert.throws(() => be.pool.run('rowsum_f32', [0, 0, 1], 1), /closed/);
  });
});
