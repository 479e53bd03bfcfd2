import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormatError } from '../../src/formats/errors.js';
import { openSafetensors, parseSafetensorsHeader } from '../../src/formats/safetensors.js';
import { encodeSafetensors, writeShardedSafetensors, type SafetensorsWriteTensor } from '../../src/formats/safetensors-writer.js';
import { bufferSource } from '../../src/formats/source.js';
import { openWeights } from '../../src/formats/weights.js';

const TINY_V4 = fileURLToPath(new URL('../../../../shared/spec/testdata/tiny_v4/', import.meta.url));

/** safetensors dtype strings → minke dtype names (spec/deepseek-v4.md §10.1, §11.2). */
const DTYPE: Record<string, string> = { BF16: 'bf16', F32: 'f32', I8: 'i8', I64: 'i64', F8_E4M3: 'f8_e4m3', F8_E8M0: 'e8m0' };

/**
 * Every tensor of a DeepSeek-V4 checkpoint, from its HF config.json, by the rules of
 * spec/deepseek-v4.md §5.1, §6.1, §6.4, §6.5, §7.1, §8 and §11.2.
 */
function expectedV4Tensors(c: Record<string, number & number[]>): Map<string, [string, number[]]> {
  const D = c.hidden_size, H = c.num_attention_heads, Dh = c.head_dim, Rq = c.q_lora_rank;
  const G = c.o_groups, Ro = c.o_lora_rank, E = c.n_routed_experts, inter = c.moe_intermediate_size;
  const Hc = c.hc_mult, mix = (2 + Hc) * Hc, Hi = c.index_n_heads, Di = c.index_head_dim;
  const out = new Map<string, [string, number[]]>();
  const add = (name: string, dtype: string, shape: number[]): void => {
    assert.ok(!out.has(name), `expected list names ${name} twice`);
    out.set(name, [dtype, shape]);
  };
  const fp8 = (p: string, rows: number, cols: number): void => {
    add(`${p}.weight`, 'F8_E4M3', [rows, cols]);
    add(`${p}.scale`, 'F8_E8M0', [Math.ceil(rows / 128), Math.ceil(cols / 128)]);
  };
  const fp4 = (p: string, rows: number, cols: number): void => {
    add(`${p}.weight`, 'I8', [rows, cols / 2]);
    add(`${p}.scale`, 'F8_E8M0', [rows, cols / 32]);
  };
  const compressor = (p: string, ratio: number, d: number): void => {
    const c2 = ratio === 4 ? 2 : 1; // overlapping windows at ratio 4
    add(`${p}.wkv.weight`, 'BF16', [c2 * d, D]);
    add(`${p}.wgate.weight`, 'BF16', [c2 * d, D]);
    add(`${p}.ape`, 'F32', [ratio, c2 * d]);
    add(`${p}.norm.weight`, 'BF16', [d]);
  };
  const block = (p: string, ratio: number, hashRouted: boolean): void => {
    add(`${p}attn_norm.weight`, 'BF16', [D]);
    add(`${p}ffn_norm.weight`, 'BF16', [D]);
    for (const k of ['attn', 'ffn']) {
      add(`${p}hc_${k}_fn`, 'F32', [mix, Hc * D]);
      add(`${p}hc_${k}_base`, 'F32', [mix]);
      add(`${p}hc_${k}_scale`, 'F32', [3]);
    }
    add(`${p}attn.attn_sink`, 'F32', [H]);
    fp8(`${p}attn.wq_a`, Rq, D);
    add(`${p}attn.q_norm.weight`, 'BF16', [Rq]);
    fp8(`${p}attn.wq_b`, H * Dh, Rq);
    fp8(`${p}attn.wkv`, Dh, D);
    add(`${p}attn.kv_norm.weight`, 'BF16', [Dh]);
    fp8(`${p}attn.wo_a`, G * Ro, (H / G) * Dh);
    fp8(`${p}attn.wo_b`, D, G * Ro);
    if (ratio > 0) compressor(`${p}attn.compressor`, ratio, Dh);
    if (ratio === 4) {
      fp8(`${p}attn.indexer.wq_b`, Hi * Di, Rq);
      add(`${p}attn.indexer.weights_proj.weight`, 'BF16', [Hi, D]);
      compressor(`${p}attn.indexer.compressor`, 4, Di);
    }
    add(`${p}ffn.gate.weight`, 'BF16', [E, D]);
    if (hashRouted) add(`${p}ffn.gate.tid2eid`, 'I64', [c.vocab_size, c.num_experts_per_tok]);
    else add(`${p}ffn.gate.bias`, 'F32', [E]);
    for (let e = 0; e < E; e++) {
      fp4(`${p}ffn.experts.${e}.w1`, inter, D);
      fp4(`${p}ffn.experts.${e}.w3`, inter, D);
      fp4(`${p}ffn.experts.${e}.w2`, D, inter);
    }
    fp8(`${p}ffn.shared_experts.w1`, inter, D);
    fp8(`${p}ffn.shared_experts.w3`, inter, D);
    fp8(`${p}ffn.shared_experts.w2`, D, inter);
  };
  const head = (p: string): void => {
    add(`${p}norm.weight`, 'BF16', [D]);
    add(`${p}hc_head_fn`, 'F32', [Hc, Hc * D]);
    add(`${p}hc_head_base`, 'F32', [Hc]);
    add(`${p}hc_head_scale`, 'F32', [1]);
  };
  add('embed.weight', 'BF16', [c.vocab_size, D]);
  add('head.weight', 'BF16', [c.vocab_size, D]);
  head('');
  for (let l = 0; l < c.num_hidden_layers; l++) block(`layers.${l}.`, c.compress_ratios[l], l < c.num_hash_layers);
  for (let m = 0; m < c.num_nextn_predict_layers; m++) {
    const p = `mtp.${m}.`;
    const layer = c.num_hidden_layers + m;
    block(p, c.compress_ratios[layer], false); // MTP layers never hash-route
    fp8(`${p}e_proj`, D, D);
    fp8(`${p}h_proj`, D, D);
    add(`${p}enorm.weight`, 'BF16', [D]);
    add(`${p}hnorm.weight`, 'BF16', [D]);
    head(p);
  }
  return out;
}

test('tiny_v4/model.safetensors holds exactly the tensors the V4 spec derives from its config', () => {
  const config = JSON.parse(fs.readFileSync(path.join(TINY_V4, 'config.json'), 'utf8'));
  const expected = expectedV4Tensors(config);
  // The config mixes layer kinds: SWA, CSA (ratio 4, with indexer) and a non-overlapping compressor.
  assert.deepEqual(config.compress_ratios, [0, 4, 8, 4, 0]);

  const f = openSafetensors(path.join(TINY_V4, 'model.safetensors'));
  try {
    assert.deepEqual([...f.tensors.keys()].sort(), [...expected.keys()].sort());
    for (const [name, [dtype, shape]] of expected) {
      const t = f.tensors.get(name)!;
      assert.equal(t.dtype, DTYPE[dtype], `${name} dtype`);
      assert.deepEqual(t.shape, shape, `${name} shape`);
    }
    assert.equal(f.metadata.format, 'pt');

    // Offsets against the raw header, decoded here without the parser.
    const raw = fs.readFileSync(path.join(TINY_V4, 'model.safetensors'));
    const n = Number(raw.readBigUInt64LE(0));
    const json = JSON.parse(raw.subarray(8, 8 + n).toString('utf8'));
    for (const [name, t] of f.tensors) {
      const [begin, end] = json[name].data_offsets;
      assert.equal(t.offset, 8 + n + begin, name);
      assert.equal(t.byteLength, end - begin, name);
    }
    for (const name of ['embed.weight', 'layers.0.ffn.gate.tid2eid', 'mtp.0.hc_head_scale', 'layers.2.attn.compressor.ape']) {
      const t = f.tensors.get(name)!;
      assert.ok(Buffer.from(f.read(name)).equals(raw.subarray(t.offset, t.offset + t.byteLength)), name);
    }
    // tid2eid holds expert ids (I64) below n_routed_experts.
    const ids = new BigInt64Array(f.read('layers.0.ffn.gate.tid2eid').slice().buffer);
    assert.ok(ids.every((v) => v >= 0n && v < BigInt(config.n_routed_experts)));
  } finally {
    f.close();
  }
});

/** A safetensors file from a header object (or raw header text) and `dataBytes` bytes of data. */
function stFile(header: unknown, dataBytes: number, lengthField?: bigint): Uint8Array {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(text.length), true);
  out.set(text, 8);
  return out;
}

function rejects(bytes: Uint8Array, fault: RegExp): void {
  assert.throws(() => parseSafetensorsHeader(bufferSource('bad.safetensors', bytes)), (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected a FormatError, got ${String(e)}`);
    assert.match(e.message, /^bad\.safetensors: /);
    assert.match(e.fault, fault);
    return true;
  });
}

test('a hand-built safetensors file parses, and every malformed one gives a FormatError naming the fault', () => {
  const good = { __metadata__: { a: 'b' }, x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] }, y: { dtype: 'BF16', shape: [], data_offsets: [24, 26] } };
  const h = parseSafetensorsHeader(bufferSource('ok', stFile(good, 26)));
  const headerLen = JSON.stringify(good).length;
  assert.deepEqual(h.metadata, { a: 'b' });
  assert.deepEqual({ ...h.tensors.get('x')! }, { name: 'x', dtype: 'f32', shape: [2, 3], byteLength: 24, file: 'ok', offset: 8 + headerLen });
  assert.deepEqual(h.tensors.get('y')!.shape, []);
  assert.equal(h.dataOffset, 8 + headerLen);

  const x = (entry: Record<string, unknown>, dataBytes = 64): Uint8Array => stFile({ x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24], ...entry } }, dataBytes);
  rejects(new Uint8Array(5), /^truncated: 5 bytes, too short for the 8-byte header length$/);
  rejects(stFile(good, 26, 1000n), /^header length 1000 runs past the end of the file \(\d+ bytes\)$/);
  rejects(stFile(good, 26, 1n << 63n), /^header length 9223372036854775808 runs past the end of the file/);
  rejects(stFile('{"x": {"dtype": "F32",', 10), /^invalid header JSON: /);
  rejects(stFile('[1, 2]', 10), /^header does not start with '\{'/);
  rejects(stFile('{} ', 0).map((b, i) => (i === 9 ? 0xff : b)), /^invalid header JSON/);
  rejects(stFile('"x"', 0), /does not start with/);
  rejects(stFile('{"x": 5}', 0), /^tensor 'x': entry is not an object$/);
  rejects(x({ dtype: 'F4' }), /^tensor 'x': unknown dtype "F4"$/);
  rejects(x({ dtype: 7 }), /^tensor 'x': dtype is missing or not a string$/);
  rejects(x({ shape: [2, -3] }), /^tensor 'x': shape \[2,-3\] is not a list of non-negative integers$/);
  rejects(x({ shape: 'big' }), /shape "big" is not a list/);
  rejects(x({ data_offsets: [0] }), /data_offsets \[0\] is not a pair of non-negative integers/);
  rejects(x({ data_offsets: [0, 1.5] }), /is not a pair of non-negative integers/);
  rejects(x({ shape: [2, 4] }), /^tensor 'x': shape \[2, 4\] of F32 is 32 bytes but data_offsets \[0, 24\] hold 24$/);
  rejects(x({ shape: [2 ** 40, 2 ** 40] }), /shape \[1099511627776, 1099511627776\] of F32 is too many bytes/);
  rejects(x({ data_offsets: [24, 0] }), /^tensor 'x': data_offsets \[24, 0\] end before they start$/);
  rejects(x({}, 20), /^truncated: tensor 'x' ends at byte (\d+) but the file has \d+ bytes$/);
  rejects(stFile({ a: { dtype: 'U8', shape: [8], data_offsets: [0, 8] }, b: { dtype: 'U8', shape: [4], data_offsets: [6, 10] } }, 16),
    /^tensors 'a' \(bytes \d+\.\.\d+\) and 'b' \(bytes \d+\.\.\d+\) overlap$/);
  rejects(stFile({ __metadata__: { n: 5 } }, 0), /__metadata__ value of 'n' is not a string/);
  rejects(stFile({ __metadata__: [] }, 0), /__metadata__ is not an object/);
  // Empty tensors may share an offset with their neighbours.
  assert.equal(parseSafetensorsHeader(bufferSource('ok', stFile({ a: { dtype: 'U8', shape: [0], data_offsets: [0, 0] }, b: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, 2))).tensors.size, 2);
});

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'minke-st-'));
}

test('sharded checkpoint (hand-written shards and index): tensors come from the shard the index names', () => {
  const dir = tmpDir();
  try {
    const shard = (tensors: Record<string, number[]>): Uint8Array => {
      const header: Record<string, unknown> = {};
      const data: number[] = [];
      for (const [name, values] of Object.entries(tensors)) {
        header[name] = { dtype: 'U8', shape: [values.length], data_offsets: [data.length, data.length + values.length] };
        data.push(...values);
      }
      const f = stFile(header, data.length);
      f.set(data, f.length - data.length);
      return f;
    };
    fs.writeFileSync(path.join(dir, 'a.safetensors'), shard({ 'l.0.w': [1, 2, 3], 'l.0.b': [4] }));
    fs.writeFileSync(path.join(dir, 'b.safetensors'), shard({ 'l.1.w': [5, 6], 'unmapped': [9] }));
    const index = { metadata: { total_size: 6 }, weight_map: { 'l.0.w': 'a.safetensors', 'l.1.w': 'b.safetensors', 'l.0.b': 'a.safetensors' } };
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));

    for (const f of [openSafetensors(dir), openWeights(dir), openWeights(path.join(dir, 'model.safetensors.index.json'))]) {
      try {
        assert.deepEqual([...f.tensors.keys()], ['l.0.w', 'l.1.w', 'l.0.b']);
        assert.equal(f.tensors.get('l.1.w')!.file, path.join(dir, 'b.safetensors'));
        assert.deepEqual([...f.read('l.0.w')], [1, 2, 3]);
        assert.deepEqual([...f.read('l.1.w')], [5, 6]);
        assert.deepEqual([...f.read('l.0.b')], [4]);
        assert.deepEqual([...f.readRange('l.0.w', 1, new Uint8Array(2))], [2, 3]);
      } finally {
        f.close();
      }
    }
    assert.equal(openSafetensors(dir).metadata.total_size, '6');

    const withIndex = (weightMap: unknown, fault: RegExp): void => {
      fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), typeof weightMap === 'string' ? weightMap : JSON.stringify({ weight_map: weightMap }));
      assert.throws(() => openSafetensors(dir), (e: unknown) => {
        assert.ok(e instanceof FormatError, String(e));
        assert.match(e.message, /model\.safetensors\.index\.json: /);
        assert.match(e.fault, fault);
        return true;
      });
    };
    withIndex({ 'l.0.w': 'missing.safetensors' }, /^shard 'missing\.safetensors' \(holding tensor 'l\.0\.w'\) is missing$/);
    withIndex({ 'l.0.w': 'a.safetensors', 'l.9.w': 'b.safetensors' }, /^tensor 'l\.9\.w' is mapped to shard 'b\.safetensors' but that shard has no such tensor$/);
    withIndex({ 'l.0.w': '../a.safetensors' }, /not a file name inside the checkpoint directory/);
    withIndex({ 'l.0.w': 7 }, /is mapped to 7/);
    withIndex({}, /weight_map lists no tensors/);
    withIndex('{"weight_map": ', /^invalid JSON/);
    withIndex('{"metadata": {}}', /has no "weight_map" object/);

    // A corrupt shard is reported under its own name.
    fs.writeFileSync(path.join(dir, 'b.safetensors'), shard({ 'l.1.w': [5, 6] }).subarray(0, 30));
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    assert.throws(() => openSafetensors(dir), (e: unknown) => e instanceof FormatError && e.file === path.join(dir, 'b.safetensors'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('sharded writer → reader round trip over several dtypes; directory with model.safetensors', () => {
  const dir = tmpDir();
  try {
    const fill = (n: number, k: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + k) & 0xff);
    const shards: SafetensorsWriteTensor[][] = [
      [{ name: 'embed.weight', dtype: 'bf16', shape: [16, 8], data: fill(256, 1) }, { name: 'x.scale', dtype: 'e8m0', shape: [1, 1], data: fill(1, 2) }],
      [{ name: 'x.weight', dtype: 'f8_e4m3', shape: [4, 4], data: () => fill(16, 3) }, { name: 'ids', dtype: 'i64', shape: [3, 2], data: fill(48, 4) }],
      [{ name: 'head.weight', dtype: 'f32', shape: [2, 8], data: fill(64, 5) }],
    ];
    const files = writeShardedSafetensors(dir, shards, { format: 'pt' });
    assert.deepEqual(files, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    assert.equal(index.metadata.total_size, 256 + 1 + 16 + 48 + 64);
    assert.equal(index.weight_map['ids'], files[1]);
    const f = openWeights(dir);
    try {
      shards.forEach((tensors) => {
        for (const t of tensors) {
          const info = f.tensors.get(t.name)!;
          assert.equal(info.dtype, t.dtype);
          assert.deepEqual(info.shape, t.shape);
          assert.deepEqual(f.read(t.name), typeof t.data === 'function' ? t.data() : t.data);
        }
      });
    } finally {
      f.close();
    }
    // Each shard's data section starts 8-byte aligned (header padded with spaces).
    const raw = fs.readFileSync(path.join(dir, files[0]));
    assert.equal(Number(raw.readBigUInt64LE(0)) % 8, 0);

    const single = path.join(dir, 'single');
    fs.mkdirSync(single);
    fs.writeFileSync(path.join(single, 'model.safetensors'), encodeSafetensors(shards[0], { a: 'b' }));
    const s = openSafetensors(single);
    assert.deepEqual(s.metadata, { a: 'b' });
    assert.deepEqual(s.read('x.scale'), fill(1, 2));
    s.close();
    fs.rmSync(path.join(single, 'model.safetensors'));
    assert.throws(() => openSafetensors(single), /neither model\.safetensors\.index\.json nor model\.safetensors/);
    assert.throws(() => encodeSafetensors([{ name: 'q', dtype: 'q4_0', shape: [32], data: new Uint8Array(18) }]), /dtype q4_0 has no safetensors name/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
