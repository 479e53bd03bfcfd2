import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openGGUF, parseGGUF, type GGUFType, type GGUFValue } from '../../src/formats/gguf.js';
import { encodeGGUF, metadataEntries, writeGGUF, type GGUFEntry, type GGUFWriteTensor } from '../../src/formats/gguf-writer.js';
import { bufferSource } from '../../src/formats/source.js';

const STORIES = fileURLToPath(new URL('../../../../shared/models/stories260K/stories260K.gguf', import.meta.url));

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'minke-gguf-writer-'));
}

/** Deterministic filler bytes. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

test('the writer produces exactly the bytes the GGUF spec lays out', () => {
  const data = bytes(16, 7);
  const file = encodeGGUF({
    metadata: [['general.architecture', { type: 'string', value: 'x' }], ['k', { type: { array: 'u16' }, value: [1, 258] }]],
    tensors: [{ name: 'w', dtype: 'f32', shape: [2, 2], data }],
  });
  const le = (v: number | bigint, n: number): number[] => { let b = BigInt(v); return Array.from({ length: n }, () => { const x = Number(b & 0xffn); b >>= 8n; return x; }); };
  const str = (s: string): number[] => [...le(s.length, 8), ...Buffer.from(s)];
  const head = [
    ...Buffer.from('GGUF'), ...le(3, 4), ...le(1, 8), ...le(2, 8),
    ...str('general.architecture'), ...le(8, 4), ...str('x'),
    ...str('k'), ...le(9, 4), ...le(2, 4), ...le(2, 8), 1, 0, 2, 1,
    ...str('w'), ...le(2, 4), ...le(2, 8), ...le(2, 8), ...le(0, 4), ...le(0, 8),
  ];
  const dataOffset = Math.ceil(head.length / 32) * 32;
  const expected = new Uint8Array(dataOffset + 32);
  expected.set(head);
  expected.set(data, dataOffset);
  assert.deepEqual(file, expected);
});

const ALL_TYPES: [string, GGUFEntry][] = [
  ['t.u8', { type: 'u8', value: 255 }],
  ['t.i8', { type: 'i8', value: -128 }],
  ['t.u16', { type: 'u16', value: 65535 }],
  ['t.i16', { type: 'i16', value: -32768 }],
  ['t.u32', { type: 'u32', value: 4294967295 }],
  ['t.i32', { type: 'i32', value: -2147483648 }],
  ['t.f32', { type: 'f32', value: Math.fround(3.14159) }],
  ['t.bool.true', { type: 'bool', value: true }],
  ['t.bool.false', { type: 'bool', value: false }],
  ['t.string', { type: 'string', value: 'héllo ✓ 😀 ▁tok' }],
  ['t.string.empty', { type: 'string', value: '' }],
  ['t.string.long', { type: 'string', value: 'ü'.repeat(300) }],
  ['t.u64.small', { type: 'u64', value: Number.MAX_SAFE_INTEGER }],
  ['t.u64.big', { type: 'u64', value: (1n << 64n) - 1n }],
  ['t.i64.small', { type: 'i64', value: -42 }],
  ['t.i64.big', { type: 'i64', value: -(1n << 63n) }],
  ['t.f64', { type: 'f64', value: Math.PI }],
  ['a.u8', { type: { array: 'u8' }, value: [0, 1, 255] }],
  ['a.i8', { type: { array: 'i8' }, value: [-1, 127] }],
  ['a.u16', { type: { array: 'u16' }, value: [9, 65535] }],
  ['a.i16', { type: { array: 'i16' }, value: [-5] }],
  ['a.u32', { type: { array: 'u32' }, value: [1, 2, 3] }],
  ['a.i32', { type: { array: 'i32' }, value: [-7, 7] }],
  ['a.f32', { type: { array: 'f32' }, value: [0.5, -0, Infinity] }],
  ['a.bool', { type: { array: 'bool' }, value: [true, false, true] }],
  ['a.string', { type: { array: 'string' }, value: ['a', 'bc', '', 'Ġ t'] }],
  ['a.u64', { type: { array: 'u64' }, value: [0, 1n << 60n] }],
  ['a.i64', { type: { array: 'i64' }, value: [-1, (1n << 62n)] }],
  ['a.f64', { type: { array: 'f64' }, value: [1e300, -2.5] }],
  ['a.empty', { type: { array: 'f32' }, value: [] }],
  ['a.nested', { type: { array: { array: 'i32' } }, value: [[1, 2], [3], []] }],
  ['a.nested3', { type: { array: { array: { array: 'string' } } }, value: [[['x'], ['y', 'z']], [[]]] }],
  ['a.nested.empty', { type: { array: { array: 'u8' } }, value: [] }],
];

function tensorsOf(): GGUFWriteTensor[] {
  return [
    { name: 'f32.matrix', dtype: 'f32', shape: [3, 4], data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).buffer) },
    { name: 'f16.matrix', dtype: 'f16', shape: [2, 8], data: bytes(32, 1) },
    { name: 'q8_0.matrix', dtype: 'q8_0', shape: [2, 64], data: bytes(2 * 2 * 34, 2) },
    { name: 'q4_k.row', dtype: 'q4_k', shape: [1, 512], data: () => bytes(2 * 144, 3) },
    { name: 'i8.vector', dtype: 'i8', shape: [5], data: bytes(5, 4) },
    { name: 'f32.cube', dtype: 'f32', shape: [2, 3, 4], data: bytes(96, 5) },
    { name: 'bf16.empty', dtype: 'bf16', shape: [0, 8], data: new Uint8Array(0) },
  ];
}

for (const alignment of [undefined, 64]) {
  test(`round trip: every metadata type, nested arrays and several dtypes (alignment ${alignment ?? 'default'})`, () => {
    const dir = tmpDir();
    try {
      const file = path.join(dir, 'rt.gguf');
      const tensors = tensorsOf();
      const layout = writeGGUF(file, { metadata: ALL_TYPES, tensors, alignment });
      assert.equal(fs.statSync(file).size, layout.size);
      assert.deepEqual(fs.readdirSync(dir), ['rt.gguf']);
      const g = openGGUF(file);
      try {
        const align = alignment ?? 32;
        assert.equal(g.version, 3);
        assert.equal(g.alignment, align);
        assert.equal(g.dataOffset % align, 0);
        const expected = new Map<string, GGUFEntry>(ALL_TYPES);
        if (alignment) expected.set('general.alignment', { type: 'u32', value: alignment });
        assert.deepEqual([...g.metadata.keys()], [...expected.keys()]);
        for (const [k, e] of expected) {
          assert.deepEqual(g.metadata.get(k), e.value, k);
          assert.deepEqual(g.metadataTypes.get(k), e.type as GGUFType, k);
        }
        assert.equal(typeof g.metadata.get('t.u64.small'), 'number');
        assert.equal(typeof g.metadata.get('t.u64.big'), 'bigint');
        assert.deepEqual([...g.tensors.keys()], tensors.map((t) => t.name));
        for (const t of tensors) {
          const info = g.tensors.get(t.name)!;
          assert.equal(info.dtype, t.dtype);
          assert.deepEqual(info.shape, t.shape);
          assert.deepEqual(info.ne, [...t.shape].reverse());
          assert.equal(info.offset % align, 0, `${t.name} aligned`);
          const want = typeof t.data === 'function' ? t.data() : t.data;
          assert.deepEqual(g.read(t.name), want, t.name);
        }
        assert.deepEqual(new Float32Array(g.read('f32.matrix').slice().buffer)[5], 6);
      } finally {
        g.close();
      }
      // Writing back what was read gives the same file.
      const again = parseGGUF(bufferSource('rt', fs.readFileSync(file)));
      const copy = encodeGGUF({ metadata: metadataEntries(again), tensors: tensorsOf() });
      assert.deepEqual(copy, new Uint8Array(fs.readFileSync(file)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('copying stories260K.gguf through reader and writer reproduces llama.cpp\'s file byte for byte', () => {
  const original = new Uint8Array(fs.readFileSync(STORIES));
  const g = parseGGUF(bufferSource('stories', original));
  const copy = encodeGGUF({
    metadata: metadataEntries(g),
    tensors: [...g.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: original.subarray(t.offset, t.offset + t.byteLength) })),
  });
  assert.equal(copy.length, original.length);
  assert.ok(Buffer.from(copy).equals(original));
});

test('metadata past the writer\'s first 64 KiB (a 32,000-token vocabulary, a 100 KB string) reads back intact', () => {
  // Strings that cross the point where the header buffer grows (minke quantize on a real
  // 32K-vocabulary model once failed there with a bare RangeError).
  const tokens = Array.from({ length: 32000 }, (_, i) => `▁token-${i}`);
  const long = 'x'.repeat(100_000);
  const file = encodeGGUF({
    metadata: [
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.tokens', { type: { array: 'string' }, value: tokens }],
      ['test.long', { type: 'string', value: long }],
    ],
  });
  const g = parseGGUF(bufferSource('big-metadata', file));
  assert.deepEqual(g.metadata.get('tokenizer.ggml.tokens'), tokens);
  assert.equal(g.metadata.get('test.long'), long);
});

test('the writer refuses bad input with a clear message and leaves no partial file', () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'bad.gguf');
    const bad = (spec: Parameters<typeof writeGGUF>[1], msg: RegExp): void => {
      assert.throws(() => writeGGUF(file, spec), msg);
      assert.deepEqual(fs.readdirSync(dir), []);
    };
    const meta = (type: GGUFType, value: GGUFValue) => ({ metadata: [['k', { type, value }]] as [string, GGUFEntry][] });
    bad(meta('u8', 256), /metadata 'k': 256 is not a valid u8/);
    bad(meta('i32', 1.5), /1\.5 is not a valid i32/);
    bad(meta('u64', -1), /-1 is not a valid u64/);
    bad(meta('u64', 1n << 64n), /is not a valid u64/);
    bad(meta('string', 5), /5 is not a valid string/);
    bad(meta('bool', 1), /1 is not a valid bool/);
    bad(meta({ array: 'u8' }, 5), /array<u8> needs an array/);
    bad(meta({ array: 'u8' }, [1, 300]), /metadata 'k'\[1\]: 300 is not a valid u8/);
    bad({ alignment: 48 }, /alignment 48 is not a power of two/);
    bad({ alignment: 64, metadata: [['general.alignment', { type: 'u32', value: 32 }]] }, /agree with the alignment option/);
    const t = (over: Partial<GGUFWriteTensor>): { tensors: GGUFWriteTensor[] } => ({ tensors: [{ name: 'w', dtype: 'f32', shape: [4], data: new Uint8Array(16), ...over }] });
    bad(t({ dtype: 'f8_e4m3', data: new Uint8Array(4) }), /tensor 'w': dtype f8_e4m3 has no GGUF type/);
    bad(t({ dtype: 'q4_0', shape: [2, 16], data: new Uint8Array(18) }), /rows of 16 elements are not a whole number of q4_0 blocks \(32\)/);
    bad(t({ data: new Uint8Array(15) }), /tensor 'w' needs 16 bytes of f32 data, got 15/);
    bad(t({ data: () => { throw new Error('producer failed'); } }), /producer failed/);
    bad({ tensors: [...t({}).tensors, ...t({}).tensors] }, /duplicate tensor name 'w'/);
    bad({ metadata: [['k', { type: 'u8', value: 1 }], ['k', { type: 'u8', value: 1 }]] }, /duplicate metadata key 'k'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
