/** Helpers shared by the kernel tests: seeded random data and tolerant comparison. */
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/kernels/backend.js';
import type { CpuBackend } from '../../src/kernels/cpu/cpu-backend.js';
import { rng } from '../support/rng.js';
export { rng };


/** `n` uniform values in [-scale, scale). */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (2 * r() - 1) * scale);
}

/** An f32 tensor holding `values`. */
export function tensorOf(be: CpuBackend, shape: readonly number[], values: Float32Array): Tensor {
  const t = be.alloc('f32', shape);
  be.upload(t, values);
  return t;
}

/**
 * Asserts |a[i] − b[i]| ≤ tol[i] (or a scalar tol) for every i, with NaN equal to NaN, naming the
 * first offending element.
 */
export function assertClose(what: string, a: ArrayLike<number>, b: ArrayLike<number>, tol: number | ArrayLike<number>): void {
  assert.equal(a.length, b.length, `${what}: lengths differ`);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    if (a[i] === b[i]) continue;
    const t = typeof tol === 'number' ? tol : tol[i];
    if (!(Math.abs(a[i] - b[i]) <= t)) {
      assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]} (difference ${Math.abs(a[i] - b[i])} > ${t})`);
    }
  }
}

/** Largest absolute value. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
