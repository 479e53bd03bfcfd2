/**
 * minke's 2-bit block type for routed experts whose rows are not a whole number of 256-element
 * K-quant blocks (GGUF Q2_K needs 256): blocks of 32 elements, 10 bytes each (2.5 bits/weight):
 *
 *   f16 d | 8 bytes of 2-bit codes (element i in byte i >> 2, bits 2·(i & 3))
 *   value = d · (2q − 3), q ∈ 0..3  →  {−3d, −d, d, 3d}
 *
 * Every value is d times an integer in [−8, 7], so a block widens exactly into a GGUF Q4_0 block
 * (same d, nibble 2q + 5): the loader does that, and the Q4_0 kernels run it.
 */
import { rd16, wr16 } from '../tensor/bytes.js';
import { F16_TO_F32, f32ToF16 } from '../tensor/float.js';

export const Q2_0_BLOCK_ELEMS = 32;
export const Q2_0_BLOCK_BYTES = 10;
const Q4_0_BLOCK_BYTES = 18;

/** Candidate scales as fractions of amax/3; the one with the least squared error wins. */
const SCALE_FRACTIONS = [1, 0.9, 0.8, 0.7, 0.6, 0.5];

const code = (x: number, d: number): number => Math.max(0, Math.min(3, Math.round((x / d + 3) / 2)));

/** Encodes `values` (a whole number of 32-blocks) into q2_0 bytes. */
export function encodeQ2_0(values: Float32Array): Uint8Array {
  if (values.length % Q2_0_BLOCK_ELEMS !== 0) throw new Error(`q2_0: ${values.length} values are not a whole number of ${Q2_0_BLOCK_ELEMS}-element blocks`);
  const blocks = values.length / Q2_0_BLOCK_ELEMS;
  const out = new Uint8Array(blocks * Q2_0_BLOCK_BYTES);
  for (let b = 0; b < blocks; b++) {
    const o = b * Q2_0_BLOCK_ELEMS, so = b * Q2_0_BLOCK_BYTES;
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(values[o + i]));
    if (amax === 0) continue; // d = 0 decodes to zeros whatever the codes
    let best = 0, bestErr = Infinity;
    for (const f of SCALE_FRACTIONS) {
      const h = f32ToF16((amax / 3) * f);
      const d = F16_TO_F32[h];
      if (!(d > 0)) continue;
      let err = 0;
      for (let i = 0; i < 32; i++) {
        const e = values[o + i] - d * (2 * code(values[o + i], d) - 3);
        err += e * e;
      }
      if (err < bestErr) { bestErr = err; best = h; }
    }
    wr16(out, so, best);
    const d = F16_TO_F32[best];
    for (let i = 0; i < 32; i++) out[so + 2 + (i >> 2)] |= code(values[o + i], d) << (2 * (i & 3));
  }
  return out;
}

/** Decodes q2_0 bytes to f32. */
export function decodeQ2_0(bytes: Uint8Array, count: number): Float32Array {
  checkLength(bytes, count);
  const out = new Float32Array(count);
  for (let b = 0; b < count / 32; b++) {
    const so = b * Q2_0_BLOCK_BYTES, d = F16_TO_F32[rd16(bytes, so)];
    for (let i = 0; i < 32; i++) out[b * 32 + i] = d * (2 * ((bytes[so + 2 + (i >> 2)] >> (2 * (i & 3))) & 3) - 3);
  }
  return out;
}

/** Widens q2_0 bytes of `count` elements into Q4_0 blocks in `dst` (exact: same d, nibble 2q + 5). */
export function widenQ2_0ToQ4_0(bytes: Uint8Array, count: number, dst: Uint8Array): Uint8Array {
  checkLength(bytes, count);
  const blocks = count / 32;
  if (dst.length < blocks * Q4_0_BLOCK_BYTES) throw new Error(`q2_0 → q4_0: ${count} elements need ${blocks * Q4_0_BLOCK_BYTES} bytes, the destination holds ${dst.length}`);
  const q = (so: number, i: number) => (bytes[so + 2 + (i >> 2)] >> (2 * (i & 3))) & 3;
  for (let b = 0; b < blocks; b++) {
    const so = b * Q2_0_BLOCK_BYTES, d0 = b * Q4_0_BLOCK_BYTES;
    dst[d0] = bytes[so];
    dst[d0 + 1] = bytes[so + 1];
    // Q4_0: byte j holds element j (low nibble) and element j + 16 (high nibble).
    for (let j = 0; j < 16; j++) dst[d0 + 2 + j] = (2 * q(so, j) + 5) | ((2 * q(so, j + 16) + 5) << 4);
  }
  return dst.subarray(0, blocks * Q4_0_BLOCK_BYTES);
}

function checkLength(bytes: Uint8Array, count: number): void {
  if (count % 32 !== 0 || bytes.length !== (count / 32) * Q2_0_BLOCK_BYTES) {
    throw new Error(`q2_0: ${count} elements need ${(count / 32) * Q2_0_BLOCK_BYTES} bytes, got ${bytes.length}`);
  }
}
