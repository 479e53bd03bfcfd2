// 32-element GGUF blocks whose quants are rebuilt as signed bytes before the dot: q5_0, q5_1 (a
// nibble plus a fifth bit from qh) and mxfp4 (a table of E2M1 values). (Inlined; nothing here is a
// wasm export. The format is a compile-time constant, so the branches fold away.)
import { LOW_NIBBLES } from './quant_common';

export const Q5_0: i32 = 0, Q5_1: i32 = 1, MXFP4: i32 = 2;

const K = memory.data<u8>([
  16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, // 0: q5_0's offset, and a fifth bit
  1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, // 16: bit j of each byte
  0, 1, 2, 3, 4, 6, 8, 12, 0, 255, 254, 253, 252, 250, 248, 244, // 32: E2M1 values ×2 as i8 (ggml's kvalues_mxfp4)
], 16);

/** The low (elements 0..15) or high (16..31) nibbles of the 16 bytes at p, as bytes. */
@inline function nibbles(p: usize, high: bool): v128 {
  const q = v128.load(p);
  return v128.and(high ? i16x8.shr_u(q, 4) : q, v128.load(LOW_NIBBLES));
}

/** 0x10 in byte j where bit j of the 16 bits of qh (at p) for elements 0..15 (or 16..31) is set. */
@inline function fifthBits(p: usize, high: bool): v128 {
  const h = v128.load32_splat(p);
  const spread = high
    ? i8x16.shuffle(h, h, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)
    : i8x16.shuffle(h, h, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const bit = v128.load(K, 16);
  return v128.and(i8x16.eq(v128.and(spread, bit), bit), v128.load(K));
}

/**
 * The signed quants of elements 0..15 (`high` false) or 16..31 of the block at p, as i8 lanes:
 * q5_0 5 bits − 16, q5_1 5 bits, mxfp4 2·E2M1.
 */
@inline export function quants(fmt: i32, p: usize, high: bool): v128 {
  if (fmt == Q5_0) return i8x16.sub(v128.or(nibbles(p + 6, high), fifthBits(p + 2, high)), v128.load(K));
  if (fmt == Q5_1) return v128.or(nibbles(p + 8, high), fifthBits(p + 4, high));
  return i8x16.swizzle(v128.load(K, 32), nibbles(p + 1, high));
}
