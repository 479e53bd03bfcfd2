/**
 * The quantised CPU kernels (wasm/quant_*.ts, wasm/act_quant.ts) against their TypeScript twins,
 * and the twins against an independent float64 reference: dequantize(weights) · dequantized
 * activations. Single thread: the test instantiates each kernel build this runtime runs (baseline,
 * relaxed SIMD) over its own shared memory, with and without a per-thread scratch block (the FP8
 * and FP4 matvecs stage the activations there when it is big enough).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACT_QUANTIZERS, QUANT_KERNELS } from '../../src/kernels/cpu/kernels-quant.js';
import type { ActType, MatrixKernel } from '../../src/kernels/cpu/registry.js';
import { type KernelVariant, kernelImports, kernelModule, relaxedSupported } from '../../src/kernels/cpu/wasm-module.js';
import { dequantize, quantize } from '../../src/tensor/dequantize.js';
import { formatName, rowBytes } from '../../src/tensor/dtype.js';
import { f16ToF32 } from '../../src/tensor/float.js';
import { dequantizeRow, quantizeRow } from '../../src/tensor/quant-gguf.js';
import { rng } from '../support/rng.js';

// ---- a single-thread instance over a shared memory, with a bump allocator ----------------------------

const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
const VARIANTS: KernelVariant[] = relaxedSupported() ? ['baseline', 'relaxed'] : ['baseline'];
const builds = new Map(VARIANTS.map((v) => [v, new WebAssembly.Instance(kernelModule(v), kernelImports(memory)).exports as Record<string, any>]));
let wasm = builds.get('baseline')!;
/** The kernels' scratch block (as the pool gives each thread), below everything reset() hands out. */
const SCRATCH_BYTES = 256 * 1024;
const scratchAt = Math.ceil((wasm.heap_base() as number) / 64) * 64;
let top = 0;

function reset(): void { top = scratchAt + SCRATCH_BYTES; }
/** Selects the build the next kernel calls go to, with or without its scratch block. */
function use(variant: KernelVariant, scratch: boolean): void {
  wasm = builds.get(variant)!;
  wasm.set_scratch(scratch ? scratchAt : 0, scratch ? SCRATCH_BYTES : 0);
}
/** 64-byte aligned block of `bytes`, plus a guard; grows the memory as needed. */
function alloc(bytes: number): number {
  const p = top;
  top += Math.ceil((bytes + 64) / 64) * 64;
  const need = Math.ceil(top / 65536) - memory.buffer.byteLength / 65536;
  if (need > 0) memory.grow(need);
  return p;
}
const u8 = (p: number, n: number) => new Uint8Array(memory.buffer, p, n);
const f32 = (p: number, n: number) => new Float32Array(memory.buffer, p, n);
function put(bytes: Uint8Array): number { const p = alloc(bytes.length); u8(p, bytes.length).set(bytes); return p; }

// ---- seeded data --------------------------------------------------------------------------------------


/** Gaussian-ish values with a spread of magnitudes per 32-group, a few exact zeros and outliers. */
function values(n: number, seed: number): Float32Array {
  const u = rng(seed), v = new Float32Array(n);
  let groupScale = 1;
  for (let i = 0; i < n; i++) {
    if (i % 32 === 0) groupScale = 2 ** (Math.floor(u() * 8) - 4);
    const g = (u() + u() + u() + u() - 2) * groupScale;
    v[i] = u() < 0.03 ? 0 : u() < 0.01 ? 12 * g : g;
  }
  return v;
}

// ---- activation quantizers ----------------------------------------------------------------------------

test('activation quantizers: wasm == twin == the llama.cpp reference encoder, byte for byte', () => {
  for (const v of VARIANTS) for (const q of ACT_QUANTIZERS) {
    use(v, true);
    reset();
    const k = q.blockElems * 5;
    const x = values(k, 11);
    x.fill(0, 0, q.blockElems); // an all-zero block
    for (let j = q.blockElems; j < 2 * q.blockElems; j++) x[j] = -x[j] - (j === q.blockElems + 3 ? 40 : 0); // negative max
    const xp = alloc(4 * k);
    f32(xp, k).set(x);
    const bytes = (k / q.blockElems) * q.blockBytes;
    const a = alloc(bytes), b = alloc(bytes);
    u8(a, bytes).fill(0xAA);
    u8(b, bytes).fill(0x55);
    wasm[q.wasm](xp, a, k);
    q.twin(memory.buffer, xp, b, k);
    assert.deepEqual(u8(a, bytes), u8(b, bytes), `${q.act}: wasm vs twin`);
    const ref = new Uint8Array(bytes);
    quantizeRow(q.act, x, ref, k); // the tensor layer's encoder of the same llama.cpp block type
    assert.deepEqual(u8(a, bytes), ref, `${q.act}: wasm vs quantizeRow`);
  }
});

test('activation quantizers: rounding, hand-computed', () => {
  // amax 127 → d = 1: q8_0/q8_1 round halves away from zero, q8_k (iscale = −127/max = −1) to even.
  const x = new Float32Array(256);
  x.set([127, 2.5, -2.5, 3.5, 0.5, -0.5, 1.49, -126.5]);
  reset();
  const xp = alloc(1024);
  f32(xp, 256).set(x);
  const out = alloc(292);
  wasm.quantize_q8_0(xp, out, 32);
  assert.deepEqual([...new Int8Array(memory.buffer, out + 2, 8)], [127, 3, -3, 4, 1, -1, 1, -127]);
  assert.equal(new Uint16Array(memory.buffer, out, 1)[0], 0x3c00); // f16 1.0
  wasm.quantize_q8_1(xp, out, 32);
  assert.equal(f16ToF32(new Uint16Array(memory.buffer, out + 2, 1)[0]), 127 + 3 - 3 + 4 + 1 - 1 + 1 - 127);
  wasm.quantize_q8_k(xp, out, 256);
  assert.equal(new Float32Array(memory.buffer, out, 1)[0], -1);
  assert.deepEqual([...new Int8Array(memory.buffer, out + 4, 8)], [-127, -2, 2, -4, 0, 0, -1, 126]);
  assert.equal(new Int16Array(memory.buffer, out + 260, 1)[0], -127 - 2 + 2 - 4 - 1 + 126);
});

// ---- matrix kernels -----------------------------------------------------------------------------------

/** Odd shapes: several rows (not a multiple of 4), k a few blocks. */
function shape(kern: MatrixKernel): { rows: number; k: number } {
  const d = kern.format.dtype;
  // two row tiles of 128 (4.2 of 32); 2.6 column tiles of 128 (10.3 of 32), the last not a multiple of 16
  if (d === 'f8_e4m3') return { rows: 133, k: 330 };
  if (d.endsWith('_k')) return { rows: 13, k: 768 };
  return { rows: 13, k: 96 };
}

const ACT_BYTES: Record<ActType, (k: number) => number> = {
  f32: (k) => 4 * k, q8_0: (k) => (k / 32) * 34, q8_1: (k) => (k / 32) * 36, q8_k: (k) => (k / 256) * 292,
};

interface Setup {
  w: number; scale: number; x: number; k: number; rows: number; n: number;
  /** Dequantized weights and activations, for the float64 reference. */
  wd: Float32Array; xd: Float32Array[];
  /** Per row and block, |min| of q4_1/q5_1 (their q8_1 `s` term is f16-rounded), else empty. */
  mins: number[][];
}

function setup(kern: MatrixKernel, n: number, seed: number, { rows, k } = shape(kern)): Setup {
  reset();
  const q = quantize(kern.format, values(rows * k, seed), rows, k);
  const w = put(q.data), scale = q.scale ? put(q.scale) : 0;
  const wd = dequantize(kern.format, q.data, rows, k, q.scale);
  const xs = ACT_BYTES[kern.act](k);
  const x = alloc(n * xs), xf = alloc(4 * k), xd: Float32Array[] = [];
  for (let t = 0; t < n; t++) {
    const v = values(k, seed * 31 + t);
    f32(xf, k).set(v);
    if (kern.act === 'f32') {
      f32(x + t * xs, k).set(v);
      xd.push(v);
    } else {
      wasm[`quantize_${kern.act}`](xf, x + t * xs, k);
      const d = new Float32Array(k);
      dequantizeRow(kern.act, u8(x + t * xs, xs), d, k);
      xd.push(d);
    }
  }
  const mins: number[][] = [];
  if (kern.format.dtype === 'q4_1' || kern.format.dtype === 'q5_1') {
    const bb = kern.format.dtype === 'q4_1' ? 20 : 24;
    for (let r = 0; r < rows; r++) {
      const m: number[] = [];
      for (let b = 0; b < k / 32; b++) m.push(Math.abs(f16ToF32(q.data[r * (k / 32) * bb + b * bb + 2] | (q.data[r * (k / 32) * bb + b * bb + 3] << 8))));
      mins.push(m);
    }
  }
  return { w, scale, x, k, rows, n, wd, xd, mins };
}

/**
 * Reference y[r] for token t in float64 and the tolerance of a twin against it: f32 rounding of
 * Σ|w·x|, plus for q4_1/q5_1 the f16 rounding (2^−11) of the q8_1 sum s that meets the block min.
 */
function reference(s: Setup, t: number, r: number): { y: number; bound: number; tol: number } {
  let y = 0, bound = 0, sTerm = 0;
  for (let j = 0; j < s.k; j++) {
    const p = s.wd[r * s.k + j] * s.xd[t][j];
    y += p;
    bound += Math.abs(p);
    if (s.mins.length) sTerm += s.mins[r][j >> 5] * Math.abs(s.xd[t][j]);
  }
  return { y, bound, tol: 1e-5 * bound + 2 ** -10 * sTerm + 1e-30 };
}

/** A kernel's name in messages: its format, plus the variant for opt-in kernels. */
const label = (k: MatrixKernel): string => formatName(k.format) + (k.variant ? ` (${k.variant})` : '');

const SENTINEL = 0x7fc0dead;
function fillSentinel(p: number, n: number): void { new Uint32Array(memory.buffer, p, n).fill(SENTINEL); }

const BUILDS = VARIANTS.flatMap((v) => [true, false].map((scratch) => ({ v, scratch, label: `${v}${scratch ? '' : ', no scratch'}` })));

for (const kern of QUANT_KERNELS) for (const b of BUILDS) {
  const name = `${label(kern)} [${b.label}]`;

  test(`${name}: matvec wasm ≈ twin ≈ float64 reference; row ranges write only their rows`, () => {
    use(b.v, b.scratch);
    const s = setup(kern, 1, 101);
    const y = alloc(4 * s.rows), yt = alloc(4 * s.rows);
    wasm[kern.wasm.matvec](s.w, s.scale, s.x, y, s.k, 0, s.rows);
    kern.twin.matvec(memory.buffer, s.w, s.scale, s.x, yt, s.k, 0, s.rows);
    const full = Float32Array.from(f32(y, s.rows));
    for (let r = 0; r < s.rows; r++) {
      const ref = reference(s, 0, r);
      const tw = f32(yt, s.rows)[r];
      assert.ok(Math.abs(tw - ref.y) <= ref.tol, `${name} row ${r}: twin ${tw} vs reference ${ref.y}`);
      assert.ok(Math.abs(full[r] - tw) <= 2e-6 * ref.bound + 1e-30, `${name} row ${r}: wasm ${full[r]} vs twin ${tw}`);
    }
    for (const [r0, r1] of [[2, 9], [5, 6], [0, 4], [4, s.rows], [1, s.rows - 1]]) {
      fillSentinel(y, s.rows);
      wasm[kern.wasm.matvec](s.w, s.scale, s.x, y, s.k, r0, r1);
      const bits = new Uint32Array(memory.buffer, y, s.rows);
      for (let r = 0; r < s.rows; r++) {
        if (r < r0 || r >= r1) assert.equal(bits[r], SENTINEL, `${name} [${r0},${r1}): row ${r} written`);
        else assert.equal(f32(y, s.rows)[r], full[r], `${name} [${r0},${r1}): row ${r} differs from the full range`);
      }
    }
  });

  test(`${name}: matmul wasm ≈ twin over tokens; only [row0,row1) of each token written`, () => {
    use(b.v, b.scratch);
    // 5: an 8-token tile with 5 tokens stored; 12: a full 8-token tile, then a 4-token one.
    for (const n of [5, 12]) {
      const s = setup(kern, n, 202);
      const ldy = s.rows + 5;
      const y = alloc(4 * n * ldy), yt = alloc(4 * n * ldy);
      for (const [r0, r1] of [[0, s.rows], [1, s.rows - 2]]) {
        fillSentinel(y, n * ldy);
        fillSentinel(yt, n * ldy);
        wasm[kern.wasm.matmul](s.w, s.scale, s.x, y, s.k, n, ldy, r0, r1);
        kern.twin.matmul(memory.buffer, s.w, s.scale, s.x, yt, s.k, n, ldy, r0, r1);
        const bits = new Uint32Array(memory.buffer, y, n * ldy);
        for (let t = 0; t < n; t++) {
          for (let r = 0; r < ldy; r++) {
            const i = t * ldy + r;
            if (r < r0 || r >= r1) { assert.equal(bits[i], SENTINEL, `${name} matmul: token ${t} row ${r} written`); continue; }
            const ref = reference(s, t, r);
            const a = f32(y, n * ldy)[i], b = f32(yt, n * ldy)[i];
            assert.ok(Math.abs(b - ref.y) <= ref.tol, `${name} matmul token ${t} row ${r}: twin ${b} vs reference ${ref.y}`);
            assert.ok(Math.abs(a - b) <= 2e-6 * ref.bound + 1e-30, `${name} matmul token ${t} row ${r}: wasm ${a} vs twin ${b}`);
          }
        }
      }
    }
  });
}

test('FP8 E8M0 32×32 blocks: more shapes (45×70, 64×128), wasm ≈ twin ≈ float64 reference', () => {
  const kern = QUANT_KERNELS.find((q) => formatName(q.format) === 'f8_e4m3+e8m0/32x32')!;
  for (const b of BUILDS) for (const [rows, k] of [[45, 70], [64, 128], [5, 32], [33, 16]]) {
    use(b.v, b.scratch);
    const name = `${label(kern)} [${rows}, ${k}] [${b.label}]`;
    for (const n of [1, 6]) {
      const s = setup(kern, n, 404 + rows, { rows, k });
      const y = alloc(4 * n * rows), yt = alloc(4 * n * rows);
      if (n === 1) {
        wasm[kern.wasm.matvec](s.w, s.scale, s.x, y, k, 0, rows);
        kern.twin.matvec(memory.buffer, s.w, s.scale, s.x, yt, k, 0, rows);
      } else {
        wasm[kern.wasm.matmul](s.w, s.scale, s.x, y, k, n, rows, 0, rows);
        kern.twin.matmul(memory.buffer, s.w, s.scale, s.x, yt, k, n, rows, 0, rows);
      }
      for (let t = 0; t < n; t++) for (let r = 0; r < rows; r++) {
        const ref = reference(s, t, r), a = f32(y, n * rows)[t * rows + r], tw = f32(yt, n * rows)[t * rows + r];
        assert.ok(Math.abs(tw - ref.y) <= ref.tol, `${name} n=${n} token ${t} row ${r}: twin ${tw} vs reference ${ref.y}`);
        assert.ok(Math.abs(a - tw) <= 2e-6 * ref.bound + 1e-30, `${name} n=${n} token ${t} row ${r}: wasm ${a} vs twin ${tw}`);
      }
    }
  }
});

test('FP8 E8M0 32×32 blocks: one scale per block, hand-computed (64 × 128, every code 1.0)', () => {
  // Block (br, bc) has scale byte 120 + 4·br + bc, so y[r] = Σ_bc 2^(S(br, bc) − 127) · Σ_{j in bc} x_j.
  // x_j = 1 + (j >> 5): each block column sums to 32 · (1 + bc). Tokens t scale x by 2^t.
  const rows = 64, k = 128, n = 5;
  const kern = QUANT_KERNELS.find((q) => formatName(q.format) === 'f8_e4m3+e8m0/32x32')!;
  const want = (t: number, r: number): number => {
    let y = 0;
    for (let bc = 0; bc < 4; bc++) y += 2 ** (120 + 4 * (r >> 5) + bc - 127) * 32 * (1 + bc) * 2 ** t;
    return y;
  };
  const run = (f: (w: number, sc: number, xp: number, y: number) => void): Float32Array => {
    reset();
    const w = put(new Uint8Array(rows * k).fill(0x38));
    const sc = put(Uint8Array.from({ length: 8 }, (_, i) => 120 + i));
    const xp = alloc(4 * n * k);
    for (let t = 0; t < n; t++) f32(xp + 4 * t * k, k).set(Float32Array.from({ length: k }, (_, j) => (1 + (j >> 5)) * 2 ** t));
    const y = alloc(4 * n * rows);
    f(w, sc, xp, y);
    return Float32Array.from(f32(y, n * rows));
  };
  const check = (got: Float32Array, tokens: number, what: string): void => {
    for (let t = 0; t < tokens; t++) for (let r = 0; r < rows; r++) assert.equal(got[t * rows + r], want(t, r), `${what} token ${t} row ${r}`);
  };
  check(run((w, sc, xp, y) => kern.twin.matvec(memory.buffer, w, sc, xp, y, k, 0, rows)), 1, 'twin matvec');
  check(run((w, sc, xp, y) => kern.twin.matmul(memory.buffer, w, sc, xp, y, k, n, rows, 0, rows)), n, 'twin matmul');
  for (const b of BUILDS) {
    use(b.v, b.scratch);
    check(run((w, sc, xp, y) => wasm[kern.wasm.matvec](w, sc, xp, y, k, 0, rows)), 1, `wasm matvec [${b.label}]`);
    check(run((w, sc, xp, y) => wasm[kern.wasm.matmul](w, sc, xp, y, k, n, rows, 0, rows)), n, `wasm matmul [${b.label}]`);
  }
});

test('kernels read nothing past the weights or the activations (placed at the end of memory)', () => {
  for (const kern of QUANT_KERNELS) for (const v of VARIANTS) {
    use(v, true);
    const name = `${label(kern)} [${v}]`;
    const n = 5; // from four tokens on, the q4_0 and q8_0 matmuls stage them in panels
    const s = setup(kern, n, 303);
    const y = alloc(4 * n * s.rows);
    const ref = new Float32Array(n * s.rows);
    wasm[kern.wasm.matmul](s.w, s.scale, s.x, y, s.k, n, s.rows, 0, s.rows);
    ref.set(f32(y, n * s.rows));
    // Copy a tensor so that it ends exactly where the memory does: an over-read traps.
    const atEnd = (p: number, bytes: number): number => {
      memory.grow(Math.ceil((bytes + 65536) / 65536));
      const q = memory.buffer.byteLength - bytes;
      u8(q, bytes).set(u8(p, bytes));
      return q;
    };
    const wBytes = s.rows * rowBytes(kern.format.dtype, s.k), xBytes = n * ACT_BYTES[kern.act](s.k);
    const wEnd = atEnd(s.w, wBytes);
    wasm[kern.wasm.matvec](wEnd, s.scale, s.x, y, s.k, 0, s.rows);
    wasm[kern.wasm.matmul](wEnd, s.scale, s.x, y, s.k, n, s.rows, 0, s.rows);
    assert.deepEqual(f32(y, n * s.rows), ref, `${name}: weights at the end of memory`);
    const xEnd = atEnd(s.x, xBytes);
    wasm[kern.wasm.matvec](s.w, s.scale, xEnd + (n - 1) * ACT_BYTES[kern.act](s.k), y + 4 * s.rows, s.k, 0, s.rows);
    wasm[kern.wasm.matmul](s.w, s.scale, xEnd, y, s.k, n, s.rows, 0, s.rows);
    assert.deepEqual(f32(y, n * s.rows), ref, `${name}: activations at the end of memory`);
    if (s.scale) {
      const fs = kern.format.scale!;
      const sBytes = Math.ceil(s.rows / fs.rows) * Math.ceil(s.k / fs.cols) * (fs.dtype === 'f32' ? 4 : 1);
      const sEnd = atEnd(s.scale, sBytes);
      wasm[kern.wasm.matmul](s.w, sEnd, s.x, y, s.k, n, s.rows, 0, s.rows);
      assert.deepEqual(f32(y, n * s.rows), ref, `${name}: scales at the end of memory`);
    }
  }
});

const EXPECTED = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'mxfp4', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k',
  'f8_e4m3+e8m0/128x128', 'f8_e4m3+e8m0/32x32', 'f8_e4m3+f32/128x128', 'fp4_e2m1+e8m0/1x32', 'fp4_e2m1+e8m0/1x32 (int8-act)'];

test('every quantised weight format has its kernels exported, in every build', () => {
  for (const v of VARIANTS) {
    use(v, true);
    for (const k of QUANT_KERNELS) assert.equal(typeof wasm[k.wasm.matvec], 'function', `${v}: ${k.wasm.matvec} missing`);
  }
  const names = QUANT_KERNELS.map(label).sort();
  assert.deepEqual(names, [...EXPECTED].sort());
  for (const k of QUANT_KERNELS) {
    assert.equal(typeof wasm[k.wasm.matvec], 'function', `${label(k)}: ${k.wasm.matvec} missing`);
    assert.equal(typeof wasm[k.wasm.matmul], 'function', `${label(k)}: ${k.wasm.matmul} missing`);
  }
});

test('largest codes against ±127 activations (the i16 bounds of the byte dots), hand-computed', () => {
  // Two rows each: every weight at its largest code, then at its smallest, against activations of −127
  // with d = 1 (f16 0x3C00 / f32 1). Expected y = Σ w·x exactly (all values are exact in f32).
  // rows(hi): one block of the row; act(): the whole activation row.
  const cases: { kern: string; k: number; rows: (hi: boolean) => Uint8Array; act: () => Uint8Array; y: number[] }[] = [
    {
      kern: 'q4_0', k: 64, // w = q − 8: 7 or −8
      rows: (hi) => { const b = new Uint8Array(18); b.set([0x00, 0x3c]); b.fill(hi ? 0xff : 0, 2); return b; },
      act: () => { const b = new Uint8Array(68); for (const o of [0, 34]) { b.set([0x00, 0x3c], o); b.fill(0x81, o + 2, o + 34); } return b; },
      y: [7 * -127 * 64, -8 * -127 * 64],
    },
    {
      kern: 'q4_k', k: 256, // d = 1, dmin = 0, all eight scales 63 (hi) or 1 (lo), codes 15 or 0
      rows: (hi) => {
        const b = new Uint8Array(144);
        b.set([0x00, 0x3c, 0, 0]);
        b.fill(hi ? 0xff : 0x01, 4, 8); // sc0..3 (+ the top bits of sc4..7)
        b.fill(0, 8, 12); // m0..3
        b.fill(hi ? 0x0f : 0x01, 12, 16); // low bits of sc4..7, m4..7 = 0
        b.fill(hi ? 0xff : 0, 16);
        return b;
      },
      act: actK,
      y: [63 * 15 * -127 * 256, 0],
    },
    {
      kern: 'q6_k', k: 256, // w = q − 32: 31 or −32; scales 127 or −128
      rows: (hi) => {
        const b = new Uint8Array(210);
        b.fill(hi ? 0xff : 0, 0, 192);
        b.fill(hi ? 127 : 0x80, 192, 208);
        b.set([0x00, 0x3c], 208);
        return b;
      },
      act: actK,
      y: [127 * 31 * -127 * 256, -128 * -32 * -127 * 256],
    },
  ];
  function actK(): Uint8Array {
    const b = new Uint8Array(292), v = new DataView(b.buffer);
    v.setFloat32(0, 1, true);
    b.fill(0x81, 4, 260);
    for (let i = 0; i < 16; i++) v.setInt16(260 + 2 * i, -127 * 16, true);
    return b;
  }
  for (const v of VARIANTS) {
    for (const c of cases) {
      use(v, true);
      reset();
      const kern = QUANT_KERNELS.find((q) => q.format.dtype === c.kern && !q.variant)!;
      const nb = c.k / (c.kern === 'q4_0' ? 32 : 256);
      const rowOf = (hi: boolean) => { const one = c.rows(hi), r = new Uint8Array(one.length * nb); for (let i = 0; i < nb; i++) r.set(one, i * one.length); return r; };
      const w0 = rowOf(true), w1 = rowOf(false), wb = new Uint8Array(w0.length * 2);
      wb.set(w0); wb.set(w1, w0.length);
      const w = put(wb), xp = put(c.act()), y = alloc(8);
      wasm[kern.wasm.matvec](w, 0, xp, y, c.k, 0, 2);
      assert.deepEqual([...f32(y, 2)], c.y, `${c.kern} [${v}]`);
    }
  }
});

test('q4_0 and q8_0 matmul tiles: extreme codes against ±127/−128 activations, 12 tokens × 3 rows, hand-computed', () => {
  // The matmul tiles (4 rows × 8 tokens, then 4 rows × 4 tokens) add a block's byte dots up in i16
  // before widening: all-extreme codes reach those sums' bounds. Row 0: the largest weight
  // everywhere, row 1 the smallest, row 2 the largest again; every activation of token t is v[t]
  // with d = 1. Expected y = w · v · k, exact in f32.
  const k = 64, v = [-127, 127, -128, 1, -127, -128, 127, -128, -128, 127, 1, -127];
  const cases = [
    { kern: 'q4_0', block: (hi: boolean) => { const b = new Uint8Array(18); b.set([0x00, 0x3c]); b.fill(hi ? 0xff : 0, 2); return b; }, hi: 7, lo: -8 },
    { kern: 'q8_0', block: (hi: boolean) => { const b = new Uint8Array(34); b.set([0x00, 0x3c]); b.fill(hi ? 0x7f : 0x80, 2); return b; }, hi: 127, lo: -128 },
  ];
  for (const variant of VARIANTS) for (const scratch of [true, false]) for (const c of cases) {
    use(variant, scratch);
    reset();
    const kern = QUANT_KERNELS.find((q) => q.format.dtype === c.kern && !q.variant)!;
    const bb = c.block(true).length, nb = k / 32, wb = new Uint8Array(3 * nb * bb);
    for (let r = 0; r < 3; r++) for (let i = 0; i < nb; i++) wb.set(c.block(r !== 1), (r * nb + i) * bb);
    const xb = new Uint8Array(v.length * nb * 34);
    for (let t = 0; t < v.length; t++) for (let i = 0; i < nb; i++) {
      const o = (t * nb + i) * 34;
      xb.set([0x00, 0x3c], o);
      xb.fill(v[t] & 0xff, o + 2, o + 34);
    }
    const w = put(wb), xp = put(xb), y = alloc(4 * 3 * v.length);
    wasm[kern.wasm.matmul](w, 0, xp, y, k, v.length, 3, 0, 3);
    const want = v.flatMap((x) => [c.hi * x * k, c.lo * x * k, c.hi * x * k]);
    assert.deepEqual([...f32(y, 3 * v.length)], want, `${c.kern} [${variant}${scratch ? '' : ', no scratch'}]`);
  }
});

test('Q4_K, Q5_K and Q6_K matmul panels: extreme codes and scales against ±127/−128 activations, 12 tokens × 3 rows, hand-computed', () => {
  // The panels hold code × sub-block scale in i16 (Q6_K: (q − 32) · sc, up to 32 · 128) or, in the
  // relaxed Q4_K byte tiles, add eight byte dots of codes 0..15 in i16 before widening: all-extreme
  // blocks reach those bounds. k = 256, d = dmin = 1; every activation of token t is v[t] with
  // d_x = 1, so y = 256 · (element value) · v[t], exact in f32.
  const v = [-127, 127, -128, 1, -127, -128, 127, -128, -128, 127, 1, -127];
  const kBlock = (bytes: number, at: number[], fill: number, from: number) => {
    const b = new Uint8Array(bytes).fill(fill, from);
    b.set(at);
    return b;
  };
  const cases = [
    // Q4_K/Q5_K: scales and mins bytes all 0xFF → sc = m = 63; codes 15 (Q5_K 31) or 0: 63·q − 63.
    { kern: 'q4_k', block: (hi: boolean) => kBlock(144, [0x00, 0x3c, 0x00, 0x3c, ...new Array(12).fill(0xff)], hi ? 0xff : 0, 16), hi: 63 * 15 - 63, lo: -63 },
    { kern: 'q5_k', block: (hi: boolean) => kBlock(176, [0x00, 0x3c, 0x00, 0x3c, ...new Array(12).fill(0xff)], hi ? 0xff : 0, 16), hi: 63 * 31 - 63, lo: -63 },
    // Q6_K: codes 63 with scales 127 → 31 · 127; codes 0 with scales −128 → −32 · −128.
    {
      kern: 'q6_k',
      block: (hi: boolean) => {
        const b = new Uint8Array(210).fill(hi ? 0xff : 0, 0, 192);
        b.fill(hi ? 127 : 0x80, 192, 208);
        b.set([0x00, 0x3c], 208);
        return b;
      },
      hi: 31 * 127, lo: 32 * 128,
    },
  ];
  const k = 256;
  const xb = new Uint8Array(v.length * 292);
  v.forEach((x, t) => {
    const dv = new DataView(xb.buffer, t * 292, 292);
    dv.setFloat32(0, 1, true);
    for (let i = 0; i < 256; i++) dv.setInt8(4 + i, x);
    for (let i = 0; i < 16; i++) dv.setInt16(260 + 2 * i, 16 * x, true);
  });
  for (const variant of VARIANTS) for (const scratch of [true, false]) for (const c of cases) {
    use(variant, scratch);
    reset();
    const kern = QUANT_KERNELS.find((q) => q.format.dtype === c.kern && !q.variant)!;
    const rowsBytes = [c.block(true), c.block(false), c.block(true)];
    const wb = new Uint8Array(3 * rowsBytes[0].length);
    rowsBytes.forEach((r, i) => wb.set(r, i * r.length));
    const w = put(wb), xp = put(xb), y = alloc(4 * 3 * v.length);
    wasm[kern.wasm.matmul](w, 0, xp, y, k, v.length, 3, 0, 3);
    const want = v.flatMap((x) => [c.hi * x * k, c.lo * x * k, c.hi * x * k]);
    assert.deepEqual([...f32(y, 3 * v.length)], want, `${c.kern} [${variant}${scratch ? '' : ', no scratch'}]`);
  }
});

test('FP4 int8-act: largest codes against −127 activations (the i16 bounds of its byte dots), hand-computed', () => {
  // k = 64, two groups. Row 0: every code 0x7 (6.0), scales 2^0; row 1: every code 0xF (−6.0), scales
  // 2^0 then 2^1. Activations: q8_0 blocks with d = 1 (f16 0x3C00), every quant −127.
  const kern = QUANT_KERNELS.find((q) => q.format.dtype === 'fp4_e2m1' && q.variant === 'int8-act')!;
  assert.equal(kern.act, 'q8_0');
  for (const v of VARIANTS) {
    use(v, true);
    reset();
    const wb = new Uint8Array(64);
    wb.fill(0x77, 0, 32);
    wb.fill(0xff, 32);
    const xb = new Uint8Array(68);
    for (const o of [0, 34]) { xb.set([0x00, 0x3c], o); xb.fill(0x81, o + 2, o + 34); }
    const w = put(wb), sc = put(new Uint8Array([127, 127, 127, 128])), xp = put(xb), y = alloc(8);
    wasm[kern.wasm.matvec](w, sc, xp, y, 64, 0, 2);
    assert.deepEqual([...f32(y, 2)], [6 * -127 * 64, -6 * -127 * 32 * (1 + 2)], `[${v}]`);
  }
});

test('CpuBackend uses the int8-act variants only when asked (fastActivations)', async () => {
  const { CpuBackend } = await import('../../src/kernels/cpu/cpu-backend.js');
  const { FP4_E8M0_32 } = await import('../../src/tensor/dtype.js');
  for (const fast of [false, true]) {
    const be = await CpuBackend.create({ threads: 1, fastActivations: fast });
    try {
      const w = be.allocWeight(FP4_E8M0_32, [4, 64]);
      assert.equal(be.kernelFor(w).variant, fast ? 'int8-act' : undefined);
      assert.equal(be.kernelFor(w).act, fast ? 'q8_0' : 'f32');
      const q4 = be.allocWeight({ dtype: 'q4_0' }, [4, 64]);
      assert.equal(be.kernelFor(q4).variant, undefined, 'a format without a variant keeps its kernel');
    } finally {
      await be.close();
    }
  }
});
