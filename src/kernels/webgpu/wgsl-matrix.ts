/**
 * Matrix-vector and matrix-matrix products for every weight format, decoded in WGSL.
 *
 * One kernel shape for all formats: a workgroup computes one weight row (or, for short rows,
 * several: `lanes` invocations each) against a tile of up to TILE tokens. A row's invocations
 * stride over its 32-element chunks; each decodes its chunk once into private memory and dots it
 * with every token of the tile, then the partial dots are summed in workgroup memory. Activations are plain f32 (no q8 quantisation, unlike the
 * CPU kernels): y[t, r] = Σ_j dequant(W)[r, j] · x[t, j].
 *
 * The per-dtype decoders are ports of src/tensor/quant-gguf.ts (GGUF layouts, ggml-common.h) and
 * of the DeepSeek FP8 / FP4 element codecs in src/tensor/float.ts. Blocks of 18, 34, 210 … bytes
 * are not word aligned, so multi-byte fields are read through the byte-granular accessors.
 */
import { type DType, dtypeInfo, formatName, rowBytes, type WeightFormat } from '../../tensor/dtype.js';
import type { KernelSource } from './kernel.js';

export interface MatrixPlan {
  /** Logical buffers: w (weights), s (scales; only for scaled formats), x (f32 activations [n, k]), y (f32 [n, rows]). */
  readonly kernel: KernelSource;
  readonly params: Record<string, number>;
  readonly workgroups: number;
}

const WG = 64;
/** Tokens per workgroup in a matmul: each decoded chunk serves all of them. */
const TILE = 8;

/** Element-level decoders: WGSL body of `fn B_elem(rowByte, j)` with `b` = rowByte, for buffer B. */
const ELEM: Partial<Record<DType, (B: string) => string>> = {
  f32: (B) => `return ${B}_f32((b >> 2u) + j);`,
  f16: (B) => `return ${B}_f16((b >> 1u) + j);`,
  bf16: (B) => `return ${B}_bf16((b >> 1u) + j);`,
  // 32-element blocks: byte i of the quants holds element i (low nibble) and i+16 (high nibble).
  q4_0: (B) => `let o = b + 18u * (j >> 5u); let i = j & 31u;
  let q = (${B}_byte(o + 2u + (i & 15u)) >> ((i >> 4u) * 4u)) & 15u;
  return (f32(q) - 8.0) * ${B}_h16(o);`,
  q4_1: (B) => `let o = b + 20u * (j >> 5u); let i = j & 31u;
  let q = (${B}_byte(o + 4u + (i & 15u)) >> ((i >> 4u) * 4u)) & 15u;
  return f32(q) * ${B}_h16(o) + ${B}_h16(o + 2u);`,
  q5_0: (B) => `let o = b + 22u * (j >> 5u); let i = j & 31u;
  let lo = (${B}_byte(o + 6u + (i & 15u)) >> ((i >> 4u) * 4u)) & 15u;
  let hi = (${B}_u32at(o + 2u) >> i) & 1u;
  return (f32(lo | (hi << 4u)) - 16.0) * ${B}_h16(o);`,
  q5_1: (B) => `let o = b + 24u * (j >> 5u); let i = j & 31u;
  let lo = (${B}_byte(o + 8u + (i & 15u)) >> ((i >> 4u) * 4u)) & 15u;
  let hi = (${B}_u32at(o + 4u) >> i) & 1u;
  return f32(lo | (hi << 4u)) * ${B}_h16(o) + ${B}_h16(o + 2u);`,
  q8_0: (B) => `let o = b + 34u * (j >> 5u);
  return f32(${B}_i8(o + 2u + (j & 31u))) * ${B}_h16(o);`,
  mxfp4: (B) => `let o = b + 17u * (j >> 5u); let i = j & 31u;
  let q = (${B}_byte(o + 1u + (i & 15u)) >> ((i >> 4u) * 4u)) & 15u;
  return ldexp(e2m1(q), i32(${B}_byte(o)) - 127); // 2^(e−127): e = 255 is 2^128 here, not NaN`,
  // K-quants: 256-element super-blocks (quant-gguf-k.ts).
  q2_k: (B) => `let o = b + 84u * (j >> 8u); let i = j & 255u;
  let sc = ${B}_byte(o + (i >> 4u));
  let q = (${B}_byte(o + 16u + ((i >> 7u) << 5u) + (i & 31u)) >> (((i >> 5u) & 3u) << 1u)) & 3u;
  return ${B}_h16(o + 80u) * f32(sc & 15u) * f32(q) - ${B}_h16(o + 82u) * f32(sc >> 4u);`,
  q3_k: (B) => `let o = b + 110u * (j >> 8u); let i = j & 255u; let sb = i >> 4u;
  let low = (${B}_byte(o + 96u + (sb & 7u)) >> ((sb >> 3u) * 4u)) & 15u;
  let high = (${B}_byte(o + 104u + (sb & 3u)) >> (2u * (sb >> 2u))) & 3u;
  let q = (${B}_byte(o + 32u + ((i >> 7u) << 5u) + (i & 31u)) >> (((i >> 5u) & 3u) << 1u)) & 3u;
  let hm = (${B}_byte(o + (i & 31u)) >> (i >> 5u)) & 1u;
  return ${B}_h16(o + 108u) * f32(i32(low | (high << 4u)) - 32) * f32(i32(q) - select(4, 0, hm == 1u));`,
  q4_k: (B) => qk45(B, false),
  q5_k: (B) => qk45(B, true),
  q6_k: (B) => `let o = b + 210u * (j >> 8u); let i = j & 255u;
  let half = i >> 7u; let k4 = (i >> 5u) & 3u; let l = i & 31u;
  let lo = (${B}_byte(o + 64u * half + l + 32u * (k4 & 1u)) >> (4u * (k4 >> 1u))) & 15u;
  let hi = (${B}_byte(o + 128u + 32u * half + l) >> (2u * k4)) & 3u;
  return ${B}_h16(o + 208u) * f32(${B}_i8(o + 192u + (i >> 4u))) * (f32(lo | (hi << 4u)) - 32.0);`,
};

/** q4_k (144 B) / q5_k (176 B): f16 d, f16 dmin, 12 bytes of packed 6-bit scales/mins, [qh[32]], qs. */
function qk45(B: string, five: boolean): string {
  const bytes = five ? 176 : 144, qs = five ? 48 : 16;
  return `let o = b + ${bytes}u * (j >> 8u); let i = j & 255u; let sb = i >> 5u; let s = o + 4u;
  var sc: u32; var m: u32;
  if (sb < 4u) { sc = ${B}_byte(s + sb) & 63u; m = ${B}_byte(s + sb + 4u) & 63u; }
  else {
    sc = (${B}_byte(s + sb + 4u) & 15u) | ((${B}_byte(s + sb - 4u) >> 6u) << 4u);
    m = (${B}_byte(s + sb + 4u) >> 4u) | ((${B}_byte(s + sb) >> 6u) << 4u);
  }
  var q = (${B}_byte(o + ${qs}u + 32u * (sb >> 1u) + (i & 31u)) >> ((sb & 1u) * 4u)) & 15u;
  ${five ? `q |= ((${B}_byte(o + 16u + (i & 31u)) >> sb) & 1u) << 4u;` : ''}
  return ${B}_h16(o) * f32(sc) * f32(q) - ${B}_h16(o + 2u) * f32(m);`;
}

/** FP4 E2M1 code → value: magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6; bit 3 is the sign. */
const E2M1_WGSL = `fn e2m1(c: u32) -> f32 {
  let m = c & 7u;
  let v = select(f32(2u + (m & 1u)) * ldexp(1.0, i32(m >> 1u) - 2), f32(m) * 0.5, m < 2u);
  return select(v, -v, (c & 8u) != 0u);
}`;

/** FP8 E4M3FN byte → value (bias 7, subnormals, 0x7F/0xFF NaN). */
const E4M3_WGSL = `fn e4m3(c: u32) -> f32 {
  let e = (c >> 3u) & 15u; let m = c & 7u;
  if (e == 15u && m == 7u) { return bitcast<f32>(0x7FC00000u | c); } // NaN (a constant NaN is a WGSL error)
  let v = select(f32(8u + m) * ldexp(1.0, i32(e) - 10), f32(m) * ldexp(1.0, -9), e == 0u);
  return select(v, -v, (c & 0x80u) != 0u);
}`;

/** E8M0 byte → 2^(e−127); 0xFF is NaN. */
const E8M0_WGSL = `fn e8m0(e: u32) -> f32 {
  if (e == 255u) { return bitcast<f32>(0x7FC00000u | e); } // NaN, built at run time
  return ldexp(1.0, i32(e) - 127);
}`;

/**
 * WGSL defining `fn <buf>_elem(rowByte: u32, j: u32) -> f32`: element j of the row that starts at
 * byte rowByte of logical buffer <buf>, for the unscaled dtypes (f32, f16, bf16, GGUF blocks,
 * mxfp4). Also defines `<buf>_h16` and `<buf>_i8` (GGUF types) and, for mxfp4, `e2m1` (so a
 * program can hold the mxfp4 decoder of only one buffer).
 */
export function decodeWgsl(dtype: DType, buf: string): string {
  const body = ELEM[dtype];
  if (!body) throw new Error(`WebGPU: no WGSL decoder for dtype ${dtype}`);
  const out: string[] = [];
  if (dtype.startsWith('q')) { // GGUF blocks: f16 scales and signed bytes at any byte offset
    out.push(
      `fn ${buf}_h16(b: u32) -> f32 { return unpack2x16float(${buf}_u32at(b) & 0xFFFFu).x; }`,
      `fn ${buf}_i8(b: u32) -> i32 { return bitcast<i32>(${buf}_byte(b) << 24u) >> 24u; }`,
    );
  }
  if (dtype === 'mxfp4') out.push(E2M1_WGSL);
  out.push(`fn ${buf}_elem(b: u32, j: u32) -> f32 {\n  ${body(buf)}\n}`);
  return out.join('\n');
}

/**
 * WGSL filling `wv[0..len)` with elements 32·c … 32·c + len − 1 of weight row r
 * (`fn wchunk(r: u32, c: u32, len: u32)`), for any format.
 */
function chunkWgsl(format: WeightFormat): string {
  const s = format.scale;
  if (!s) {
    return `${decodeWgsl(format.dtype, 'w')}
fn wchunk(r: u32, c: u32, len: u32) {
  let rb = r * p.rowBytes;
  for (var j = 0u; j < len; j++) { wv[j] = w_elem(rb, 32u * c + j); }
}`;
  }
  const scale = s.dtype === 'e8m0' ? 'e8m0(s_byte(si))' : 's_f32(si)';
  const helpers = s.dtype === 'e8m0' ? E8M0_WGSL : '';
  if (format.dtype === 'f8_e4m3' && s.rows === s.cols && (s.rows === 128 || s.rows === 32)) {
    // Tile scales [ceil(rows/T), ceil(k/T)], T = 128 (V4, V3) or 32 (V4.1): a 32-element chunk lies
    // inside one tile, tile column c / (T/32).
    const t = s.rows;
    return `${E4M3_WGSL}
${helpers}
fn wchunk(r: u32, c: u32, len: u32) {
  let si = (r / ${t}u) * p.scaleCols + ${t === 32 ? 'c' : `c / ${t / 32}u`};
  let d = ${scale};
  let rb = r * p.k + 32u * c;
  for (var j = 0u; j < len; j++) { wv[j] = e4m3(w_byte(rb + j)) * d; }
}`;
  }
  if (format.dtype === 'fp4_e2m1' && s.rows === 1 && s.cols === 32) {
    // Scales [rows, k/32]: one per chunk; two codes per byte, the even element in the low nibble.
    return `${E2M1_WGSL}
${helpers}
fn wchunk(r: u32, c: u32, len: u32) {
  let si = r * p.scaleCols + c;
  let d = ${scale};
  let rb = r * (p.k / 2u) + 16u * c;
  for (var j = 0u; j < len; j++) { wv[j] = e2m1((w_byte(rb + (j >> 1u)) >> ((j & 1u) * 4u)) & 15u) * d; }
}`;
  }
  throw new Error(`WebGPU: no matrix kernel for the scaled format ${formatName(format)}`);
}

const kernels = new Map<string, KernelSource>();

function matrixKernel(format: WeightFormat): KernelSource {
  const name = `matrix_${formatName(format)}`;
  let k = kernels.get(name);
  if (!k) {
    k = {
      name, workgroupSize: WG,
      buffers: [{ name: 'w' }, ...(format.scale ? [{ name: 's' }] : []), { name: 'x' }, { name: 'y', write: true }],
      params: ['rows: u32', 'k: u32', 'n: u32', 'tiles: u32', 'lanes: u32', 'rowBytes: u32', 'scaleCols: u32'],
      code: `var<private> wv: array<f32, 32>;
var<workgroup> red: array<f32, ${WG * TILE}>;
${chunkWgsl(format)}
fn run(g: u32, l: u32) {
  // p.lanes invocations per row, 64 / p.lanes rows per workgroup (short rows share a workgroup).
  let r = (g / p.tiles) * (${WG}u / p.lanes) + l / p.lanes;
  let lane = l % p.lanes;
  let t0 = (g % p.tiles) * ${TILE}u;
  let nt = min(${TILE}u, p.n - t0);
  var acc: array<f32, ${TILE}>;
  // Rows past the end (the last workgroup, or a 2-D dispatch rounded up) skip the work but still
  // reach every barrier.
  let chunks = select(0u, (p.k + 31u) / 32u, r < p.rows);
  for (var c = lane; c < chunks; c += p.lanes) {
    let base = 32u * c;
    let len = min(32u, p.k - base);
    wchunk(r, c, len);
    for (var t = 0u; t < nt; t++) {
      let xo = (t0 + t) * p.k + base;
      var sum = 0.0;
      for (var j = 0u; j < len; j++) { sum += wv[j] * x_f32(xo + j); }
      acc[t] += sum;
    }
  }
  for (var t = 0u; t < nt; t++) { red[t * ${WG}u + l] = acc[t]; }
  workgroupBarrier();
  for (var h = p.lanes / 2u; h > 0u; h >>= 1u) {
    if (lane < h) {
      for (var t = 0u; t < nt; t++) { red[t * ${WG}u + l] += red[t * ${WG}u + l + h]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u && r < p.rows) {
    for (var t = 0u; t < nt; t++) { y_setf((t0 + t) * p.rows + r, red[t * ${WG}u + l]); }
  }
}`,
    };
    kernels.set(name, k);
  }
  return k;
}

export function planMatrix(format: WeightFormat, rows: number, k: number, n: number): MatrixPlan {
  const what = `${formatName(format)} [${rows}, ${k}] × ${n}`;
  if (!(Number.isInteger(rows) && rows > 0 && Number.isInteger(k) && k > 0 && Number.isInteger(n) && n > 0)) {
    throw new Error(`WebGPU matrix: bad shape ${what}`);
  }
  const { blockElems } = dtypeInfo(format.dtype);
  if (k % blockElems !== 0) throw new Error(`WebGPU matrix: ${what}: k is not a whole number of ${format.dtype} blocks`);
  if (format.scale?.rows === 1 && k % 32 !== 0) throw new Error(`WebGPU matrix: ${what}: k must be a multiple of 32`);
  const tiles = Math.ceil(n / TILE);
  // Invocations per row: a power of two covering the row's 32-element chunks, at most WG.
  let lanes = 1;
  while (lanes < WG && lanes * 32 < k) lanes *= 2;
  const scaleCols = format.scale ? Math.ceil(k / format.scale.cols) : 0;
  return {
    kernel: matrixKernel(format),
    params: { rows, k, n, tiles, lanes, rowBytes: rowBytes(format.dtype, k), scaleCols },
    workgroups: Math.ceil(rows / (WG / lanes)) * tiles,
  };
}
