/**
 * Whole-weight codecs over WeightFormat: the DeepSeek block-scaled formats (FP8 E4M3 with one scale
 * per 128×128 tile, E8M0 in V4 `.scale` or f32 in V3 `weight_scale_inv`, or one E8M0 scale per
 * 32×32 block in V4.1 — the tile size comes from the format; FP4 E2M1 with one E8M0
 * scale per row per 32 inputs) and every GGUF/element dtype row by row. Also the activation
 * quantisation round trips of deepseek-v4.md §3.6 (Q8 / Q4 with power-of-two scales).
 */
import { rdF32, wrF32 } from './bytes.js';
import { formatName, rowBytes, type WeightFormat } from './dtype.js';
import { E2M1_TO_F32, E4M3_TO_F32, f32BitsToE2m1, f32BitsToE4m3, f32ToE2m1, f32ToE4m3, floorLog2 } from './float.js';
import { dequantizeRow, quantizeRow } from './quant-gguf.js';

const E4M3_MAX = 448;
const E2M1_MAX = 6;

/** Smallest e with 2^e ≥ v (v > 0 finite), v taken as an f32: the exponent of v, plus one if its mantissa is non-zero. */
export function ceilLog2(v: number): number {
  f32[0] = v;
  const b = u32[0], exp = b >>> 23, mant = b & 0x7fffff;
  if (exp === 0) return floorLog2(f32[0]) + (2 ** floorLog2(f32[0]) === f32[0] ? 0 : 1); // subnormal
  return exp - 127 + (mant ? 1 : 0);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** E8M0 byte of the power-of-two scale 2^ceil(log2(amax/qmax)), within E8M0's finite range. */
function pow2ScaleByte(amax: number, qmax: number): number {
  if (!(amax > 0)) return 127; // an all-zero group: any scale decodes to zeros
  return Math.max(0, Math.min(254, ceilLog2(amax / qmax) + 127));
}

interface ScaleGrid {
  readonly tileRows: number;
  readonly tileCols: number;
  readonly gridRows: number;
  readonly gridCols: number;
  readonly f32: boolean;
}

function scaleGrid(format: WeightFormat, rows: number, cols: number): ScaleGrid {
  const s = format.scale!;
  if (format.dtype !== 'f8_e4m3' && format.dtype !== 'fp4_e2m1') {
    throw new Error(`${formatName(format)}: block scales are supported on f8_e4m3 and fp4_e2m1 only`);
  }
  return {
    tileRows: s.rows, tileCols: s.cols,
    gridRows: Math.ceil(rows / s.rows), gridCols: Math.ceil(cols / s.cols),
    f32: s.dtype === 'f32',
  };
}

function checkShape(format: WeightFormat, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new Error(`${formatName(format)}: bad shape [${rows}, ${cols}]`);
  }
}

/** Bytes of the element data of a [rows, cols] weight in this format. */
function dataBytes(format: WeightFormat, rows: number, cols: number): number {
  return rows * rowBytes(format.dtype, cols);
}

/**
 * Decode a [rows, cols] weight to f32, row-major. Scaled formats need `scale`: the tile/group
 * scales as stored ([ceil(rows/tr), ceil(cols/tc)] E8M0 bytes, or little-endian f32).
 */
export function dequantize(format: WeightFormat, data: Uint8Array, rows: number, cols: number,
  scale?: Uint8Array): Float32Array {
  checkShape(format, rows, cols);
  const name = formatName(format);
  const need = dataBytes(format, rows, cols);
  if (data.length !== need) throw new Error(`${name}: [${rows}, ${cols}] needs ${need} data bytes, got ${data.length}`);
  const out = new Float32Array(rows * cols);
  if (!format.scale) {
    const rb = rowBytes(format.dtype, cols);
    for (let r = 0; r < rows; r++) dequantizeRow(format.dtype, data, out, cols, r * rb, r * cols);
    return out;
  }
  const g = scaleGrid(format, rows, cols);
  const nScale = g.gridRows * g.gridCols * (g.f32 ? 4 : 1);
  if (!scale) throw new Error(`${name}: the scale tensor is missing`);
  if (scale.length !== nScale) {
    throw new Error(`${name}: [${rows}, ${cols}] needs ${nScale} scale bytes ([${g.gridRows}, ${g.gridCols}]), got ${scale.length}`);
  }
  const fp4 = format.dtype === 'fp4_e2m1';
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor(r / g.tileRows) * g.gridCols;
    for (let c0 = 0; c0 < cols; c0 += g.tileCols) {
      const si = srow + c0 / g.tileCols;
      const s = g.f32 ? rdF32(scale, 4 * si) : 2 ** (scale[si] - 127);
      if (!g.f32 && scale[si] === 0xff) throw new Error(`${name}: NaN scale (0xFF) at tile [${Math.floor(r / g.tileRows)}, ${c0 / g.tileCols}]`);
      const c1 = Math.min(cols, c0 + g.tileCols);
      for (let c = c0; c < c1; c++) {
        const i = r * cols + c;
        const v = fp4 ? E2M1_TO_F32[(data[i >>> 1] >>> ((c & 1) * 4)) & 15] : E4M3_TO_F32[data[i]];
        out[i] = v * s; // exact for power-of-two scales; one f32 rounding for f32 scales
      }
    }
  }
  return out;
}

/**
 * Encode a row-major [rows, cols] f32 weight. Scaled formats choose per tile/group:
 * E8M0 → the power of two 2^ceil(log2(amax/qmax)) (qmax 448 for FP8, 6 for FP4), so nothing
 * saturates; f32 → amax/448 (V3 `weight_scale_inv`). GGUF dtypes quantise row by row.
 */
export function quantize(format: WeightFormat, values: Float32Array, rows: number, cols: number):
  { data: Uint8Array; scale?: Uint8Array } {
  checkShape(format, rows, cols);
  const name = formatName(format);
  if (values.length !== rows * cols) throw new Error(`${name}: [${rows}, ${cols}] needs ${rows * cols} values, got ${values.length}`);
  const data = new Uint8Array(dataBytes(format, rows, cols));
  if (!format.scale) {
    const rb = rowBytes(format.dtype, cols);
    for (let r = 0; r < rows; r++) quantizeRow(format.dtype, values, data, cols, r * cols, r * rb);
    return { data };
  }
  const g = scaleGrid(format, rows, cols);
  const scale = new Uint8Array(g.gridRows * g.gridCols * (g.f32 ? 4 : 1));
  const fp4 = format.dtype === 'fp4_e2m1';
  const qmax = fp4 ? E2M1_MAX : E4M3_MAX;
  for (let tr = 0; tr < g.gridRows; tr++) {
    const r0 = tr * g.tileRows;
    const r1 = Math.min(rows, r0 + g.tileRows);
    for (let tc = 0; tc < g.gridCols; tc++) {
      const c0 = tc * g.tileCols;
      const c1 = Math.min(cols, c0 + g.tileCols);
      let amax = 0;
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) amax = Math.max(amax, Math.abs(values[r * cols + c]));
      const si = tr * g.gridCols + tc;
      let s: number;
      if (g.f32) {
        s = amax > 0 ? Math.fround(amax / qmax) : 1;
        wrF32(scale, 4 * si, s);
      } else {
        scale[si] = pow2ScaleByte(amax, qmax);
        s = 2 ** (scale[si] - 127);
      }
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) {
          const i = r * cols + c;
          const q = Math.fround(values[i] / s);
          if (fp4) data[i >>> 1] |= f32ToE2m1(q) << ((c & 1) * 4);
          else data[i] = f32ToE4m3(q);
        }
      }
    }
  }
  return { data, scale };
}

// ---- activation quantisation (deepseek-v4.md §3.6) ---------------------------------------------------

const Q8_FLOOR = Math.fround(1e-4);
const Q4_FLOOR = 6 * 2 ** -126;

function checkBlocks(what: string, x: Float32Array, block: number): void {
  if (!Number.isInteger(block) || block <= 0 || x.length % block !== 0) {
    throw new Error(`${what}: length ${x.length} is not a whole number of blocks of ${block}`);
  }
}

function blockAmax(x: Float32Array, o: number, block: number, floor: number): number {
  let a = floor;
  for (let i = o; i < o + block; i++) a = Math.max(a, Math.abs(x[i]));
  return a;
}

/** Power-of-two scale of one block: 2^ceil(log2(max(amax, floor)/qmax)), a/qmax taken in f32. */
function blockScale(x: Float32Array, o: number, block: number, floor: number, qmax: number): number {
  return 2 ** ceilLog2(Math.fround(blockAmax(x, o, block, floor) / qmax));
}

/** In-place Q8(x, block): x ← e4m3(clamp(x/s, ±448))·s per block, s = 2^ceil(log2(max(amax, 1e-4)/448)). */
export function qatFp8(x: Float32Array, block: number): void {
  checkBlocks('qatFp8', x, block);
  const { f, bits } = scratch(block);
  for (let o = 0; o < x.length; o += block) {
    const s = blockScale(x, o, block, Q8_FLOOR, E4M3_MAX);
    for (let i = 0; i < block; i++) f[i] = x[o + i] / s; // the f32 store rounds x/s as the reference does
    for (let i = 0; i < block; i++) {
      // |v| = |x/s| ≤ 448 by the choice of s. Adding M = ±2^(max(e, −6) + 20) (v's sign) leaves
      // exactly E4M3's 3 mantissa bits (or its subnormal grid 2^−9) in the f32 sum, so one f32
      // rounding of v + M is round-to-nearest-even onto the E4M3 grid (v + M is exact in double).
      const v = f[i], m = E4M3_MAGIC[bits[i] >>> 23];
      x[o + i] = ((Math.fround(v + m) - m) || v * 0) * s; // v·0 keeps the sign of a zero result, as E4M3's −0
    }
  }
}

/** E4M3_MAGIC[sign and exponent bits of v] = ±2^(max(e, −6) + 20), for the rounding trick of qatFp8. */
const E4M3_MAGIC = Float64Array.from({ length: 512 }, (_, se) => (se & 0x100 ? -1 : 1) * 2 ** (Math.max((se & 0xff) - 127, -6) + 20));

let scratchF = new Float32Array(128), scratchBits = new Uint32Array(scratchF.buffer);

/** A reusable f32 block and its bit view (the quantisers encode from bits). */
function scratch(n: number): { f: Float32Array; bits: Uint32Array } {
  if (scratchF.length < n) {
    scratchF = new Float32Array(n);
    scratchBits = new Uint32Array(scratchF.buffer);
  }
  return { f: scratchF, bits: scratchBits };
}

/**
 * DeepSeek-V3's activation round trip with a plain scale (its `act_quant` without `scale_fmt`):
 * s = max(amax, 1e-4)/448 in f32, x ← e4m3(x/s)·s per block (s is not a power of two, so the
 * product is rounded to f32).
 */
export function qatFp8AmaxScale(x: Float32Array, block: number): void {
  const { codes, scales } = actQuantFp8(x, block, false);
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(E4M3_TO_F32[codes[i]] * scales[Math.floor(i / block)]);
}

/** In-place Q4(x, block): x ← e2m1(clamp(x/s, ±6))·s per block, s = 2^ceil(log2(max(amax, 6·2^-126)/6)). */
export function qatFp4(x: Float32Array, block: number): void {
  checkBlocks('qatFp4', x, block);
  const { f, bits } = scratch(block);
  for (let o = 0; o < x.length; o += block) {
    const s = blockScale(x, o, block, Q4_FLOOR, E2M1_MAX);
    for (let i = 0; i < block; i++) f[i] = x[o + i] / s;
    for (let i = 0; i < block; i++) x[o + i] = E2M1_TO_F32[f32BitsToE2m1(bits[i])] * s;
  }
}

/**
 * The non-in-place Q8 of §10.3 that feeds FP8/FP4 matrix products: E4M3 codes of x/s and the
 * scale s of each block — a power of two (V4, V3.1+ `ue8m0`; codes·s equals qatFp8's result), or
 * with `pow2` false DeepSeek-V3's plain max(amax, 1e-4)/448.
 */
export function actQuantFp8(x: Float32Array, block: number, pow2 = true): { codes: Uint8Array; scales: Float32Array } {
  checkBlocks('actQuantFp8', x, block);
  const codes = new Uint8Array(x.length);
  const scales = new Float32Array(x.length / block);
  for (let o = 0, b = 0; o < x.length; o += block, b++) {
    const s = pow2 ? blockScale(x, o, block, Q8_FLOOR, E4M3_MAX) : Math.fround(blockAmax(x, o, block, Q8_FLOOR) / E4M3_MAX);
    scales[b] = s;
    for (let i = o; i < o + block; i++) codes[i] = f32ToE4m3(Math.fround(x[i] / s));
  }
  return { codes, scales };
}
