/** minke's q2_0 block (q2-0.ts): the layout by hand, and its exact widening into GGUF Q4_0. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeQ2_0, encodeQ2_0, widenQ2_0ToQ4_0 } from '../../src/quantize/q2-0.js';
import { dequantize } from '../../src/tensor/dequantize.js';

describe('q2_0 blocks', () => {
  it('decodes a hand-written block: d · (2q − 3)', () => {
    const block = new Uint8Array(10);
    block[0] = 0x00; block[1] = 0x3c; // f16 1.0
    block[2] = 0b11_10_01_00; // elements 0..3: q = 0, 1, 2, 3
    block[9] = 0b11_00_00_00; // element 31: q = 3; elements 28..30: q = 0
    const v = decodeQ2_0(block, 32);
    assert.deepEqual(Array.from(v.subarray(0, 4)), [-3, -1, 1, 3]);
    assert.deepEqual(Array.from(v.subarray(28)), [-3, -3, -3, 3]);
    assert.equal(v[4], -3); // code 0 everywhere else
  });

  it('encodes the four levels exactly when the values are on them', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => 0.5 * [-3, -1, 1, 3][i % 4]);
    const bytes = encodeQ2_0(x);
    assert.equal(bytes.length, 20); // 2 blocks × 10 B
    assert.deepEqual(decodeQ2_0(bytes, 64), x);
  });

  it('widens to Q4_0 blocks that decode to the same values', () => {
    const x = Float32Array.from({ length: 96 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
    const bytes = encodeQ2_0(x);
    const q4 = widenQ2_0ToQ4_0(bytes, 96, new Uint8Array(3 * 18));
    assert.deepEqual(dequantize({ dtype: 'q4_0' }, q4, 1, 96), decodeQ2_0(bytes, 96));
  });

  it('names a wrong length', () => {
    assert.throws(() => decodeQ2_0(new Uint8Array(9), 32), /32 elements need 10 bytes, got 9/);
    assert.throws(() => encodeQ2_0(new Float32Array(33)), /not a whole number of 32-element blocks/);
  });
});
