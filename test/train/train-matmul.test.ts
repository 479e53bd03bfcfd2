/**
 * The f32 training products on the WASM kernels (src/train/matmul.ts dispatches all-f32 operands
 * there) against the f64 loops of the same file on the same values, and Newton–Schulz in f32 (what
 * Muon runs for f32 parameters) against its f64 iteration, which optim.test.ts holds to the quintic
 * of the singular values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accumulateRows, matmulXWt } from '../../src/train/matmul.js';
import { newtonSchulz } from '../../src/train/optim.js';
import { rng } from '../support/rng.js';

function uniform(n: number, seed: number): Float64Array {
  const next = rng(seed);
  return Float64Array.from({ length: n }, () => 2 * next() - 1);
}

/** Largest |a[i] − b[i]|. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('training products: f32 (WASM) against f64 (TS loops)', () => {
  for (const [n, k, m] of [[33, 128, 64], [17, 130, 37], [64, 128, 128]]) {
    it(`y = x·Wᵀ, dx += dy·W, dW += dyᵀ·x at n ${n}, k ${k}, m ${m}`, () => {
      const x = uniform(n * k, 1), w = uniform(m * k, 2), dy = uniform(n * m, 3), dx0 = uniform(n * k, 4), dW0 = uniform(m * k, 5);
      // f32 inputs, so both paths see the same values.
      const x32 = Float32Array.from(x), w32 = Float32Array.from(w), dy32 = Float32Array.from(dy);
      const x64 = Float64Array.from(x32), w64 = Float64Array.from(w32), dy64 = Float64Array.from(dy32);
      const acc = new Float64Array(k);
      const y32 = new Float32Array(n * m), y64 = new Float64Array(n * m);
      matmulXWt(x32, w32, y32, n, k, m);
      matmulXWt(x64, w64, y64, n, k, m);
      assert.ok(maxDiff(y32, y64) < 4 * k * 2 ** -23, `y differs by ${maxDiff(y32, y64)}`);
      const dx32 = Float32Array.from(dx0), dx64 = Float64Array.from(dx32);
      accumulateRows(dy32, 1, m, w32, dx32, n, m, k, acc);
      accumulateRows(dy64, 1, m, w64, dx64, n, m, k, acc);
      assert.ok(maxDiff(dx32, dx64) < 4 * (m + 1) * 2 ** -23, `dx differs by ${maxDiff(dx32, dx64)}`);
      const dW32 = Float32Array.from(dW0), dW64 = Float64Array.from(dW32);
      accumulateRows(dy32, m, 1, x32, dW32, m, n, k, acc);
      accumulateRows(dy64, m, 1, x64, dW64, m, n, k, acc);
      assert.ok(maxDiff(dW32, dW64) < 4 * (n + 1) * 2 ** -23, `dW differs by ${maxDiff(dW32, dW64)}`);
    });
  }
});

describe('Newton–Schulz in f32', () => {
  for (const [rows, cols, seed] of [[32, 64, 1], [64, 32, 2], [8, 128, 3], [128, 128, 4], [128, 384, 5]]) {
    it(`[${rows}, ${cols}] agrees with the f64 iteration`, () => {
      const g = uniform(rows * cols, seed);
      const o32 = newtonSchulz(g, rows, cols, 5, 'f32'), o64 = newtonSchulz(g, rows, cols, 5, 'f64');
      assert.ok(o32 instanceof Float32Array && o64 instanceof Float64Array);
      // Entries of a near-orthogonal [rows, cols] matrix are ~1/√max(rows, cols); f32 keeps ~1e-5 of that.
      const d = maxDiff(o32, o64), scale = 1 / Math.sqrt(Math.max(rows, cols));
      assert.ok(d < 1e-4 * scale, `f32 and f64 differ by ${d} (entries ~${scale.toFixed(3)})`);
    });
  }
});
