import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  E2M1_TO_F32, E4M3_TO_F32, F16_TO_F32, bf16ToF32, e2m1ToF32, e4m3ToF32, e5m2ToF32, e8m0ToF32, f16ToF32,
  f32ToBf16, f32ToE2m1, f32ToE4m3, f32ToE5m2, f32ToF16,
} from '../../src/tensor/float.js';
import { readJson } from './fixtures.js';
import { rng } from '../support/rng.js';

const formats = readJson('spec/testdata/formats.json');
const numerics = readJson('spec/testdata/dsv4_numerics.json');

const hex = (v: number): string => `0x${v.toString(16)}`;

test('E4M3FN: all 256 codes decode as formats.json lists them', () => {
  const values: (number | null)[] = formats.e4m3fn.values;
  assert.equal(values.length, 256);
  for (let b = 0; b < 256; b++) {
    const want = values[b];
    if (want === null) {
      assert.ok(Number.isNaN(e4m3ToF32(b)) && Number.isNaN(E4M3_TO_F32[b]), `code ${hex(b)} is NaN`);
    } else {
      assert.ok(Object.is(e4m3ToF32(b), want), `code ${hex(b)}: ${e4m3ToF32(b)} vs ${want}`);
      assert.ok(Object.is(E4M3_TO_F32[b], want), `table ${hex(b)}`);
    }
  }
  // hand-derived from (−1)^s·2^(e−7)·(1+m/8), e=0: 2^-6·m/8
  assert.equal(e4m3ToF32(0x38), 1); // e=7, m=0
  assert.equal(e4m3ToF32(0x7e), 448); // e=15, m=6: 2^8·1.75
  assert.equal(e4m3ToF32(0x01), 2 ** -9); // smallest subnormal
  assert.equal(e4m3ToF32(0x08), 2 ** -6); // smallest normal
  assert.equal(e4m3ToF32(0xc0), -2); // sign, e=8, m=0
});

test('E4M3FN: encode∘decode is the identity on every code but NaN; rounding is nearest-even, saturating', () => {
  for (let b = 0; b < 256; b++) {
    if ((b & 0x7f) === 0x7f) continue;
    assert.equal(f32ToE4m3(e4m3ToF32(b)), b, `code ${hex(b)}`);
  }
  const cases: [number, number][] = [
    [1.0625, 0x38], // midway 1 | 1.125 → even mantissa 0
    [1.1875, 0x3a], // midway 1.125 | 1.25 → m=2
    [17, 0x58], // midway 16 | 18 → 16 (e=11, m=0)
    [2 ** -10, 0x00], // half the smallest subnormal → 0 (even)
    [1.5 * 2 ** -9, 0x02], // midway 2^-9 | 2^-8 → m=2
    [447, 0x7e], [464, 0x7e], [1000, 0x7e], [Infinity, 0x7e], [-1000, 0xfe], [-Infinity, 0xfe],
    [-0, 0x80], [0, 0x00], [NaN, 0x7f],
  ];
  for (const [x, want] of cases) assert.equal(f32ToE4m3(x), want, `f32ToE4m3(${x})`);
  const ex = numerics.e4m3_rounding_examples;
  ex.x.forEach((x: number, i: number) => assert.equal(E4M3_TO_F32[f32ToE4m3(x)], ex.y[i], `rounding example ${x}`));
});

/** Nearest code by search over every finite value; ties to the even code (the format definition). */
function nearestCode(x: number, table: Float32Array, codes: number[]): number {
  let best = codes[0];
  for (const c of codes) {
    const d = Math.abs(table[c] - x), db = Math.abs(table[best] - x);
    if (d < db || (d === db && (c & 1) === 0 && (best & 1) === 1)) best = c;
  }
  return best;
}

test('E4M3FN and E2M1 encoders equal a nearest-value search on 200,000 f32 inputs of every magnitude, midpoints ±1 ulp included', () => {
  const rand = rng(11);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (const [name, table, max, encode] of [['E4M3', E4M3_TO_F32, 448, f32ToE4m3], ['E2M1', E2M1_TO_F32, 6, f32ToE2m1]] as const) {
    const pos = [...table.keys()].filter((c) => c < table.length / 2 && Number.isFinite(table[c]) && table[c] <= max);
    const inputs: number[] = [];
    for (let i = 0; i < 100_000; i++) {
      // Random magnitudes from 2^-20 to 2^10, plus midpoints between neighbours and their f32 neighbours.
      f[0] = 2 ** (rand() * 30 - 20) * (1 + rand());
      inputs.push(f[0]);
      const c = pos[Math.floor(rand() * (pos.length - 1))];
      f[0] = (table[c] + table[c + 1]) / 2;
      const mid = u[0];
      for (const d of [-1, 0, 1]) { u[0] = mid + d; inputs.push(f[0]); }
    }
    for (const x of inputs) {
      const want = Math.abs(x) >= max ? pos.at(-1)! : nearestCode(Math.abs(x), table, pos);
      const sign = table.length / 2;
      assert.equal(encode(x), want, `${name} ${x}`);
      assert.equal(encode(-x), want | sign, `${name} ${-x}`);
    }
  }
});

test('E5M2: hand-derived codes, identity on all non-NaN codes, inf on overflow', () => {
  assert.equal(e5m2ToF32(0x3c), 1); // e=15, m=0
  assert.equal(e5m2ToF32(0x7b), 57344); // e=30, m=3: 2^15·1.75
  assert.equal(e5m2ToF32(0x01), 2 ** -16); // 2^-14·1/4
  assert.equal(e5m2ToF32(0x7c), Infinity);
  assert.equal(e5m2ToF32(0xfc), -Infinity);
  assert.ok(Number.isNaN(e5m2ToF32(0x7d)) && Number.isNaN(e5m2ToF32(0xff)));
  for (let b = 0; b < 256; b++) {
    if ((b & 0x7c) === 0x7c && (b & 3) !== 0) continue; // NaNs
    assert.equal(f32ToE5m2(e5m2ToF32(b)), b, `code ${hex(b)}`);
  }
  assert.equal(f32ToE5m2(61439), 0x7b); // below the midpoint 61440 of 57344 | 65536
  assert.equal(f32ToE5m2(61440), 0x7c); // the midpoint rounds to even: the infinity code
  assert.equal(f32ToE5m2(1.125), 0x3c); // midway 1 | 1.25 → 1
  assert.equal(f32ToE5m2(1.375), 0x3e); // midway 1.25 | 1.5 → 1.5 (m=2)
  assert.ok(Number.isNaN(e5m2ToF32(f32ToE5m2(NaN))));
});

test('E8M0: formats.json examples and 2^(b−127) for every byte', () => {
  for (const [k, v] of Object.entries(formats.e8m0.examples)) {
    const got = e8m0ToF32(Number(k));
    if (v === null) assert.ok(Number.isNaN(got), `byte ${k} is NaN`);
    else assert.equal(got, v, `byte ${k}`);
  }
  for (let b = 0; b < 255; b++) assert.equal(e8m0ToF32(b), 2 ** (b - 127));
  assert.equal(Math.fround(e8m0ToF32(0)), 2 ** -127, 'byte 0 is an exact f32 subnormal');
});

test('E2M1: the 16 codes of formats.json, identity, and nearest-even saturating encode', () => {
  const values: number[] = formats.e2m1.values;
  for (let c = 0; c < 16; c++) {
    assert.ok(Object.is(e2m1ToF32(c), values[c]), `code ${c}`);
    assert.ok(Object.is(E2M1_TO_F32[c], values[c]), `table ${c}`);
    assert.equal(f32ToE2m1(values[c]), c, `identity on code ${c}`);
  }
  const ex = numerics.e2m1_rounding_examples;
  ex.x.forEach((x: number, i: number) => assert.ok(Object.is(E2M1_TO_F32[f32ToE2m1(x)], ex.y[i]), `example ${x}`));
  const cases: [number, number][] = [
    [0.25, 0], // midway 0 | 0.5 → 0
    [0.75, 2], // midway 0.5 | 1 → 1 (even mantissa)
    [1.25, 2], [1.75, 4], [2.5, 4], [3.5, 6], [5, 6], // ties to even
    [5.01, 7], [7, 7], [1e9, 7], [Infinity, 7], [-7, 15], [-0.1, 8], [-0, 8],
  ];
  for (const [x, want] of cases) assert.equal(f32ToE2m1(x), want, `f32ToE2m1(${x})`);
});

test('f16: hand-derived values, edge cases and ties to even', () => {
  const dec: [number, number][] = [
    [0x3c00, 1], [0x7bff, 65504], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14],
    [0xc000, -2], [0x3555, 1365 / 4096], [0x7c00, Infinity], [0xfc00, -Infinity], [0x0000, 0],
  ];
  for (const [h, v] of dec) assert.equal(f16ToF32(h), v, `f16ToF32(${hex(h)})`);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.ok(Number.isNaN(f16ToF32(0x7e00)) && Number.isNaN(f16ToF32(0xfc01)));
  const enc: [number, number][] = [
    [1, 0x3c00], [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00],
    [Infinity, 0x7c00], [-0, 0x8000], [0.1, 0x2e66],
    [1 + 2 ** -11, 0x3c00], // midway 1 | 1+2^-10 → even (0x3c00)
    [1 + 3 * 2 ** -11, 0x3c02], // midway 0x3c01 | 0x3c02 → even 0x3c02
    [2 ** -25, 0x0000], // half the smallest subnormal → 0
    [3 * 2 ** -25, 0x0002], // midway subnormals 1 | 2 → 2
    [Math.fround(2 ** -25 * (1 + 2 ** -20)), 0x0001], // just above the half → 1
    [2 ** -14 - 2 ** -25, 0x0400], // midway 0x03ff | 0x0400 → 0x0400 (even)
    [1e-10, 0x0000],
  ];
  for (const [x, h] of enc) assert.equal(f32ToF16(x), h, `f32ToF16(${x})`);
  const nan = f32ToF16(NaN);
  assert.ok((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0, 'NaN stays NaN');
});

test('f16: encode∘decode identity on all 65536 codes; table matches', () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16ToF32(h);
    if (Number.isNaN(v)) {
      assert.ok(Number.isNaN(F16_TO_F32[h]));
      continue;
    }
    assert.ok(Object.is(F16_TO_F32[h], v), `table ${hex(h)}`);
    assert.equal(f32ToF16(v), h, `identity ${hex(h)}`);
  }
});

test('bf16: hand-derived values, ties to even, overflow, NaN, identity on all codes', () => {
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc0a0), -5); // sign, e=129, m=0x20: −4·1.25
  assert.equal(bf16ToF32(0x0001), 2 ** -133); // smallest subnormal
  assert.equal(bf16ToF32(0x7f7f), 255 * 2 ** 120); // largest finite: 2^127·(1 + 127/128)
  assert.ok(Object.is(bf16ToF32(0x8000), -0));
  const enc: [number, number][] = [
    [1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [1 + 2 ** -8 + 2 ** -20, 0x3f81],
    [3.4028234663852886e38, 0x7f80], [-Infinity, 0xff80], [-0, 0x8000], [2 ** -133, 0x0001],
  ];
  for (const [x, b] of enc) assert.equal(f32ToBf16(x), b, `f32ToBf16(${x})`);
  const nan = f32ToBf16(NaN);
  assert.ok((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0, 'NaN stays NaN');
  for (let b = 0; b < 65536; b++) {
    const v = bf16ToF32(b);
    if (!Number.isNaN(v)) assert.equal(f32ToBf16(v), b, `identity ${hex(b)}`);
  }
});
