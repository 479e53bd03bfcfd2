/**
 * quantizeRow: bytes of ggml's reference rounding on hand-picked blocks, and quantize → dequantize
 * round trips of varied seeded data within each format's error bound (test/tensor/quant-bounds.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rowBytes, type DType } from '../../src/tensor/dtype.js';
import { dequantizeRow, quantizeRow } from '../../src/tensor/quant-gguf.js';
import { gaussian, rng } from './fixtures.js';
import { GGUF_TYPES, errorBounds } from './quant-bounds.js';

function quant(dtype: DType, x: number[] | Float32Array): Uint8Array {
  const src = Float32Array.from(x);
  const out = new Uint8Array(rowBytes(dtype, src.length));
  quantizeRow(dtype, src, out, src.length);
  return out;
}

function i8s(b: Uint8Array, from: number, n: number): number[] {
  return Array.from(b.subarray(from, from + n), (v) => (v << 24) >> 24);
}

const padded = (n: number, head: number[]): number[] => [...head, ...new Array(n - head.length).fill(0)];

test('q8_0 / q8_1: d = amax/127, q = round half away from zero, s = f16(d·Σq)', () => {
  // amax 127 → d = 1 (f16 0x3C00), id = 1: 63.5 → 64, −63.5 → −64, 2.5 → 3, −2.5 → −3, 0.5 → 1
  const x = padded(32, [127, 63.5, -63.5, 2.5, -2.5, 0.5, -0.49, 1.4999]);
  const q8 = quant('q8_0', x);
  assert.deepEqual([q8[0], q8[1]], [0x00, 0x3c]);
  assert.deepEqual(i8s(q8, 2, 8), [127, 64, -64, 3, -3, 1, 0, 1]);
  const q81 = quant('q8_1', x);
  assert.deepEqual([q81[0], q81[1]], [0x00, 0x3c]);
  // Σq = 127 + 64 − 64 + 3 − 3 + 1 + 0 + 1 = 129 → f16 129 = 0x5808 ((1024 + 8)·2^(22−25))
  assert.deepEqual([q81[2], q81[3]], [0x08, 0x58]);
  assert.deepEqual(i8s(q81, 4, 8), [127, 64, -64, 3, -3, 1, 0, 1]);
  // an all-zero block: d = 0, q = 0
  assert.deepEqual(Array.from(quant('q8_0', new Array(32).fill(0))), new Array(34).fill(0));
});

test('q8_k: d = max/−127 from the largest-magnitude element, q = round half to even, bsums', () => {
  // max = −127 → iscale = 1: 2.5 → 2, 3.5 → 4, −2.5 → −2, 0.5 → 0, 1.5 → 2; d = 1 (f32 0x3F800000)
  const q = quant('q8_k', padded(256, [-127, 2.5, 3.5, -2.5, 0.5, 1.5]));
  assert.deepEqual(Array.from(q.subarray(0, 4)), [0, 0, 0x80, 0x3f]);
  assert.deepEqual(i8s(q, 4, 6), [-127, 2, 4, -2, 0, 2]);
  const bsum0 = (q[260] | (q[261] << 8)) << 16 >> 16;
  assert.equal(bsum0, -127 + 2 + 4 - 2 + 0 + 2);
  // max = +127 → iscale = −1, d = −1 (0xBF800000): quants are negated
  const p = quant('q8_k', padded(256, [127, 2.5]));
  assert.deepEqual(Array.from(p.subarray(0, 4)), [0, 0, 0x80, 0xbf]);
  assert.deepEqual(i8s(p, 4, 2), [-127, -2]);
});

test('q4_0 / q5_0: d = max/−8 (−16), q = min(qmax, trunc(x/d + 8.5 (16.5)))', () => {
  // max −8 → d = 1: x0 −8 → 0; 7.5 → 16 → 15; 0.5 → 9; −0.5 → 8; 3.2 → 11; x16 −7.6 → 0
  const x = padded(32, [-8, 7.5, 0.5, -0.5, 3.2]);
  x[16] = -7.6;
  const q = quant('q4_0', x);
  assert.deepEqual(Array.from(q.subarray(0, 7)), [0x00, 0x3c, 0x00, 0x8f, 0x89, 0x88, 0x8b]);
  // max +16 → d = −1 (0xBC00): 16 → −16 + 16.5 → 0; −16 → 32.5 → 31 (clipped; qh bit);
  // 3 → −3 + 16.5 → 13; element 17 = 0 → 16 (qh bit 17)
  const y = padded(32, [16, -16, 3]);
  const q5 = quant('q5_0', y);
  assert.deepEqual([q5[0], q5[1]], [0x00, 0xbc]);
  // qh: elements with q ≥ 16: 1 (31), 3..15 and 16..31 (q = 16 for zeros) → bits 1, 3..31
  const qh = (q5[2] | (q5[3] << 8) | (q5[4] << 16) | (q5[5] << 24)) >>> 0;
  assert.equal(qh, 0xfffffffa);
  assert.deepEqual(Array.from(q5.subarray(6, 9)), [0x00, 0x0f, 0x0d]); // low nibbles 0, 15, 13; high 0
});

test('q4_1: d = (max − min)/15, m = min, q = trunc((x − min)/d + 0.5)', () => {
  // min −1, max 14 → d = 1 (0x3C00), m = −1 (0xBC00); 2.5 → 4 (3.5 rounds up); 13.6 → 15; 0 → 1
  const x = padded(32, [-1, 14, 2.5, 13.6]);
  const q = quant('q4_1', x);
  assert.deepEqual(Array.from(q.subarray(0, 8)), [0x00, 0x3c, 0x00, 0xbc, 0x10, 0x1f, 0x14, 0x1f]);
});

test('mxfp4: e = floor(log2 amax) + 125, nearest code with ties towards zero', () => {
  // amax 7 → e = 2 − 2 + 127 = 127 (scale 1): 5 → 4 (code 6), 0.75 → 0.5 (code 1; RNE would give 1),
  // 7 → 6 (code 7), −0.25 → +0 (code 0), −2.5 → −2 (code 12)
  const x = padded(32, [6, 5, 0.75, 7, -0.25, -2.5]);
  const q = quant('mxfp4', x);
  assert.deepEqual(Array.from(q.subarray(0, 7)), [127, 0x07, 0x06, 0x01, 0x07, 0x00, 0x0c]);
  assert.equal(quant('mxfp4', padded(32, [8]))[0], 128); // floor(log2 8) = 3
  assert.equal(quant('mxfp4', padded(32, [7.99]))[0], 127);
  assert.equal(quant('mxfp4', new Array(32).fill(0))[0], 0);
});

/** 16 blocks of 256 with different shapes: plain, zero, constant, shifted, tiny, huge, outliers, sparse. */
function variedData(seed: number): Float32Array {
  const n = 256;
  const x = new Float32Array(16 * n);
  const g = gaussian(16 * n, seed);
  const u = rng(seed + 1);
  for (let blk = 0; blk < 16; blk++) {
    for (let i = 0; i < n; i++) {
      const k = blk * n + i;
      const v = g[k];
      x[k] = [
        v, 0, 0.37, -2.5, v + 3, v - 3, v * 1e-3, v * 100,
        i === 77 ? 50 : 2 * u() - 1, u() < 0.9 ? 0 : v, v * 2 ** ((i >> 4) % 8 - 4), Math.abs(v), -Math.abs(v),
        v * 2 ** ((i >> 5) - 4), i % 2 ? v : -v * 0.01, v,
      ][blk];
    }
  }
  return x;
}

test('every GGUF type: quantize → dequantize stays within its error bound (seeded varied data)', () => {
  const x = variedData(1234);
  for (const [dtype, blockElems] of GGUF_TYPES) {
    const bytes = new Uint8Array(rowBytes(dtype, x.length) + 3);
    quantizeRow(dtype, x, bytes, x.length, 0, 3); // unaligned destination
    const y = new Float32Array(x.length);
    dequantizeRow(dtype, bytes, y, x.length, 3);
    const bound = errorBounds(dtype, blockElems, x, x.length);
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      const err = Math.abs(y[i] - x[i]);
      assert.ok(err <= bound[i], `${dtype} element ${i}: x ${x[i]} → ${y[i]}, error ${err} > bound ${bound[i]}`);
      worst = Math.max(worst, bound[i] ? err / bound[i] : 0);
    }
    assert.ok(worst > 0 || dtype === 'f32', `${dtype}: the bound is never approached (worst ratio ${worst})`);
    // quantising the decoded values again is stable for the reference-rounded types
    if (dtype === 'q8_0' || dtype === 'f16' || dtype === 'bf16') {
      const again = new Uint8Array(rowBytes(dtype, x.length));
      quantizeRow(dtype, y, again, x.length);
      assert.deepEqual(again, bytes.subarray(3), `${dtype}: requantisation changes bytes`);
    }
  }
});
