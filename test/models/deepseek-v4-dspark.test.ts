/**
 * DeepSeek-V4 checkpoints in the V4-DSpark form (deepseek-v41.md §8.2: DSpark draft stages in
 * place of the MTP block) on a synthetic checkpoint (bench/synth-v4.ts, the tiny fixture's config
 * plus dspark_* keys, num_nextn_predict_layers left at 1 and two stages written): the config and
 * the tensor check, prefill = decode for the logits and the drafts, a draft round against the
 * spec's formulas recomputed here from the checkpoint's bytes (taps → main_x → ring keys; h →
 * head logits + Markov bias, confidences), no state change by dspark(), the stage rings in the
 * saved state, and the Engine at temperature 0 with and without DSpark speculation.
 *
 * Not covered: the stage blocks themselves against an independent implementation (they are V4
 * blocks run by the code the V4 fixture tests check), and the official DSpark-head code (not
 * public here; the form follows a port's notes).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeSyntheticV4 } from '../../bench/synth-v4.js';
import { Engine } from '../../src/engine/engine.js';
import { openSafetensors, type SafetensorsFile } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensors-writer.js';
import { v4ConfigFromHF } from '../../src/models/deepseek-v4-config.js';
import type { DeepseekV4Model, DeepseekV4Sequence } from '../../src/models/deepseek-v4.js';
import { describeModel, loadModel } from '../../src/models/index.js';
import { rng } from '../support/rng.js';
import { sharedPath } from './util.js';

const base = JSON.parse(fs.readFileSync(sharedPath('fixtures/deepseek-v4-tiny/config.json'), 'utf8'));
// 4 layers (ratios 0, 4, 16, 4), window 16, dim 128, 4 streams, vocab 512.
const config = { ...base, dspark_block_size: 4, dspark_noise_token_id: 500, dspark_target_layer_ids: [1, 3, 2], dspark_markov_rank: 32 };
const GAMMA = 4, RANK = 32, STAGES = 2;

// ---- format decodings (spec §10.1), written here from the format table -------------------------

const bf16 = (b: Uint8Array): Float64Array => {
  const u = new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  return Float64Array.from(u, (bits) => new Float32Array(new Uint32Array([bits << 16]).buffer)[0]);
};
function e4m3(code: number): number {
  const s = code & 0x80 ? -1 : 1, e = (code >> 3) & 15, m = code & 7;
  return s * (e === 0 ? 2 ** -6 * (m / 8) : 2 ** (e - 7) * (1 + m / 8));
}
/** An FP8 matrix [rows, cols] with its E8M0 128×128 tile scales, dequantised. */
function fp8Matrix(f: SafetensorsFile, name: string): { w: Float64Array; rows: number; cols: number } {
  const [rows, cols] = f.tensors.get(`${name}.weight`)!.shape;
  const codes = f.read(`${name}.weight`), scales = f.read(`${name}.scale`), sc = Math.ceil(cols / 128);
  const w = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) w[r * cols + c] = e4m3(codes[r * cols + c]) * 2 ** (scales[Math.floor(r / 128) * sc + Math.floor(c / 128)] - 127);
  }
  return { w, rows, cols };
}
const matvec = (w: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number): Float64Array =>
  Float64Array.from({ length: rows }, (_, r) => {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
    return s;
  });
function rmsnorm(x: ArrayLike<number>, w: ArrayLike<number>, eps = 1e-6): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from({ length: x.length }, (_, i) => x[i] * inv * w[i]);
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
const argmax = (v: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
};

/** Collects the probe's taps by name (copies; the last one of a name wins). */
function tapAll(seq: DeepseekV4Sequence): Map<string, Float32Array> {
  const taps = new Map<string, Float32Array>();
  seq.probe = { tap: (name, data) => { if (data instanceof Float32Array) taps.set(name, data.slice()); } };
  return taps;
}

describe('DeepSeek-V4-DSpark form', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v4-dspark-'));
    dirs.push(d);
    return d;
  };
  let dir: string, file: SafetensorsFile, model: DeepseekV4Model, noquant: DeepseekV4Model;
  const r = rng(31);
  const prompt = Array.from({ length: 40 }, () => 3 + Math.floor(r() * 490));

  /** The synthetic checkpoint rewritten as one file, tensor bytes edited (undefined drops the tensor). */
  function variant(edit: (name: string, bytes: Uint8Array) => Uint8Array | undefined, cfg: object = config): string {
    const out = tmp();
    const ts = [...file.tensors.values()].flatMap((t) => {
      const bytes = edit(t.name, file.read(t.name));
      return bytes ? [{ name: t.name, dtype: t.dtype, shape: t.shape, data: bytes }] : [];
    });
    writeSafetensors(path.join(out, 'model.safetensors'), ts);
    fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(cfg));
    return out;
  }

  before(async () => {
    dir = path.join(tmp(), 'ckpt');
    writeSyntheticV4(dir, config, { seed: 7, dsparkStages: STAGES, shardBytes: 2 ** 20 });
    file = openSafetensors(dir);
    model = await loadModel(dir, { threads: 2 }) as DeepseekV4Model;
    // Without the FP8 round trips, prefill and decode agree to float noise (deepseek-v4-state.test.ts).
    noquant = await loadModel(dir, { threads: 2, actQuant: false, kvQuant: false }) as DeepseekV4Model;
  });
  after(async () => {
    await model?.close();
    await noquant?.close();
    file?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('config: the dspark_* keys are accepted (no MTP), V4.1-only keys still refused, bad DSpark keys named', () => {
    const c = v4ConfigFromHF(config, 'config.json');
    assert.equal(c.mtpLayers, 0);
    assert.deepEqual(c.dspark, { stages: 1, blockSize: 4, noiseToken: 500, targetLayers: [1, 3, 2], markovRank: 32, experts: 8, topK: 2 });
    assert.deepEqual(c.compressRatios, [0, 4, 16, 4, 0]);
    assert.throws(() => v4ConfigFromHF({ ...config, kv_source_layer_ids: [1] }, 'config.json'), /kv_source_layer_ids: a later DeepSeek revision \(V4\.1\)/);
    assert.throws(() => v4ConfigFromHF({ ...config, engram_layer_ids: [1] }, 'config.json'), /engram_layer_ids/);
    const { dspark_markov_rank: _, ...noRank } = config;
    assert.throws(() => v4ConfigFromHF(noRank, 'config.json'), /has DSpark keys but not dspark_markov_rank/);
    assert.throws(() => v4ConfigFromHF({ ...config, dspark_target_layer_ids: [1, 4] }, 'config.json'), /dspark_target_layer_ids must list distinct main layers 0 … 3/);
    assert.throws(() => v4ConfigFromHF({ ...config, dspark_noise_token_id: 512 }, 'config.json'), /dspark_noise_token_id 512 is outside the vocabulary/);
  });

  it('loads with the stage count of its tensors (num_nextn_predict_layers stays 1): dsparkStages 2, no MTP, described', () => {
    const d = model.description;
    assert.equal(d.dsparkStages, STAGES);
    assert.equal(d.mtpLayers, 0);
    assert.match(String(d.details.dspark), /^2 stages \(V4-DSpark form\), block 4, taps of layers 1, 3, 2, 8 experts top-2, Markov rank 32$/);
    assert.equal(describeModel(dir).dsparkStages, STAGES);
    assert.equal(model.config.compressRatios.length, 4 + STAGES);
  });

  it('the tensor check names a missing Markov tensor, and an e_proj left over from MTP', async () => {
    const missing = variant((name, b) => (name === 'mtp.1.markov_head.markov_w2.weight' ? undefined : b));
    assert.throws(() => describeModel(missing), /missing tensor 'mtp\.1\.markov_head\.markov_w2\.weight' \(bf16 \[512, 32\]/);
    await assert.rejects(loadModel(missing), /missing tensor 'mtp\.1\.markov_head\.markov_w2\.weight'/);
    const src = file.read('mtp.0.main_norm.weight');
    const extra = tmp();
    const ts = [...file.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: () => file.read(t.name) }));
    writeSafetensors(path.join(extra, 'model.safetensors'), [...ts, { name: 'mtp.0.enorm.weight', dtype: 'bf16', shape: [128], data: src }]);
    fs.writeFileSync(path.join(extra, 'config.json'), JSON.stringify(config));
    assert.throws(() => describeModel(extra), /tensor 'mtp\.0\.enorm\.weight' is not part of .* 2 DSpark stages/);
  });

  it('prefill equals one token at a time, for the logits and for the draft after them (stage rings past the window)', async () => {
    const V = 512;
    const full = noquant.newSequence();
    const want = await full.forward(prompt, { allLogits: true });
    const seq = noquant.newSequence();
    let worst = maxAbsDiff(await seq.forward(prompt.slice(0, 7), { allLogits: true }), want.subarray(0, 7 * V));
    for (let t = 7; t < prompt.length; t++) worst = Math.max(worst, maxAbsDiff(await seq.forward([prompt[t]]), want.subarray(t * V, (t + 1) * V)));
    assert.ok(worst <= 1e-4, `decode logits differ from the prefill by ${worst}`);
    const a = await full.dspark(77), b = await seq.dspark(77);
    assert.ok(maxAbsDiff(a.logits, b.logits) <= 1e-4, `drafts differ by ${maxAbsDiff(a.logits, b.logits)}`);
    assert.ok(maxAbsDiff(a.confidence, b.confidence) <= 1e-4);
    assert.deepEqual(a.ids, b.ids);
    full.free();
    seq.free();
  });

  it('main_x is RMSNorm(main_proj · [mean of the streams leaving each target layer]) and each stage rings its key (recomputed from the checkpoint)', async () => {
    const seq = noquant.newSequence(), taps = tapAll(seq);
    const n = 5, D = 128, hc = 4, Dh = 128, R = 64;
    await seq.forward(prompt.slice(0, n));
    const mp = fp8Matrix(file, 'mtp.0.main_proj'), mainNorm = bf16(file.read('mtp.0.main_norm.weight'));
    assert.deepEqual([mp.rows, mp.cols], [D, 3 * D]);
    const mainX = taps.get('dspark.main_x')!;
    let worstX = 0, worstK = 0;
    for (let t = 0; t < n; t++) {
      const cat = new Float64Array(3 * D);
      config.dspark_target_layer_ids.forEach((l: number, i: number) => {
        const X = taps.get(`layer${l}.out`)!;
        for (let j = 0; j < hc; j++) for (let k = 0; k < D; k++) cat[i * D + k] += X[(t * hc + j) * D + k] / hc;
      });
      const x = rmsnorm(matvec(mp.w, cat, D, 3 * D), mainNorm);
      worstX = Math.max(worstX, maxAbsDiff(x, mainX.subarray(t * D, (t + 1) * D)));
      for (let s = 0; s < STAGES; s++) {
        const wkv = fp8Matrix(file, `mtp.${s}.attn.wkv`), kvNorm = bf16(file.read(`mtp.${s}.attn.kv_norm.weight`));
        const k = rmsnorm(matvec(wkv.w, x, Dh, D), kvNorm);
        // The channels before the rotated tail (RoPE is the trunk's own, checked by the V4 fixture tests).
        const ring = taps.get(`dspark${s}.ring_kv`)!.subarray(t * Dh, t * Dh + Dh - R);
        worstK = Math.max(worstK, maxAbsDiff(k.subarray(0, Dh - R), ring));
      }
    }
    assert.ok(worstX <= 1e-4, `main_x differs by ${worstX}`);
    assert.ok(worstK <= 1e-4, `stage ring keys differ by ${worstK}`);
    seq.free();
  });

  it('a draft round: γ+1 ids from the anchor; logits = head(RMSNorm(h)) + markov_w2·markov_w1[x_k], ids their argmax; confidence = proj·[h; e] (recomputed from the checkpoint)', async () => {
    const seq = model.newSequence(), taps = tapAll(seq);
    await seq.forward(prompt.slice(0, 20));
    const d = await seq.dspark(123);
    const V = 512, D = 128;
    assert.equal(d.ids.length, GAMMA + 1);
    assert.equal(d.ids[0], 123);
    assert.equal(d.logits.length, GAMMA * V);
    assert.equal(d.confidence.length, GAMMA);
    const h = taps.get('dspark.hc_head_out')!;
    assert.equal(h.length, GAMMA * D);
    const head = bf16(file.read('head.weight')), norm = bf16(file.read('mtp.1.norm.weight'));
    const w1 = bf16(file.read('mtp.1.markov_head.markov_w1.weight')), w2 = bf16(file.read('mtp.1.markov_head.markov_w2.weight'));
    const proj = bf16(file.read('mtp.1.confidence_head.proj.weight'));
    let worst = 0, worstC = 0;
    for (let k = 0; k < GAMMA; k++) {
      const hk = h.subarray(k * D, (k + 1) * D), e = w1.subarray(d.ids[k] * RANK, (d.ids[k] + 1) * RANK);
      const base = matvec(head, rmsnorm(hk, norm), V, D), bias = matvec(w2, e, V, RANK);
      const row = d.logits.subarray(k * V, (k + 1) * V);
      worst = Math.max(worst, maxAbsDiff(row, base.map((b, v) => b + bias[v])));
      assert.equal(d.ids[k + 1], argmax(row), `draft ${k + 1} is the argmax of its biased row`);
      let c = 0;
      for (let i = 0; i < D; i++) c += proj[i] * hk[i];
      for (let i = 0; i < RANK; i++) c += proj[D + i] * e[i];
      worstC = Math.max(worstC, Math.abs(c - d.confidence[k]));
    }
    assert.ok(worst <= 1e-3, `draft logits differ from head(norm(h)) + Markov bias by ${worst}`);
    assert.ok(worstC <= 1e-4, `confidences differ by ${worstC}`);
    // `pick` chooses the tokens the Markov loop conditions on.
    const forced = await seq.dspark(123, (_, k) => 10 + k);
    assert.deepEqual(forced.ids, [123, 10, 11, 12, 13]);
    seq.free();
  });

  it('with markov_w2 zeroed the draft rows are exactly head(RMSNorm(h)) and h is unchanged; another noise token changes the anchor row (block rows see each other)', async () => {
    const zeroDir = variant((name, b) => (name === 'mtp.1.markov_head.markov_w2.weight' ? new Uint8Array(b.length) : b));
    const noiseDir = variant((_, b) => b, { ...config, dspark_noise_token_id: 499 });
    const zero = await loadModel(zeroDir, { threads: 2 }) as DeepseekV4Model;
    const other = await loadModel(noiseDir, { threads: 2 }) as DeepseekV4Model;
    try {
      const V = 512, D = 128;
      const drafts = [];
      for (const m of [model, zero, other]) {
        const seq = m.newSequence(), taps = tapAll(seq);
        await seq.forward(prompt.slice(0, 12));
        const d = await seq.dspark(9);
        drafts.push({ d, h: taps.get('dspark.hc_head_out')! });
        seq.free();
      }
      const [orig, z, o] = drafts;
      assert.deepEqual(z.h, orig.h);
      const head = bf16(file.read('head.weight')), norm = bf16(file.read('mtp.1.norm.weight'));
      for (let k = 0; k < GAMMA; k++) {
        const want = matvec(head, rmsnorm(z.h.subarray(k * D, (k + 1) * D), norm), V, D);
        assert.ok(maxAbsDiff(z.d.logits.subarray(k * V, (k + 1) * V), want) <= 1e-3);
      }
      assert.ok(maxAbsDiff(o.h.subarray(0, D), orig.h.subarray(0, D)) > 1e-4, 'the anchor row attends the noise rows after it');
    } finally {
      await zero.close();
      await other.close();
    }
  });

  it('dspark() changes no state: the forward after it equals the forward without it; a saved state keeps the stage rings', async () => {
    const a = model.newSequence(), b = model.newSequence();
    await a.forward(prompt.slice(0, 18));
    await b.forward(prompt.slice(0, 18));
    const first = await a.dspark(200);
    assert.deepEqual(await a.dspark(200), first);
    assert.deepEqual(await a.forward([201, 202], { allLogits: true }), await b.forward([201, 202], { allLogits: true }));
    const state = await a.saveState();
    const c = model.newSequence();
    c.loadState(state, a.length);
    assert.deepEqual(await c.dspark(5), await a.dspark(5));
    for (const s of [a, b, c]) s.free();
  });

  it('the Engine at temperature 0 gives the same tokens with and without DSpark speculation, also when an oracle makes drafts pass', async () => {
    const plain = new Engine(model, { speculative: false });
    const spec = new Engine(model, { draftThreshold: 0 });
    let drafts = 0;
    for (const p of [prompt.slice(0, 6), prompt.slice(0, 23)]) {
      const req = { prompt: p, maxTokens: 12, sampling: { temperature: 0 } };
      const want = await plain.submit(req).result;
      const got = await spec.submit(req).result;
      assert.deepEqual(got.tokens, want.tokens);
      assert.equal(want.drafts, 0);
      drafts += got.drafts;
    }
    assert.ok(drafts > 0, 'DSpark drafts were verified');
    // Random weights rarely draft right: an oracle puts the true next two tokens in each block.
    const req = { prompt: prompt.slice(0, 9), maxTokens: 12, sampling: { temperature: 0 } };
    const want = (await plain.submit(req).result).tokens, truth = [...req.prompt, ...want];
    const oracle = Object.create(model) as DeepseekV4Model;
    oracle.newSequence = (opts) => {
      const seq = model.newSequence(opts);
      const dspark = seq.dspark.bind(seq);
      seq.dspark = async (anchor, pick) => {
        const block = await dspark(anchor, pick);
        const p = seq.length;
        return { ...block, ids: block.ids.map((id, k) => (k === 0 ? id : k <= 2 && p + k < truth.length ? truth[p + k] : (truth[p + k] ?? 7) ^ 1)) };
      };
      return seq;
    };
    const withOracle = new Engine(oracle, { draftThreshold: 0 });
    const got = await withOracle.submit(req).result;
    assert.deepEqual(got.tokens, want);
    assert.ok(got.draftsAccepted >= 2, `${got.draftsAccepted} drafts accepted`);
    for (const e of [plain, spec, withOracle]) await e.close();
  });
});
