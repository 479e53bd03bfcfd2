// Corrupted real files through the in-memory parsers: every case must parse or throw a FormatError
// (a RangeError, TypeError, … fails), quickly, reading no more than the file holds. Reproducible:
// MINKE_FUZZ_SEED picks the seed, MINKE_FUZZ_CASES the number of cases per file (default 10000; the
// large vocabulary file gets a twentieth of it, as one parse of it takes milliseconds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DTYPES } from '../../src/tensor/dtype.js';
import { FormatError } from '../../src/formats/errors.js';
import { parseGGUF, type GGUFValue } from '../../src/formats/gguf.js';
import { encodeGGUF } from '../../src/formats/gguf-writer.js';
import { parseSafetensorsHeader } from '../../src/formats/safetensors.js';
import type { ByteSource } from '../../src/formats/source.js';
import type { TensorInfo } from '../../src/formats/weight-file.js';
import { rng as prng } from '../support/rng.js';

const CASES = Number(process.env.MINKE_FUZZ_CASES ?? 10000);
const SEED = Number(process.env.MINKE_FUZZ_SEED ?? 20240601);
const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));


interface Mutant {
  /** The (mutated) first `head.length` bytes; the rest of the file reads as zeros. */
  head: Uint8Array;
  size: number;
  what: string;
}

const INTERESTING = [0n, 1n, 2n, 7n, 8n, 9n, 13n, 31n, 32n, 33n, 255n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 1n << 32n, 1n << 53n, 1n << 62n, (1n << 64n) - 1n];

function mutate(rand: () => number, original: Uint8Array, region: number, json: boolean): Mutant {
  const int = (n: number): number => Math.floor(rand() * n);
  const head = original.slice(0, region);
  let size = original.length;
  const what: string[] = [];
  const kinds = 1 + int(3);
  for (let k = 0; k < kinds; k++) {
    const kind = int(json ? 6 : 5);
    if (kind === 0) {
      // Truncation, mostly inside the header.
      size = Math.min(size, rand() < 0.8 ? int(region) : int(original.length));
      what.push(`truncate to ${size}`);
    } else if (kind === 1) {
      const flips = 1 + int(8);
      for (let i = 0; i < flips; i++) {
        const at = int(region), bit = int(8);
        head[at] ^= 1 << bit;
        what.push(`flip byte ${at} bit ${bit}`);
      }
    } else if (kind === 2) {
      const at = int(region), v = rand() < 0.5 ? int(256) : [0, 0x7f, 0x80, 0xff][int(4)];
      head[at] = v;
      what.push(`set byte ${at} = ${v}`);
    } else if (kind === 3) {
      // A length/count/offset-sized integer, at a random or an 8-aligned position.
      const width = rand() < 0.5 ? 8 : 4;
      const at = rand() < 0.5 ? int(region - width) : Math.floor(int(region - width) / 8) * 8;
      const v = INTERESTING[int(INTERESTING.length)];
      for (let i = 0; i < width; i++) head[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
      what.push(`write u${width * 8} ${v} at ${at}`);
    } else if (kind === 4) {
      // Copy a run of bytes from elsewhere in the header over another spot.
      const len = 1 + int(16), from = int(region - len), to = int(region - len);
      head.copyWithin(to, from, from + len);
      what.push(`copy ${len} bytes ${from}→${to}`);
    } else {
      // JSON headers: change a digit, so that the JSON stays valid but the numbers lie.
      let at = int(region);
      while (at < region && (head[at] < 0x30 || head[at] > 0x39)) at++;
      if (at < region) {
        head[at] = 0x30 + int(10);
        what.push(`digit at ${at} = ${head[at] - 0x30}`);
      }
    }
  }
  return { head, size, what: what.join(', ') };
}

/** A source over a mutant that records what the parser reads and fails loudly on reads past the end. */
function mutantSource(name: string, m: Mutant): ByteSource & { totalRead: number } {
  return {
    name,
    size: m.size,
    totalRead: 0,
    read(offset: number, dst: Uint8Array): void {
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + dst.length > m.size) {
        throw new Error(`parser read [${offset}, ${offset + dst.length}) past the end (${m.size} bytes)`);
      }
      this.totalRead += dst.length;
      dst.fill(0);
      if (offset < m.head.length) dst.set(m.head.subarray(offset, Math.min(m.head.length, offset + dst.length)));
    },
    close(): void {},
  };
}

/** What a successful parse must guarantee, checked independently of the parser. */
function checkTensors(tensors: ReadonlyMap<string, TensorInfo>, size: number): void {
  const spans: [number, number][] = [];
  for (const t of tensors.values()) {
    const info = DTYPES.get(t.dtype)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    assert.equal(t.byteLength, (count / info.blockElems) * info.blockBytes, `${t.name} byte length`);
    assert.ok(Number.isSafeInteger(t.offset) && t.offset >= 0 && t.offset + t.byteLength <= size, `${t.name} inside the file`);
    if (t.byteLength) spans.push([t.offset, t.offset + t.byteLength]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], 'tensors do not overlap');
}

function valueCount(v: GGUFValue): number {
  return Array.isArray(v) ? v.reduce((n: number, x: GGUFValue) => n + valueCount(x), 1) : 1;
}

function fuzz(name: string, original: Uint8Array, region: number, cases: number, parse: (src: ByteSource) => void, json = false): { parsed: number; rejected: number } {
  const rand = prng(SEED ^ original.length);
  let parsed = 0, rejected = 0;
  for (let i = 0; i < cases; i++) {
    const m = mutate(rand, original, region, json);
    const src = mutantSource(name, m);
    const t0 = performance.now();
    try {
      parse(src);
      parsed++;
    } catch (e) {
      if (!(e instanceof FormatError)) {
        assert.fail(`case ${i} (seed ${SEED}; ${m.what}): ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
      assert.ok(e.message.startsWith(`${name}: `) && e.fault.length > 0, `case ${i}: error names the file and the fault: ${e.message}`);
      rejected++;
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `case ${i} (${m.what}) took ${ms.toFixed(0)} ms`);
    // Chunked reads may re-read a little at chunk ends, never more than the file again.
    assert.ok(src.totalRead <= 2 * m.size + 64, `case ${i} (${m.what}) read ${src.totalRead} bytes of a ${m.size}-byte file`);
  }
  return { parsed, rejected };
}

function ggufParse(src: ByteSource): void {
  const h = parseGGUF(src);
  checkTensors(h.tensors, src.size);
  let values = 0;
  for (const v of h.metadata.values()) values += valueCount(v);
  assert.ok(values <= src.size, 'no more metadata values than bytes');
  for (const t of h.tensors.values()) assert.equal((t.offset - h.dataOffset) % h.alignment, 0, `${t.name} aligned`);
}

const read = (p: string): Uint8Array => new Uint8Array(fs.readFileSync(shared(p)));

test(`fuzz GGUF: stories260K.gguf header region, ${CASES} cases`, { timeout: 120_000 }, () => {
  const file = read('models/stories260K/stories260K.gguf');
  const dataOffset = parseGGUF(mutantSource('x', { head: file, size: file.length, what: '' })).dataOffset;
  const r = fuzz('stories260K.gguf', file, dataOffset, CASES, ggufParse);
  assert.equal(r.parsed + r.rejected, CASES);
  assert.ok(r.parsed > 0 && r.rejected > 0, `both outcomes occur (${r.parsed} parsed, ${r.rejected} rejected)`);
});

test(`fuzz GGUF: every metadata type and several dtypes, ${CASES} cases`, { timeout: 120_000 }, () => {
  const file = encodeGGUF({
    metadata: [
      ['u8', { type: 'u8', value: 1 }], ['i8', { type: 'i8', value: -1 }], ['u16', { type: 'u16', value: 2 }], ['i16', { type: 'i16', value: -2 }],
      ['u32', { type: 'u32', value: 3 }], ['i32', { type: 'i32', value: -3 }], ['f32', { type: 'f32', value: 0.5 }], ['bool', { type: 'bool', value: true }],
      ['str', { type: 'string', value: 'é✓' }], ['u64', { type: 'u64', value: 1n << 60n }], ['i64', { type: 'i64', value: -4 }], ['f64', { type: 'f64', value: 0.25 }],
      ['arr', { type: { array: 'string' }, value: ['a', 'bc'] }], ['nested', { type: { array: { array: 'u16' } }, value: [[1], [2, 3]] }],
      ['general.alignment', { type: 'u32', value: 64 }],
    ],
    tensors: [
      { name: 'a', dtype: 'q8_0', shape: [2, 32], data: new Uint8Array(68) },
      { name: 'b', dtype: 'q4_k', shape: [256], data: new Uint8Array(144) },
      { name: 'c', dtype: 'f16', shape: [3, 2, 2], data: new Uint8Array(24) },
    ],
  });
  const dataOffset = parseGGUF(mutantSource('x', { head: file, size: file.length, what: '' })).dataOffset;
  const r = fuzz('types.gguf', file, dataOffset, CASES, ggufParse);
  assert.ok(r.parsed > 0 && r.rejected > 0, `both outcomes occur (${r.parsed} parsed, ${r.rejected} rejected)`);
});

test(`fuzz GGUF: ggml-vocab-llama-spm.gguf, ${Math.ceil(CASES / 20)} cases`, { timeout: 120_000 }, () => {
  const file = read('models/llama-cpp-vocab/ggml-vocab-llama-spm.gguf');
  const r = fuzz('ggml-vocab-llama-spm.gguf', file, file.length, Math.ceil(CASES / 20), ggufParse);
  assert.ok(r.rejected > 0, `${r.parsed} parsed, ${r.rejected} rejected`);
});

test(`fuzz safetensors: tiny_v4/model.safetensors header region, ${CASES} cases`, { timeout: 120_000 }, () => {
  const file = read('spec/testdata/tiny_v4/model.safetensors');
  const region = 8 + Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const r = fuzz('model.safetensors', file, region, CASES, (src) => checkTensors(parseSafetensorsHeader(src).tensors, src.size), true);
  assert.ok(r.parsed > 0 && r.rejected > 0, `both outcomes occur (${r.parsed} parsed, ${r.rejected} rejected)`);
});
