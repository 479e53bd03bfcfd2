/**
 * bench/synth-v3.ts: a checkpoint generated for the tiny fixture's config.json holds exactly the
 * fixture's tensors (names, dtypes, shapes — its MTP layer model.layers.4.* included, listed by
 * v3MtpTensors), in the official sharded layout; values in the promised ranges (FP8 E4M3 and tile
 * scales decoded here from spec §3's definition); it loads through loadModel and gives finite,
 * non-constant logits. The presets: 'v3' against the released model's published sizes, 'bench'
 * with MLA's real per-head dims in a few hundred MB.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { v3MtpTensors, v3SynthConfig, writeSyntheticV3 } from '../../bench/synth-v3.js';
import { openSafetensors, type SafetensorsFile } from '../../src/formats/safetensors.js';
import { v3ConfigFromHF, v3Tensors } from '../../src/models/deepseek-v3-config.js';
import type { ExpectedTensor } from '../../src/models/deepseek-v4-config.js';
import { loadModel } from '../../src/models/index.js';
import type { DeepseekV3Model } from '../../src/models/deepseek-v3.js';
import { byteSize } from '../../src/tensor/dtype.js';
import { sharedPath } from './util.js';

const FIXTURE = sharedPath('fixtures/deepseek-v3-tiny');
const readJson = (file: string): Record<string, unknown> => JSON.parse(fs.readFileSync(file, 'utf8'));
const fixtureConfig = readJson(path.join(FIXTURE, 'config.json'));

const numel = (t: ExpectedTensor): number => t.shape.reduce((a, b) => a * b, 1);
const bytesOf = (t: ExpectedTensor): number => byteSize(t.dtype, numel(t))!;
const entries = (f: SafetensorsFile) => [...f.tensors.values()].map(({ name, dtype, shape }) => ({ name, dtype, shape: [...shape] }));
const byName = (l: readonly ExpectedTensor[]) => [...l].map(({ name, dtype, shape }) => ({ name, dtype, shape: [...shape] })).sort((a, b) => (a.name < b.name ? -1 : 1));
/** Main-model and MTP tensors of an HF config.json object. */
const tensorLists = (config: Record<string, unknown>) => {
  const c = v3ConfigFromHF(config, 'config.json');
  return { main: v3Tensors(c), mtp: v3MtpTensors(c) };
};

/** E4M3FN (spec §3: FP8 E4M3FN weights), written from the format table. */
function e4m3(code: number): number {
  const s = code & 0x80 ? -1 : 1, e = (code >> 3) & 15, m = code & 7;
  return s * (e === 0 ? 2 ** -6 * (m / 8) : 2 ** (e - 7) * (1 + m / 8));
}
const bf16 = (bits: number): number => new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
function rms(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s / v.length);
}

describe('v3SynthConfig', () => {
  it("'v3' gives the released tensor sizes: 671B main parameters, 11.5B unique MTP ones, the weight files' bytes", () => {
    const { main, mtp } = tensorLists(v3SynthConfig('v3'));
    const params = (l: ExpectedTensor[]) => l.filter((t) => !t.name.endsWith('weight_scale_inv')).reduce((s, t) => s + numel(t), 0);
    // README_WEIGHTS.md of deepseek-ai/DeepSeek-V3: 671B main; MTP 11.5B unique (its embed_tokens and shared_head.head repeat the main ones).
    assert.ok(Math.abs(params(main) / 1e9 - 671) < 0.5, `main ${params(main)}`);
    const unique = params(mtp.filter((t) => !/\.(embed_tokens|shared_head\.head)\.weight$/.test(t.name)));
    assert.ok(Math.abs(unique / 1e9 - 11.5) < 0.15, `MTP ${unique}`);
    // The 163 released shards hold 688,586,727,753 bytes: tensors + ~12 MB of JSON headers (a FP8 eh_proj would be 103 MB less).
    const headers = 688586727753 - [...main, ...mtp].reduce((s, t) => s + bytesOf(t), 0);
    assert.ok(headers > 0 && headers < 16e6, `${headers} bytes of headers`);
    const shape = (name: string) => [...main, ...mtp].find((t) => t.name === name)?.shape;
    assert.deepEqual(shape('model.layers.61.eh_proj.weight'), [7168, 14336]);
    assert.deepEqual(shape('model.layers.61.mlp.experts.255.down_proj.weight_scale_inv'), [56, 16]);
    assert.deepEqual(shape('model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv'), [5, 56]);
    assert.equal(shape('model.layers.2.mlp.gate.weight'), undefined);
    assert.deepEqual(shape('model.layers.3.mlp.gate.e_score_correction_bias'), [256]);
  });

  it("'bench': MLA's per-head dims and V3's routing and YaRN, 200–500 MB", (t) => {
    const config = v3SynthConfig('bench');
    const c = v3ConfigFromHF(config, 'bench');
    const { main, mtp } = tensorLists(config);
    const total = main.reduce((s, x) => s + bytesOf(x), 0);
    t.diagnostic(`bench preset: ${main.length} tensors, ${total} bytes`);
    assert.ok(total > 200e6 && total < 500e6, `${total}`);
    assert.equal(mtp.length, 0);
    assert.deepEqual([c.nopeDim, c.ropeDim, c.vDim, c.kvLoraRank], [128, 64, 128, 512]);
    assert.deepEqual([c.scoring, c.selectionBias, c.experts, c.topK, c.groups, c.topkGroups, c.denseLayers], ['sigmoid', true, 32, 8, 4, 2, 1]);
    assert.deepEqual(c.yarn, { factor: 40, originalContext: 4096, betaFast: 32, betaSlow: 1, mscale: 1 });
    assert.throws(() => v3SynthConfig('r1' as 'bench'), /unknown synthetic V3 preset "r1"/);
  });
});

describe('writeSyntheticV3 on the tiny fixture config', () => {
  let tmp: string, dir: string;
  const { main, mtp } = tensorLists(fixtureConfig);
  const total = [...main, ...mtp].reduce((s, t) => s + bytesOf(t), 0);
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-synth-v3-'));
    dir = path.join(tmp, 'a');
    writeSyntheticV3(dir, fixtureConfig, { seed: 3, shardBytes: 2 ** 20 });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("has exactly the fixture's tensors: names, dtypes, shapes, MTP layer 4 included", () => {
    const fixture = openSafetensors(path.join(FIXTURE, 'model.safetensors'));
    const synth = openSafetensors(dir);
    try {
      assert.equal(fixture.tensors.size, 309);
      assert.deepEqual(byName(entries(synth)), byName(entries(fixture)));
      assert.equal(mtp.length, [...fixture.tensors.keys()].filter((n) => n.startsWith('model.layers.4.')).length);
    } finally {
      fixture.close();
      synth.close();
    }
  });

  it('is laid out as the official checkpoints: numbered shards, index, embed first, MTP in the last shard', () => {
    assert.deepEqual(readJson(path.join(dir, 'config.json')), fixtureConfig);
    const index = readJson(path.join(dir, 'model.safetensors.index.json')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    assert.equal(index.metadata.total_size, total);
    const shards = [...new Set(Object.values(index.weight_map))].sort();
    const n = shards.length;
    assert.ok(n >= 3, `${n} shards`);
    assert.deepEqual(shards, Array.from({ length: n }, (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', ...shards, 'model.safetensors.index.json'].sort());
    assert.equal(index.weight_map['model.embed_tokens.weight'], shards[0]);
    assert.equal(index.weight_map['lm_head.weight'], shards[n - 2]);
    for (const [name, file] of Object.entries(index.weight_map)) assert.equal(file === shards[n - 1], name.startsWith('model.layers.4.'), name);
  });

  it('holds values in range: FP8 projections of rms ≈ 1/sqrt(in), positive varying tile scales, norms ≈ 1', () => {
    const f = openSafetensors(dir);
    const meanSquares: number[] = [];
    try {
      for (const t of f.tensors.values()) {
        const b = f.read(t.name);
        if (t.dtype === 'f8_e4m3') {
          assert.ok(b.every((c) => (c & 0x7f) !== 0x7f), `${t.name}: E4M3 NaN code`);
          assert.ok(new Set(b).size > 40, `${t.name}: ${new Set(b).size} distinct codes`);
          const codes = Float64Array.from(b, e4m3);
          assert.ok(Math.abs(rms(codes) / 64 - 1) < 0.2, `${t.name}: code rms ${rms(codes)}`);
          const s = f.read(`${t.name}_scale_inv`), scale = new Float32Array(s.buffer, s.byteOffset, s.length / 4);
          const [rows, cols] = t.shape, tiles = Math.ceil(cols / 128);
          const w = codes.map((c, i) => c * scale[Math.floor(i / cols / 128) * tiles + Math.floor((i % cols) / 128)]);
          // The tiny config's projections have 1 or 2 tiles: each one's rms follows its own scale; over all, E[rms²·in] = 1.
          const r = rms(w) * Math.sqrt(cols);
          assert.ok(r > 0.4 && r < 1.6, `${t.name} [${rows}, ${cols}]: rms·sqrt(in) = ${r}`);
          meanSquares.push(r * r);
        } else if (t.name.endsWith('weight_scale_inv')) {
          const v = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
          const cols = f.tensors.get(t.name.replace(/_scale_inv$/, ''))!.shape[1];
          const base = 1 / (64 * Math.sqrt(cols));
          assert.ok(v.every((x) => x > 0.4 * base && x < 1.5 * base), `${t.name}: scale outside 0.4 … 1.5 × 2^-6/sqrt(in)`);
          assert.ok(new Set(v).size > 1 || v.length === 1, `${t.name}: constant scales`);
        } else if (t.dtype === 'bf16') {
          const v = Float64Array.from(new Uint16Array(b.buffer, b.byteOffset, b.length / 2), bf16);
          if (t.name.endsWith('norm.weight')) assert.ok(v.every((x) => x > 0.7 && x < 1.3), `${t.name}: norm weight far from 1`);
          else if (t.name.endsWith('embed_tokens.weight')) assert.ok(Math.abs(rms(v) - 1) < 0.1, `${t.name}: rms ${rms(v)}`);
          else assert.ok(Math.abs(rms(v) * Math.sqrt(t.shape[1]) - 1) < 0.15, `${t.name}: rms·sqrt(in) = ${rms(v) * Math.sqrt(t.shape[1])}`);
        } else {
          assert.ok(t.name.endsWith('e_score_correction_bias') && t.dtype === 'f32', t.name);
          const v = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
          assert.ok(v.every((x) => Math.abs(x) < 0.06) && new Set(v).size === v.length, `${t.name}: ${v}`);
        }
      }
      const mean = meanSquares.reduce((a, x) => a + x, 0) / meanSquares.length;
      assert.ok(meanSquares.length > 100 && Math.abs(mean - 1) < 0.15, `mean of rms²·in over ${meanSquares.length} projections: ${mean}`);
    } finally {
      f.close();
    }
  });

  it('loads with loadModel (the MTP layer accepted and skipped) and gives finite, varied logits', async () => {
    const model = await loadModel(dir, { threads: 1 }) as DeepseekV3Model;
    try {
      assert.equal(model.description.architecture, 'deepseek_v3');
      const seq = model.newSequence({ contextLength: 32 });
      const check = (logits: Float32Array, what: string) => {
        assert.equal(logits.length, 512, what);
        assert.ok(logits.every(Number.isFinite), `${what}: non-finite logit`);
        const r = rms(logits);
        assert.ok(r > 0.1 && r < 100, `${what}: logits rms ${r}`);
      };
      const first = await seq.forward([5, 17, 300, 42]);
      check(first, 'prefill');
      check(await seq.forward([7]), 'decode');
      // Routed experts came from the generated shards too (loaded on first use).
      assert.ok(seq.weightBytesRead > 0);
      seq.free();
    } finally {
      await model.close();
    }
  });

  it('gives the same bytes for the same seed whatever the sharding, and others for another seed', () => {
    const same = path.join(tmp, 'same'), other = path.join(tmp, 'other');
    writeSyntheticV3(same, fixtureConfig, { seed: 3 });
    writeSyntheticV3(other, fixtureConfig, { seed: 4 });
    const [a, b, c] = [dir, same, other].map((d) => openSafetensors(d));
    try {
      assert.equal(new Set(Object.values(readJson(path.join(same, 'model.safetensors.index.json')).weight_map as object)).size, 2); // main + MTP
      for (const name of a.tensors.keys()) assert.deepEqual(b.read(name), a.read(name), name);
      for (const name of ['model.embed_tokens.weight', 'model.layers.1.self_attn.q_b_proj.weight', 'model.layers.2.mlp.experts.3.down_proj.weight_scale_inv']) {
        assert.notDeepEqual(c.read(name), a.read(name), name);
      }
    } finally {
      [a, b, c].forEach((f) => f.close());
    }
  });

  it('refuses a non-empty directory, bad options and a bad config', () => {
    assert.throws(() => writeSyntheticV3(dir, fixtureConfig), /^Error: writeSyntheticV3: .* is not empty$/);
    assert.throws(() => writeSyntheticV3(path.join(tmp, 'x'), fixtureConfig, { shardBytes: 1.5 }), /shardBytes must be a positive integer, got 1.5/);
    assert.throws(() => writeSyntheticV3(path.join(tmp, 'y'), { ...fixtureConfig, n_group: 3 }), /n_routed_experts 8 is not a multiple of n_group 3/);
    assert.ok(!fs.existsSync(path.join(tmp, 'y')));
  });
});
