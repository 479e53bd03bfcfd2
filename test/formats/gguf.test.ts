import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormatError } from '../../src/formats/errors.js';
import { openGGUF, parseGGUF } from '../../src/formats/gguf.js';
import { bufferSource } from '../../src/formats/source.js';
import { openWeights } from '../../src/formats/weights.js';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));
const STORIES = shared('models/stories260K/stories260K.gguf');
const STORIES_BIN = shared('models/stories260K/stories260K.bin');
const VOCAB = shared('models/llama-cpp-vocab');

test('stories260K.gguf: header, metadata and tensor table as its README lists them', () => {
  const f = openGGUF(STORIES);
  try {
    assert.equal(f.version, 3);
    assert.equal(f.metadata.size, 19);
    assert.equal(f.tensors.size, 48);
    assert.equal(f.alignment, 32);
    assert.equal(f.dataOffset, 14176);
    const m = f.metadata;
    assert.equal(m.get('general.architecture'), 'llama');
    assert.equal(m.get('llama.embedding_length'), 64);
    assert.equal(m.get('llama.feed_forward_length'), 172);
    assert.equal(m.get('llama.block_count'), 5);
    assert.equal(m.get('llama.attention.head_count'), 8);
    assert.equal(m.get('llama.attention.head_count_kv'), 4);
    assert.equal(m.get('llama.rope.dimension_count'), 8);
    assert.equal(m.get('llama.context_length'), 2048);
    assert.equal(m.get('llama.attention.layer_norm_rms_epsilon'), Math.fround(1e-5));
    assert.equal(f.metadataTypes.get('llama.attention.layer_norm_rms_epsilon'), 'f32');
    assert.equal(m.get('tokenizer.ggml.model'), 'llama');
    assert.equal(m.get('tokenizer.ggml.unknown_token_id'), 0);
    assert.equal(m.get('tokenizer.ggml.bos_token_id'), 1);
    assert.equal(m.get('tokenizer.ggml.eos_token_id'), 2);
    assert.equal(m.get('tokenizer.ggml.seperator_token_id'), 4294967295);
    assert.equal(m.has('llama.rope.freq_base'), false);
    const tokens = m.get('tokenizer.ggml.tokens') as string[];
    assert.equal(tokens.length, 512);
    assert.deepEqual(tokens.slice(0, 3), ['<unk>', '<s>', '</s>']);
    assert.equal(tokens[3], '<0x00>');
    assert.equal(tokens[258], '<0xFF>');
    assert.deepEqual(f.metadataTypes.get('tokenizer.ggml.tokens'), { array: 'string' });
    const types = m.get('tokenizer.ggml.token_type') as number[];
    const counts: Record<number, number> = {};
    for (const t of types) counts[t] = (counts[t] ?? 0) + 1;
    assert.deepEqual(counts, { 1: 253, 2: 1, 3: 2, 6: 256 });
    assert.equal((m.get('tokenizer.ggml.scores') as number[]).length, 512);

    for (const t of f.tensors.values()) assert.equal(t.dtype, 'f32', t.name);
    const shape = (n: string): readonly number[] => f.tensors.get(n)!.shape;
    assert.deepEqual(shape('token_embd.weight'), [512, 64]);
    assert.deepEqual(f.tensors.get('token_embd.weight')!.ne, [64, 512]);
    assert.deepEqual(shape('output.weight'), [512, 64]);
    assert.deepEqual(shape('output_norm.weight'), [64]);
    assert.deepEqual(shape('blk.0.attn_q.weight'), [64, 64]);
    assert.deepEqual(shape('blk.4.attn_k.weight'), [32, 64]);
    assert.deepEqual(shape('blk.2.ffn_gate.weight'), [172, 64]);
    assert.deepEqual(shape('blk.2.ffn_down.weight'), [64, 172]);
    assert.equal(f.tensors.get('token_embd.weight')!.offset, 14176);
  } finally {
    f.close();
  }
});

test('stories260K.gguf: every tensor equals the llama2.c weight it came from, byte for byte', () => {
  // llama2.c layout: 7 × i32 header, then f32 tables in this order (README: no permutation).
  const bin = fs.readFileSync(STORIES_BIN);
  const [dim, hidden, layers, , , vocab] = [0, 1, 2, 3, 4, 5].map((i) => bin.readInt32LE(i * 4));
  const kvDim = 32;
  const tables: [string, number][] = [
    ['tok', vocab * dim], ['rms_att', layers * dim], ['wq', layers * dim * dim], ['wk', layers * kvDim * dim],
    ['wv', layers * kvDim * dim], ['wo', layers * dim * dim], ['rms_ffn', layers * dim], ['w1', layers * hidden * dim],
    ['w2', layers * dim * hidden], ['w3', layers * hidden * dim], ['rms_final', dim],
  ];
  const at = new Map<string, number>();
  let off = 28;
  for (const [name, n] of tables) { at.set(name, off); off += n * 4; }
  const slice = (table: string, layer: number, n: number): Buffer => bin.subarray(at.get(table)! + layer * n * 4, at.get(table)! + (layer + 1) * n * 4);

  const expected = new Map<string, Buffer>([
    ['token_embd.weight', slice('tok', 0, vocab * dim)],
    ['output.weight', slice('tok', 0, vocab * dim)],
    ['output_norm.weight', slice('rms_final', 0, dim)],
  ]);
  const perLayer: [string, string, number][] = [
    ['attn_norm', 'rms_att', dim], ['attn_q', 'wq', dim * dim], ['attn_k', 'wk', kvDim * dim], ['attn_v', 'wv', kvDim * dim],
    ['attn_output', 'wo', dim * dim], ['ffn_norm', 'rms_ffn', dim], ['ffn_gate', 'w1', hidden * dim],
    ['ffn_down', 'w2', dim * hidden], ['ffn_up', 'w3', hidden * dim],
  ];
  for (let l = 0; l < layers; l++) for (const [g, table, n] of perLayer) expected.set(`blk.${l}.${g}.weight`, slice(table, l, n));

  const f = openWeights(STORIES);
  try {
    assert.deepEqual([...f.tensors.keys()].sort(), [...expected.keys()].sort());
    for (const [name, bytes] of expected) assert.ok(Buffer.from(f.read(name)).equals(bytes), name);
  } finally {
    f.close();
  }
});

test('vocabulary GGUFs: token arrays, merges and tokenizer types as their README lists them', () => {
  const cases: [string, { model: string; pre?: string; tokens: number; merges?: number; bos?: number; eos?: number; addBos?: boolean; known: [number, string][] }][] = [
    ['deepseek-llm', { model: 'gpt2', pre: 'deepseek-llm', tokens: 102400, merges: 99757, bos: 100000, eos: 100001, addBos: true, known: [[100000, '<｜begin▁of▁sentence｜>']] }],
    ['deepseek-coder', { model: 'gpt2', pre: 'deepseek-coder', tokens: 32256, bos: 32013, eos: 32014, addBos: true, known: [] }],
    ['gpt-2', { model: 'gpt2', pre: 'gpt-2', tokens: 50257, merges: 50000, known: [[50256, '<|endoftext|>'], [0, '!']] }],
    ['llama-spm', { model: 'llama', tokens: 32000, known: [[0, '<unk>'], [1, '<s>'], [2, '</s>'], [29871, '▁']] }],
  ];
  const files = fs.readdirSync(VOCAB).filter((f) => f.endsWith('.gguf')).sort();
  assert.deepEqual(files, cases.map(([name]) => `ggml-vocab-${name}.gguf`).sort(), 'every vocabulary file is checked');
  for (const [name, want] of cases) {
    const f = openGGUF(path.join(VOCAB, `ggml-vocab-${name}.gguf`));
    try {
      const m = f.metadata;
      assert.equal(f.tensors.size, 0, name);
      assert.equal(m.get('tokenizer.ggml.model'), want.model, name);
      if (want.pre) assert.equal(m.get('tokenizer.ggml.pre'), want.pre, name);
      const tokens = m.get('tokenizer.ggml.tokens') as string[];
      assert.equal(tokens.length, want.tokens, name);
      assert.ok(tokens.every((t) => typeof t === 'string'), name);
      assert.equal((m.get('tokenizer.ggml.token_type') as number[]).length, want.tokens, name);
      if (want.merges !== undefined) assert.equal((m.get('tokenizer.ggml.merges') as string[]).length, want.merges, name);
      if (want.model === 'llama') assert.equal((m.get('tokenizer.ggml.scores') as number[]).length, want.tokens, name);
      if (want.bos !== undefined) assert.equal(m.get('tokenizer.ggml.bos_token_id'), want.bos, name);
      if (want.eos !== undefined) assert.equal(m.get('tokenizer.ggml.eos_token_id'), want.eos, name);
      if (want.addBos !== undefined) assert.equal(m.get('tokenizer.ggml.add_bos_token'), want.addBos, name);
      for (const [id, piece] of want.known) assert.equal(tokens[id], piece, `${name} token ${id}`);
    } finally {
      f.close();
    }
  }
});

/** Builds GGUF bytes by hand, field by field, independently of the writer under test. */
class Raw {
  private parts: number[] = [];
  u8(v: number): this { this.parts.push(v & 0xff); return this; }
  u32(v: number): this { for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff); return this; }
  u64(v: number | bigint): this { let b = BigInt(v); for (let i = 0; i < 8; i++) { this.parts.push(Number(b & 0xffn)); b >>= 8n; } return this; }
  str(s: string | number[]): this {
    const b = typeof s === 'string' ? [...Buffer.from(s, 'utf8')] : s;
    this.u64(b.length);
    this.parts.push(...b);
    return this;
  }
  pad(to: number): this { while (this.parts.length % to) this.parts.push(0); return this; }
  zeros(n: number): this { for (let i = 0; i < n; i++) this.parts.push(0); return this; }
  get length(): number { return this.parts.length; }
  bytes(): Uint8Array { return Uint8Array.from(this.parts); }
}

const MAGIC = 0x46554747;
const header = (tensors: number, kvs: number, version = 3): Raw => new Raw().u32(MAGIC).u32(version).u64(tensors).u64(kvs);
/** One tensor info: name, ne (GGUF order), ggml type, relative offset. */
const tensorInfo = (r: Raw, name: string, ne: (number | bigint)[], type: number, offset: number | bigint): Raw => {
  r.str(name).u32(ne.length);
  for (const d of ne) r.u64(d);
  return r.u32(type).u64(offset);
};

function parseBytes(bytes: Uint8Array, name = 'bad.gguf') {
  return parseGGUF(bufferSource(name, bytes));
}

function rejects(bytes: Uint8Array, fault: RegExp): void {
  assert.throws(() => parseBytes(bytes), (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected a FormatError, got ${String(e)}`);
    assert.match(e.message, /^bad\.gguf: /);
    assert.match(e.fault, fault);
    return true;
  });
}

test('a hand-assembled GGUF parses to the values written', () => {
  const r = header(2, 4)
    .str('a.u8').u32(0).u8(200)
    .str('a.i64').u32(11).u64(-5n & ((1n << 64n) - 1n))
    .str('a.big').u32(10).u64((1n << 60n) + 1n)
    .str('a.nested').u32(9).u32(9).u64(2).u32(5).u64(1).u32(0xffffffff).u32(5).u64(0);
  tensorInfo(r, 'w', [4, 2], 0, 0);
  tensorInfo(r, 'v', [3], 1, 32);
  r.pad(32);
  const dataOffset = r.length;
  r.zeros(32 + 6);
  const h = parseBytes(r.bytes());
  assert.equal(h.metadata.get('a.u8'), 200);
  assert.equal(h.metadata.get('a.i64'), -5);
  assert.equal(h.metadata.get('a.big'), (1n << 60n) + 1n);
  assert.deepEqual(h.metadata.get('a.nested'), [[-1], []]);
  assert.deepEqual(h.metadataTypes.get('a.nested'), { array: { array: 'i32' } });
  assert.equal(h.dataOffset, dataOffset);
  assert.deepEqual({ ...h.tensors.get('w')! }, { name: 'w', dtype: 'f32', shape: [2, 4], ne: [4, 2], ggmlType: 0, byteLength: 32, file: 'bad.gguf', offset: dataOffset });
  assert.equal(h.tensors.get('v')!.offset, dataOffset + 32);
  assert.equal(h.tensors.get('v')!.byteLength, 6);
});

test('GGUF v2 reads like v3', () => {
  assert.equal(parseBytes(header(0, 1, 2).str('k').u32(8).str('v').bytes()).version, 2);
});

test('every malformed GGUF gives a FormatError naming the file and the fault', () => {
  const ok = header(0, 1).str('k').u32(4).u32(7).bytes();
  assert.equal(parseBytes(ok).metadata.get('k'), 7);

  rejects(ok.subarray(0, ok.length - 2), /^truncated: .* needs 4 bytes but the file has/);
  rejects(ok.subarray(0, 3), /^truncated/);
  rejects(Uint8Array.from([...Buffer.from('GGML'), ...ok.subarray(4)]), /^bad magic/);
  rejects(header(0, 0, 1).bytes(), /GGUF v1 is not supported/);
  rejects(new Raw().u32(MAGIC).u32(0x03000000).zeros(16).bytes(), /big-endian GGUF/);
  rejects(header(0, 0, 4).bytes(), /unsupported GGUF version 4/);
  rejects(header(0, 1).str('k').u32(13).u32(0).bytes(), /'k': unknown value type 13/);
  rejects(header(0, 1).str('k').u32(7).u8(2).bytes(), /bool at byte \d+ is 2, not 0 or 1/);
  rejects(header(0, 1).str('k').u32(8).str([0xc3, 0x28]).bytes(), /'k': string at byte \d+ is not valid UTF-8/);
  rejects(header(0, 1).str('k').u32(8).u64(1000).zeros(10).bytes(), /string length 1000 at byte \d+ runs past the end of the file/);
  rejects(header(0, 1).u64(1n << 62n).zeros(16).bytes(), /^key of metadata entry 0: string length 4611686018427387904 at byte 24 is impossibly large$/);
  rejects(header(0, 1).str('k').u32(9).u32(4).u64(1000).zeros(20).bytes(), /'k': array of 1000 u32 at byte \d+ needs at least 4000 bytes but only 20 remain/);
  rejects(header(0, 1).str('k').u32(9).u32(8).u64(1n << 50n).bytes(), /array of \d+ string .* needs at least/);
  rejects(header(0, 2).str('k').u32(4).u32(1).str('k').u32(4).u32(2).bytes(), /duplicate metadata key 'k'/);
  let deep = header(0, 1).str('k').u32(9);
  for (let i = 0; i < 20; i++) deep = deep.u32(9).u64(1);
  rejects(deep.u32(4).u64(0).bytes(), /nested deeper than 8 levels/);
  rejects(header(0, 1).str('k').u32(9).u32(9).u64(2).u32(4).u64(0).u32(8).u64(0).bytes(), /inner arrays of different types \(array<u32>, then array<string>\)/);

  // Absurd counts are refused from the counts alone, before anything is allocated.
  rejects(header(2 ** 40, 0).zeros(64).bytes(), /tensor count 1099511627776 is impossible/);
  rejects(header(0, 2 ** 45).zeros(64).bytes(), /metadata count 35184372088832 is impossible/);
  rejects(header(Number.MAX_SAFE_INTEGER + 1, 0).bytes(), /tensor count \d+ at byte 8 is impossibly large/);

  // Alignment.
  rejects(header(0, 1).str('general.alignment').u32(4).u32(48).bytes(), /general.alignment must be a u32 power of two, found u32 48/);
  rejects(header(0, 1).str('general.alignment').u32(4).u32(0).bytes(), /general.alignment must be a u32 power of two/);
  rejects(header(0, 1).str('general.alignment').u32(10).u64(32).bytes(), /found u64 32/);

  // Tensor infos.
  /** A file with `count` tensor infos written by `infos`, then `dataBytes` bytes of data. */
  const withTensors = (infos: (r: Raw) => void, dataBytes: number, count = 1, align64 = false): Uint8Array => {
    const r = header(count, align64 ? 1 : 0);
    if (align64) r.str('general.alignment').u32(4).u32(64);
    infos(r);
    return r.pad(align64 ? 64 : 32).zeros(dataBytes).bytes();
  };
  assert.equal(parseBytes(withTensors((r) => tensorInfo(r, 't', [8], 0, 0), 32)).tensors.get('t')!.byteLength, 32);
  rejects(withTensors((r) => tensorInfo(r, 't', [8], 0, 0), 31), /^truncated: tensor 't' ends at byte (\d+) but the file has \d+ bytes/);
  rejects(withTensors((r) => tensorInfo(r, 't', [8], 0, 16), 64), /tensor 't' offset 16 is not a multiple of the alignment 32/);
  rejects(withTensors((r) => tensorInfo(r, 't', [8], 0, 64), 64, 1, true), /tensor 't' ends at byte/);
  assert.equal(parseBytes(withTensors((r) => tensorInfo(r, 't', [8], 0, 64), 96, 1, true)).alignment, 64);
  rejects(withTensors((r) => tensorInfo(r, 't', [8], 23, 0), 64), /tensor 't' has unknown ggml type 23/);
  rejects(withTensors((r) => tensorInfo(r, 't', [1, 1, 1, 1, 1, 1, 1, 1, 1], 0, 0), 64), /tensor 't' has n_dims 9, more than 8/);
  rejects(withTensors((r) => r.str('t').u32(0xffffffff), 64), /n_dims 4294967295/);
  rejects(withTensors((r) => tensorInfo(r, 't', [16], 2, 0), 64), /tensor 't': rows of 16 elements are not a whole number of q4_0 blocks \(32\)/);
  rejects(withTensors((r) => tensorInfo(r, 't', [], 2, 0), 64), /tensor 't': rows of 1 elements are not a whole number of q4_0 blocks/);
  rejects(withTensors((r) => tensorInfo(r, 't', [2 ** 40, 2 ** 40], 0, 0), 64), /tensor 't' has too many elements/);
  rejects(withTensors((r) => tensorInfo(r, 't', [1n << 60n], 0, 0), 64), /ne\[0\] of tensor 't' \d+ at byte \d+ is impossibly large/);

  const two = (a: string, offA: number, b: string, offB: number) => (r: Raw) => { tensorInfo(r, a, [16], 0, offA); tensorInfo(r, b, [16], 0, offB); };
  assert.equal(parseBytes(withTensors(two('a', 0, 'b', 64), 128, 2)).tensors.size, 2);
  rejects(withTensors(two('a', 0, 'b', 32), 128, 2), /tensors 'a' \(bytes \d+\.\.\d+\) and 'b' \(bytes \d+\.\.\d+\) overlap/);
  rejects(withTensors(two('a', 0, 'a', 64), 128, 2), /duplicate tensor name 'a'/);
});

test('openWeights finds GGUF files by extension, by magic and in a directory', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-gguf-'));
  try {
    const noExt = path.join(dir, 'model.bin');
    fs.copyFileSync(STORIES, noExt);
    const a = openWeights(noExt);
    assert.equal(a.tensors.size, 48);
    a.close();
    fs.rmSync(noExt);

    assert.throws(() => openWeights(dir), (e: unknown) => e instanceof FormatError && /no weights found/.test(e.message));
    fs.copyFileSync(STORIES, path.join(dir, 'stories.gguf'));
    const b = openWeights(dir);
    assert.equal(b.path, path.join(dir, 'stories.gguf'));
    assert.deepEqual(b.tensors.get('token_embd.weight')!.shape, [512, 64]);
    b.close();
    fs.copyFileSync(STORIES, path.join(dir, 'other.gguf'));
    assert.throws(() => openWeights(dir), /several \.gguf files \(other\.gguf, stories\.gguf\)/);

    const junk = path.join(dir, 'junk.bin');
    fs.writeFileSync(junk, 'hello, world');
    assert.throws(() => openWeights(junk), (e: unknown) => e instanceof FormatError && /neither a GGUF file/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('read() fills caller memory (a view of shared memory, as the kernels use) and readRange() reads a slice', () => {
  const f = openGGUF(STORIES);
  try {
    const bin = fs.readFileSync(STORIES_BIN);
    const embd = bin.subarray(28, 28 + 512 * 64 * 4);
    const mem = new SharedArrayBuffer(4 << 16);
    const dst = new Uint8Array(mem, 1024, 512 * 64 * 4 + 100);
    const got = f.read('token_embd.weight', dst);
    assert.equal(got.buffer, mem);
    assert.equal(got.byteOffset, 1024);
    assert.equal(got.length, 512 * 64 * 4);
    assert.ok(Buffer.from(got).equals(embd));
    // Row 300 of the embedding alone.
    const row = f.readRange('token_embd.weight', 300 * 256, new Uint8Array(256));
    assert.ok(Buffer.from(row).equals(embd.subarray(300 * 256, 301 * 256)));
    assert.throws(() => f.read('token_embd.weight', new Uint8Array(10)), RangeError);
    assert.throws(() => f.readRange('output_norm.weight', 200, new Uint8Array(100)), RangeError);
    assert.throws(() => f.read('nope'), (e: unknown) => e instanceof FormatError && /no tensor named 'nope'/.test(e.message));
  } finally {
    f.close();
  }
});
