/**
 * Whole-weight codecs (DeepSeek FP8 tiles, FP4 groups, GGUF rows) and the §3.6 activation round
 * trips, against hand-built weights and the reference fixtures under /work/shared.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { actQuantFp8, dequantize, qatFp4, qatFp8, quantize } from '../../src/tensor/dequantize.js';
import { FP4_E8M0_32, FP8_BLOCK32_E8M0, FP8_BLOCK_E8M0, FP8_BLOCK_F32, formatName, rowBytes, type WeightFormat } from '../../src/tensor/dtype.js';
import { E2M1_TO_F32, E4M3_TO_F32, f32ToE2m1, f32ToE4m3 } from '../../src/tensor/float.js';
import { rng } from '../support/rng.js';
import { dequantizeRow } from '../../src/tensor/quant-gguf.js';
import { gaussian, readBytes, readF32, readJson } from './fixtures.js';

const V4K = 'fixtures/deepseek-v4-tiny/kernels/';
const V3K = 'fixtures/deepseek-v3-tiny/kernels/';

function assertSame(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) assert.ok(Object.is(got[i], want[i]), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

test('FP8 E4M3 with E8M0 128×128 tiles: W = e4m3(q)·2^(S−127), partial edge tiles', () => {
  const rows = 130;
  const cols = 129; // scale grid [2, 2]
  const data = new Uint8Array(rows * cols).fill(0x38); // every code 1.0
  data[127 * cols + 127] = 0x7e; // 448 in tile (0, 0)
  data[128 * cols + 1] = 0xc0; // −2 in tile (1, 0)
  const scale = new Uint8Array([127, 128, 126, 130]); // ×1, ×2, ×0.5, ×8
  const w = dequantize(FP8_BLOCK_E8M0, data, rows, cols, scale);
  assert.equal(w[0], 1);
  assert.equal(w[128], 2); // column 128: tile (0, 1)
  assert.equal(w[127 * cols + 127], 448);
  assert.equal(w[129 * cols + 0], 0.5);
  assert.equal(w[128 * cols + 1], -1); // −2 · 0.5
  assert.equal(w[129 * cols + 128], 8);
  assert.throws(() => dequantize(FP8_BLOCK_E8M0, data, rows, cols, new Uint8Array([127, 128, 126, 255])), /NaN scale/);
  assert.throws(() => dequantize(FP8_BLOCK_E8M0, data, rows, cols, new Uint8Array(3)), /needs 4 scale bytes/);
  assert.throws(() => dequantize(FP8_BLOCK_E8M0, data, rows, cols), /scale tensor is missing/);
  assert.throws(() => dequantize(FP8_BLOCK_E8M0, data.subarray(1), rows, cols, scale), /needs 16770 data bytes/);
});

test('FP8 E4M3 with E8M0 32×32 blocks (V4.1): W = e4m3(q)·2^(S−127), partial edge blocks', () => {
  const rows = 45;
  const cols = 70; // scale grid [2, 3]: blocks of 32 rows (13 in the last) by 32, 32, 6 columns
  assert.equal(formatName(FP8_BLOCK32_E8M0), 'f8_e4m3+e8m0/32x32');
  const data = new Uint8Array(rows * cols).fill(0x38); // every code 1.0
  data[31 * cols + 31] = 0x7e; // 448, last element of block (0, 0)
  data[32 * cols + 32] = 0xc0; // −2, first element of block (1, 1)
  data[44 * cols + 69] = 0x01; // 2^−9 (smallest subnormal), last element of block (1, 2)
  const scale = new Uint8Array([127, 128, 129, 126, 125, 137]); // ×1, ×2, ×4 | ×0.5, ×0.25, ×1024
  const w = dequantize(FP8_BLOCK32_E8M0, data, rows, cols, scale);
  assert.equal(w[0], 1);
  assert.equal(w[31], 1); // column 31: still block (0, 0)
  assert.equal(w[32], 2); // column 32: block (0, 1)
  assert.equal(w[64], 4); // column 64: block (0, 2)
  assert.equal(w[31 * cols + 31], 448);
  assert.equal(w[32 * cols + 0], 0.5); // row 32: block (1, 0)
  assert.equal(w[32 * cols + 32], -0.5); // −2 · 0.25
  assert.equal(w[44 * cols + 63], 0.25);
  assert.equal(w[44 * cols + 69], 2 ** -9 * 1024);
  assert.throws(() => dequantize(FP8_BLOCK32_E8M0, data, rows, cols, new Uint8Array([127, 128, 129, 126, 255, 137])), /NaN scale \(0xFF\) at tile \[1, 1\]/);
  assert.throws(() => dequantize(FP8_BLOCK32_E8M0, data, rows, cols, new Uint8Array(4)), /needs 6 scale bytes \(\[2, 3\]\)/);
  assert.throws(() => dequantize(FP8_BLOCK32_E8M0, data, rows, cols), /scale tensor is missing/);
});

test('quantize FP8/E8M0 32×32: one power-of-two scale per 32×32 block', () => {
  // [33, 40]: grid [2, 2]. Block amax: (0,0) 448 → 2^0; (0,1) 1 → 2^−8 (1/448 ≤ 2^−8);
  // (1,0) 3 → 2^−7 (3/448 ≈ 2^−7.2); (1,1) all zero → byte 127.
  const rows = 33, cols = 40;
  const v = new Float32Array(rows * cols);
  v[0] = 448; v[1] = 1; // block (0, 0)
  v[5 * cols + 35] = -1; // block (0, 1)
  v[32 * cols + 3] = 3; // block (1, 0)
  const { data, scale } = quantize(FP8_BLOCK32_E8M0, v, rows, cols);
  assert.deepEqual(Array.from(scale!), [127, 119, 120, 127]);
  assert.equal(data[0], 0x7e); // 448
  assert.equal(data[1], 0x38); // 1
  assert.equal(data[5 * cols + 35], 0xf8); // −1 / 2^−8 = −256: sign, e 8+7, m 0
  assert.equal(data[32 * cols + 3], 0x7c); // 3 / 2^−7 = 384: e 8+7, m 4
  const w = dequantize(FP8_BLOCK32_E8M0, data, rows, cols, scale);
  assert.deepEqual([w[0], w[1], w[5 * cols + 35], w[32 * cols + 3]], [448, 1, -1, 3]);
});

test('FP8 E4M3 with f32 tiles (V3 weight_scale_inv) matches weight_dequant_partial_blocks', () => {
  const values = readF32(`${V3K}weight_dequant_partial_blocks.in.w_e4m3_values.bin`); // [140, 150]
  const codes = Uint8Array.from(values, (v) => f32ToE4m3(v));
  codes.forEach((c, i) => assert.ok(Object.is(E4M3_TO_F32[c], values[i]), `input ${i} is an E4M3 value`));
  const scale = readBytes(`${V3K}weight_dequant_partial_blocks.in.scale.bin`); // [2, 2] f32 LE
  const want = readF32(`${V3K}weight_dequant_partial_blocks.out.w.bin`);
  assertSame(dequantize(FP8_BLOCK_F32, codes, 140, 150, scale), want, 'w');
});

test('FP4 E2M1 with E8M0 per row per 32: low nibble = even element', () => {
  const data = new Uint8Array(2 * 32); // [2, 64/2]
  data[0] = 0x72; // element 0: code 2 (1.0), element 1: code 7 (6.0)
  data[16] = 0xf9; // elements 32, 33: codes 9 (−0.5), 15 (−6)
  data[32] = 0x08; // row 1, element 0: code 8 (−0)
  const scale = new Uint8Array([128, 126, 127, 127]); // [2, 2]: ×2, ×0.5 | ×1, ×1
  const w = dequantize(FP4_E8M0_32, data, 2, 64, scale);
  assert.deepEqual(Array.from(w.subarray(0, 2)), [2, 12]);
  assert.deepEqual(Array.from(w.subarray(32, 34)), [-0.25, -3]);
  assert.ok(Object.is(w[64], -0));
  assert.throws(() => dequantize(FP4_E8M0_32, data, 2, 64, new Uint8Array(2)), /needs 4 scale bytes/);
});

test('quantize FP8/E8M0: scale 2^ceil(log2(amax/448)) per tile, codes nearest-even', () => {
  const v = new Float32Array(4).fill(0);
  v[0] = 100; // amax 100: 100/448 → 2^-2 → byte 125; 100/0.25 = 400 → 384 (tie 384|416 to even) → 96
  v[1] = -1;
  const { data, scale } = quantize(FP8_BLOCK_E8M0, v, 2, 2);
  assert.deepEqual(Array.from(scale!), [125]);
  assert.deepEqual(Array.from(data), [0x7c, 0xc8, 0x00, 0x00]); // 384: e 8+7, m 4; −4: sign, e 2+7, m 0
  assert.deepEqual(Array.from(dequantize(FP8_BLOCK_E8M0, data, 2, 2, scale)), [96, -1, 0, 0]);
  // FP4: amax 3 → 2^ceil(log2 0.5) = 0.5 → byte 126; 3/0.5 = 6 (code 7), 1/0.5 = 2 (code 4)
  const f = quantize(FP4_E8M0_32, Float32Array.from({ length: 32 }, (_, i) => (i === 0 ? 3 : i === 1 ? 1 : 0)), 1, 32);
  assert.deepEqual(Array.from(f.scale!), [126]);
  assert.equal(f.data[0], 0x47);
});

/** Half the E2M1 gap around a scaled magnitude a ≤ 6. */
const e2m1HalfGap = (a: number): number => (a <= 2 ? 0.25 : a <= 4 ? 0.5 : 1);

test('scaled formats: quantize → dequantize within the element format bound', () => {
  const rows = 200;
  const cols = 160; // partial FP8 tiles in both directions
  const x = gaussian(rows * cols, 99);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) x[r * cols + c] *= 2 ** ((r % 7) - 3);
  const cases: [WeightFormat, number, number][] = [[FP8_BLOCK_E8M0, 128, 128], [FP8_BLOCK32_E8M0, 32, 32], [FP8_BLOCK_F32, 128, 128], [FP4_E8M0_32, 1, 32]];
  for (const [format, tr, tc] of cases) {
    const { data, scale } = quantize(format, x, rows, cols);
    const gridCols = Math.ceil(cols / tc);
    assert.equal(scale!.length, Math.ceil(rows / tr) * gridCols * (format.scale!.dtype === 'f32' ? 4 : 1));
    const y = dequantize(format, data, rows, cols, scale);
    const view = new DataView(scale!.buffer);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const si = Math.floor(r / tr) * gridCols + Math.floor(c / tc);
        const s = format.scale!.dtype === 'f32' ? view.getFloat32(4 * si, true) : 2 ** (scale![si] - 127);
        const a = Math.abs(x[i]);
        // E4M3: half an ulp, 2^-4 relative for normals, 2^-10·s for subnormals; E2M1: half its gap
        const bound = format.dtype === 'fp4_e2m1'
          ? e2m1HalfGap(a / s) * s
          : Math.max(a * 2 ** -4, s * 2 ** -10) + a * 2 ** -23;
        assert.ok(Math.abs(y[i] - x[i]) <= bound, `${format.dtype} [${r}, ${c}]: ${x[i]} → ${y[i]} (scale ${s})`);
      }
    }
    // the chosen E8M0 scales are the smallest powers of two that fit amax (checked on a few tiles)
    if (format.scale!.dtype === 'e8m0') {
      const qmax = format.dtype === 'fp4_e2m1' ? 6 : 448;
      for (const [gr, gc] of [[0, 0], [1, 1], [Math.ceil(rows / tr) - 1, 0]]) {
        let amax = 0;
        for (let r = gr * tr; r < Math.min(rows, (gr + 1) * tr); r++) {
          for (let c = gc * tc; c < Math.min(cols, (gc + 1) * tc); c++) amax = Math.max(amax, Math.abs(x[r * cols + c]));
        }
        const s = 2 ** (scale![gr * gridCols + gc] - 127);
        assert.ok(amax <= qmax * s && amax > (qmax * s) / 2, `${format.dtype} tile [${gr}, ${gc}]: amax ${amax}, scale ${s}`);
      }
    }
  }
});

test('GGUF dtypes through dequantize/quantize equal row-by-row dequantizeRow', () => {
  const rows = 3;
  const cols = 256;
  const x = gaussian(rows * cols, 5);
  for (const dtype of ['q4_k', 'q8_0', 'mxfp4', 'bf16'] as const) {
    const { data, scale } = quantize({ dtype }, x, rows, cols);
    assert.equal(scale, undefined);
    assert.equal(data.length, rows * rowBytes(dtype, cols));
    const y = dequantize({ dtype }, data, rows, cols);
    const row = new Float32Array(cols);
    dequantizeRow(dtype, data, row, cols, rowBytes(dtype, cols) * 2);
    assertSame(y.subarray(2 * cols), row, dtype);
  }
  assert.throws(() => quantize({ dtype: 'q4_k' }, new Float32Array(100), 1, 100), /not a whole number of q4_k blocks/);
  assert.throws(() => quantize({ dtype: 'q8_0' }, new Float32Array(10), 1, 32), /needs 32 values/);
});

test('qatFp8 / qatFp4 match dsv4_numerics.json (qat_fp8_block64, qat_fp4_block32)', () => {
  const nm = readJson('spec/testdata/dsv4_numerics.json');
  const x8 = Float32Array.from(nm.qat_fp8_block64.x);
  qatFp8(x8, 64);
  assertSame(x8, Float32Array.from(nm.qat_fp8_block64.y), 'qat_fp8_block64');
  const x4 = Float32Array.from(nm.qat_fp4_block32.x);
  qatFp4(x4, 32);
  assertSame(x4, Float32Array.from(nm.qat_fp4_block32.y), 'qat_fp4_block32');
  const a = actQuantFp8(Float32Array.from(nm.act_quant_fp8_block128.x), 128);
  assertSame(a.scales, Float32Array.from(nm.act_quant_fp8_block128.scale), 'act_quant scale');
  assertSame(Float32Array.from(a.codes, (c) => E4M3_TO_F32[c]), Float32Array.from(nm.act_quant_fp8_block128.e4m3_values), 'act_quant e4m3');
});

test('qatFp8 / qatFp4 / actQuantFp8 match the V4 (and V3 ue8m0) kernel goldens', () => {
  const x8 = readF32(`${V4K}act_quant_fp8_b64_inplace.in.x.bin`);
  qatFp8(x8, 64);
  assertSame(x8, readF32(`${V4K}act_quant_fp8_b64_inplace.out.x_after.bin`), 'act_quant_fp8_b64_inplace');
  const x4 = readF32(`${V4K}fp4_act_quant_b32_inplace.in.x.bin`);
  qatFp4(x4, 32);
  assertSame(x4, readF32(`${V4K}fp4_act_quant_b32_inplace.out.x_after.bin`), 'fp4_act_quant_b32_inplace');
  for (const [dir, name] of [[V4K, 'act_quant_fp8_b128'], [V3K, 'act_quant_v3_ue8m0']]) {
    const a = actQuantFp8(readF32(`${dir}${name}.in.x.bin`), 128);
    assertSame(a.scales, readF32(`${dir}${name}.out.scale.bin`), `${name} scale`);
    assertSame(Float32Array.from(a.codes, (c) => E4M3_TO_F32[c]), readF32(`${dir}${name}.out.y_e4m3_values.bin`), `${name} values`);
  }
  assert.throws(() => qatFp8(new Float32Array(100), 64), /not a whole number of blocks of 64/);
});

test('qatFp8 hand cases: power-of-two scale, nearest-even codes, the 1e-4 floor', () => {
  // amax 1 → 1/448 → s = 2^-8 (2^-9 < 1/448 ≤ 2^-8): 1/s = 256 exact; 0.3/s = 76.8 → 80 (step 8 in
  // [64, 128)) → 0.3125; −0.001/s = −0.256 → −0.25 (step 2^-5 in [0.25, 0.5)) → −2^-10
  const x = Float32Array.from([1, 0.3, -0.001, 0]);
  qatFp8(x, 4);
  assert.deepEqual(Array.from(x), [1, 0.3125, -0.0009765625, 0]);
  // all below the floor: a = 1e-4 → 1e-4/448 ≈ 2^-22.1 → s = 2^-22; 1e-5/s = 41.94 → 40 (step 4 in [32, 64))
  const y = Float32Array.from([1e-5, 0]);
  qatFp8(y, 2);
  assert.equal(y[0], 40 * 2 ** -22);
});

test('qatFp8 / qatFp4 equal the element-by-element definition on random blocks with midpoints and tiny values', () => {
  const rand = rng(5);
  /** 2^ceil(log2(v)) for an f32 v > 0, by exact comparison. */
  const ceilPow2 = (v: number) => {
    let e = Math.ceil(Math.log2(v));
    if (2 ** (e - 1) >= v) e--;
    if (2 ** e < v) e++;
    return 2 ** e;
  };
  for (const [block, qmax, floor, table, encode, qat] of [
    [128, 448, Math.fround(1e-4), E4M3_TO_F32, f32ToE4m3, qatFp8],
    [32, 6, 6 * 2 ** -126, E2M1_TO_F32, f32ToE2m1, qatFp4],
  ] as const) {
    for (let b = 0; b < 400; b++) {
      const mag = 2 ** (rand() * 40 - 30);
      const x = gaussian(block, 1000 + b, mag);
      // Some exact grid midpoints (after the block's scale) and some zeros of both signs.
      let a = floor;
      for (const v of x) a = Math.max(a, Math.abs(v));
      const s = ceilPow2(Math.fround(a / qmax));
      for (let i = 0; i < 6; i++) {
        const c = 1 + Math.floor(rand() * (table.length / 2 - 3));
        x[Math.floor(rand() * block)] = ((table[c] + table[c + 1]) / 2) * s * (rand() < 0.5 ? -1 : 1);
      }
      x[0] = -0;
      x[1] = -mag * 2 ** -40;
      let a2 = floor;
      for (const v of x) a2 = Math.max(a2, Math.abs(v));
      const s2 = ceilPow2(Math.fround(a2 / qmax));
      const want = x.map((v) => table[encode(Math.fround(v / s2))] * s2);
      const got = x.slice();
      qat(got, block);
      assertSame(got, want, `block ${b} (×${mag})`);
    }
  }
});
