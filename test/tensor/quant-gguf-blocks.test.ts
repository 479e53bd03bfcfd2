/**
 * GGUF block layouts decoded from blocks built byte by byte; every expected value is worked out
 * from the ggml-common.h definition in the comment next to it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DType } from '../../src/tensor/dtype.js';
import { dequantizeRow, quantizeRow } from '../../src/tensor/quant-gguf.js';

/** A zeroed block of `size` bytes with `bytes` written at the given offsets. */
function block(size: number, ...fields: [number, number[]][]): Uint8Array {
  const b = new Uint8Array(size);
  for (const [o, bytes] of fields) b.set(bytes, o);
  return b;
}

function decode(dtype: DType, b: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  dequantizeRow(dtype, b, out, count);
  return out;
}

function expectAt(y: Float32Array, want: Record<number, number>): void {
  for (const [i, v] of Object.entries(want)) assert.ok(Object.is(y[Number(i)], v), `element ${i}: ${y[Number(i)]} vs ${v}`);
}

test('q4_0: d f16, element j = low nibble of qs[j] − 8, element j+16 = high nibble − 8', () => {
  // d = 0x3800 = 0.5; qs[0] = 0x1F → e0 = (15−8)·0.5, e16 = (1−8)·0.5; qs[1] = 0x80 → e1 = −4, e17 = 0
  const y = decode('q4_0', block(18, [0, [0x00, 0x38, 0x1f, 0x80]]), 32);
  expectAt(y, { 0: 3.5, 16: -3.5, 1: -4, 17: 0, 2: -4, 31: -4 });
});

test('q4_1: y = q·d + m', () => {
  // d = 0x3400 = 0.25, m = 0xC000 = −2; qs[0] = 0x3A → e0 = 10·0.25 − 2, e16 = 3·0.25 − 2
  const y = decode('q4_1', block(20, [0, [0x00, 0x34, 0x00, 0xc0, 0x3a]]), 32);
  expectAt(y, { 0: 0.5, 16: -1.25, 1: -2 });
});

test('q5_0: fifth bit of element j in bit j of the u32 qh; y = (q − 16)·d', () => {
  // d = 1; qh = 0x80010001 (bits 0, 16, 31); qs[0] = 0x21, qs[1] = 0xF0, qs[15] = 0x53
  const b = block(22, [0, [0x00, 0x3c, 0x01, 0x00, 0x01, 0x80]], [6, [0x21, 0xf0]], [6 + 15, [0x53]]);
  const y = decode('q5_0', b, 32);
  // e0 = (1|16)−16, e16 = (2|16)−16, e1 = 0−16, e17 = 15−16, e15 = 3−16, e31 = (5|16)−16
  expectAt(y, { 0: 1, 16: 2, 1: -16, 17: -1, 15: -13, 31: 5 });
});

test('q5_1: y = q·d + m with the fifth bit from qh', () => {
  // d = 0.5, m = 1, qh = 2 (element 1); qs[1] = 0x4F → e1 = (15|16)·0.5 + 1, e17 = 4·0.5 + 1
  const b = block(24, [0, [0x00, 0x38, 0x00, 0x3c, 0x02, 0, 0, 0]], [9, [0x4f]]);
  expectAt(decode('q5_1', b, 32), { 1: 16.5, 17: 3, 0: 1 });
});

test('q8_0 and q8_1: int8 quants times d (q8_1 has s between d and the quants)', () => {
  // d = 0x3400 = 0.25; −127·0.25, 127·0.25, 5·0.25
  const q = Array.from({ length: 32 }, (_, i) => (i === 0 ? 0x81 : i === 31 ? 0x7f : i === 5 ? 5 : 0));
  expectAt(decode('q8_0', block(34, [0, [0x00, 0x34]], [2, q]), 32), { 0: -31.75, 31: 31.75, 5: 1.25, 1: 0 });
  expectAt(decode('q8_1', block(36, [0, [0x00, 0x34, 0x12, 0x34]], [4, q]), 32), { 0: -31.75, 31: 31.75, 5: 1.25 });
});

test('mxfp4: E8M0 byte e, E2M1 codes (j low, j+16 high) times 2^(e−127), no NaN scale', () => {
  // e = 128 → ×2; qs[0] = 0xF7 → e0 = 6·2, e16 = −6·2; qs[3] = 0x91 → e3 = 0.5·2, e19 = −0.5·2
  expectAt(decode('mxfp4', block(17, [0, [128, 0xf7, 0, 0, 0x91]]), 32), { 0: 12, 16: -12, 3: 1, 19: -1, 1: 0 });
  // e = 255 → 2^128 in ggml (not NaN): code 1 (0.5) → 2^127
  expectAt(decode('mxfp4', block(17, [0, [255, 0x01]]), 32), { 0: 2 ** 127 });
});

test('q2_k: 16 sub-blocks of 16, scale/min nibbles, 2-bit quants interleaved by 32', () => {
  // d = 1 (0x3C00), dmin = 0.5 (0x3800); y = d·(sc & 15)·q − dmin·(sc >> 4)
  const scales = [0x23, 0x15, 0x01, 0, 0x32, 0, 0xf0, 0, 0x11, 0, 0, 0, 0, 0, 0, 0x0a];
  const b = block(84, [0, scales], [16, [0xe4]], [16 + 16, [0x03]], [16 + 32, [0x02]], [16 + 63, [0x40]],
    [80, [0x00, 0x3c, 0x00, 0x38]]);
  const y = decode('q2_k', b, 256);
  expectAt(y, {
    0: -1, // qs[0] bits 0-1 = 0, sub 0: 3·0 − 0.5·2
    32: 1, // qs[0] bits 2-3 = 1, sub 2: 1·1 − 0
    64: 2.5, // qs[0] bits 4-5 = 2, sub 4: 2·2 − 0.5·3
    96: -7.5, // qs[0] bits 6-7 = 3, sub 6: 0·3 − 0.5·15
    16: 14.5, // qs[16] bits 0-1 = 3, sub 1: 5·3 − 0.5·1
    128: 1.5, // qs[32] (second 128) bits 0-1 = 2, sub 8: 1·2 − 0.5·1
    255: 10, // qs[63] bits 6-7 = 1, sub 15: 10·1 − 0
    1: -1, // q = 0 in sub 0
  });
});

test('q3_k: hmask high bit (set = no −4), 2-bit quants, 6-bit scales − 32', () => {
  // scales: sub 0 = 33 (low 1 in scales[0], high 2 in scales[8] bits 0-1),
  // sub 9 = 20 (low 4 in scales[1] high nibble, high 1 in scales[9] bits 4-5),
  // sub 15 = 63 (low 15 in scales[7] high nibble, high 3 in scales[11] bits 6-7); d = 0.5
  const scales = [0x01, 0x40, 0, 0, 0, 0, 0, 0xf0, 0x02, 0x10, 0, 0xc0];
  const b = block(110, [0, [0x01]], [16, [0x10]], [32, [0x03]], [32 + 48, [0x02]], [32 + 63, [0x40]],
    [96, scales], [108, [0x00, 0x38]]);
  const y = decode('q3_k', b, 256);
  expectAt(y, {
    0: 1.5, // q 3, hmask[0] bit 0 set: 0.5·(33−32)·3
    1: -2, // q 0, high bit clear → −4: 0.5·1·(−4)
    144: -12, // qs[48] bits 0-1 = 2, hmask[16] bit 4 set: 0.5·(20−32)·2
    255: -46.5, // qs[63] bits 6-7 = 1, hmask[31] bit 7 clear: 0.5·(63−32)·(1−4)
    32: 64, // sub 2 has scale byte 0 → −32; q 0 − 4: 0.5·(−32)·(−4)
  });
});

/** q4_k / q5_k scales: sub 0 sc 10 m 4; sub 1 sc 1 m 2; sub 5 sc 50 (0b11_0010) m 23 (0b01_0111). */
const K4_SCALES = [10, 0xc1, 0, 0, 4, 0x42, 0, 0, 0, 0x72, 0, 0];

test('q4_k: 8 sub-blocks of 32 with 6-bit packed scale/min; nibbles low = sub 2i, high = sub 2i+1', () => {
  // d = 0.5 (0x3800), dmin = 0.25 (0x3400): y = 0.5·sc·q − 0.25·m
  const b = block(144, [0, [0x00, 0x38, 0x00, 0x34]], [4, K4_SCALES], [16, [0x3f]], [16 + 64, [0x20]]);
  expectAt(decode('q4_k', b, 256), {
    0: 74, // q 15, sub 0: 5·15 − 1
    32: 1, // q 3, sub 1: 0.5·3 − 0.5
    160: 44.25, // qs[64] high nibble 2, sub 5: 25·2 − 5.75
    128: 0, // sub 4: scale and min both 0
    1: -1, // q 0, sub 0
  });
});

test('q5_k: as q4_k plus qh bit (sub-block index) adding 16', () => {
  // qh[0] = 0x23: bits 0 (sub 0), 1 (sub 1), 5 (sub 5) of element l = 0
  const b = block(176, [0, [0x00, 0x38, 0x00, 0x34]], [4, K4_SCALES], [16, [0x23]], [48, [0x3f]], [48 + 64, [0x20]]);
  expectAt(decode('q5_k', b, 256), {
    0: 154, // q 31: 5·31 − 1
    32: 9, // q 19: 0.5·19 − 0.5
    160: 444.25, // q 18: 25·18 − 5.75
    1: -1,
  });
});

test('q6_k: low nibbles in ql, 2 high bits in qh, int8 scale per 16, q − 32', () => {
  // d = 0.5; scales[0] = 2, [2] = −3, [4] = 4, [6] = 1, [15] = −128
  const sc = [2, 0, 0xfd, 0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80];
  const b = block(210, [0, [0x5a]], [32, [0x0f]], [127, [0xf0]], [128, [0xc9]], [128 + 63, [0xc0]],
    [192, sc], [208, [0x00, 0x38]]);
  expectAt(decode('q6_k', b, 256), {
    0: -6, // ql[0] low 10, qh[0] bits 0-1 = 1 → 26 − 32 = −6; 0.5·2·(−6)
    32: -22.5, // ql[32] low 15, qh[0] bits 2-3 = 2 → 47 − 32 = 15; 0.5·(−3)·15
    64: -54, // ql[0] high 5, qh[0] bits 4-5 = 0 → −27; 0.5·4·(−27)
    96: 8, // ql[32] high 0, qh[0] bits 6-7 = 3 → 16; 0.5·1·16
    255: -1984, // ql[127] high 15, qh[63] bits 6-7 = 3 → 31; 0.5·(−128)·31
    1: -32, // q −32, scale 2
  });
});

test('q8_k: f32 d, int8 quants (bsums are not read)', () => {
  // d = 0.125 = f32 bits 0x3E000000
  const b = block(292, [0, [0, 0, 0, 0x3e, 0x80]], [4 + 255, [0x7f]]);
  expectAt(decode('q8_k', b, 256), { 0: -16, 255: 15.875, 1: 0 });
});

test('blocks decode at unaligned offsets, into an offset destination', () => {
  const b = block(3 + 34, [3, [0x00, 0x34, 0x81]]);
  const out = new Float32Array(40);
  dequantizeRow('q8_0', b, out, 32, 3, 5);
  assert.equal(out[5], -31.75);
  assert.equal(out[4], 0);
});

test('element types: f32/f16/bf16/e4m3/e5m2/e8m0/fp4 rows, little-endian', () => {
  const f32 = new Uint8Array([0, 0, 0xc0, 0x3f, 0, 0, 0x80, 0xbf]); // 1.5, −1
  expectAt(decode('f32', f32, 2), { 0: 1.5, 1: -1 });
  expectAt(decode('f16', new Uint8Array([0x00, 0x3c, 0x00, 0xc0]), 2), { 0: 1, 1: -2 });
  expectAt(decode('bf16', new Uint8Array([0x80, 0x3f, 0xa0, 0xc0]), 2), { 0: 1, 1: -5 });
  expectAt(decode('f8_e4m3', new Uint8Array([0x38, 0xfe]), 2), { 0: 1, 1: -448 });
  expectAt(decode('f8_e5m2', new Uint8Array([0x3c, 0x7b]), 2), { 0: 1, 1: 57344 });
  expectAt(decode('e8m0', new Uint8Array([127, 130]), 2), { 0: 1, 1: 8 });
  expectAt(decode('fp4_e2m1', new Uint8Array([0x72, 0x9f]), 4), { 0: 1, 1: 6, 2: -6, 3: -0.5 });
});

test('bad arguments are clear errors', () => {
  assert.throws(() => dequantizeRow('q4_0', new Uint8Array(18), new Float32Array(32), 31), /whole number of q4_0 blocks/);
  assert.throws(() => dequantizeRow('q4_0', new Uint8Array(17), new Float32Array(32), 32), /need 18 bytes/);
  assert.throws(() => dequantizeRow('q4_0', new Uint8Array(18), new Float32Array(16), 32), /do not fit/);
  assert.throws(() => dequantizeRow('i32', new Uint8Array(4), new Float32Array(1), 1), /no decoder for dtype i32/);
  assert.throws(() => quantizeRow('e8m0', new Float32Array(1), new Uint8Array(1), 1), /no encoder for dtype e8m0/);
});
