/**
 * DeepSeek-V4 decode state and checkpoint checks: one token at a time equals one prefill over
 * the whole sequence (past the window, through completed compression blocks, with the indexer
 * dropping blocks), truncate() rebuilds the state, and corrupt or mismatched checkpoints are
 * refused at load with the tensor named.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors, type SafetensorsWriteTensor } from '../../src/formats/safetensors-writer.js';
import { loadModel } from '../../src/models/index.js';
import type { DeepseekV4Model } from '../../src/models/deepseek-v4.js';
import { rng as seededRandom } from '../support/rng.js';
import { sharedPath } from './util.js';

const FIXTURE = sharedPath('fixtures/deepseek-v4-tiny');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('DeepSeek-V4 decode state', () => {
  let model: DeepseekV4Model;
  // noquant: with the FP8/FP4 round trips on, prefill and decode sum in different orders and an
  // input within an ulp of a rounding midpoint can round either way (spec §10.6) — a legitimate
  // difference that cascades. Without them the two must agree to float noise.
  before(async () => { model = await loadModel(FIXTURE, { threads: 1, actQuant: false, kvQuant: false }) as DeepseekV4Model; });
  after(async () => { await model.close(); });

  // Window 16, ratios 4 (indexer top-4) and 16: 90 tokens complete 22 CSA blocks (the indexer
  // picks 4 of up to 22) and 5 HCA blocks, and run the window ring round 5 times.
  const rand = seededRandom(4);
  const tokens = Array.from({ length: 90 }, () => 2 + Math.floor(rand() * 500));

  it('prefill, then one token at a time, equals one prefill of the whole sequence', async () => {
    const full = model.newSequence();
    const want = await full.forward(tokens, { allLogits: true });
    full.free();
    const vocab = model.config.vocab;
    const seq = model.newSequence();
    let worst = 0;
    const first = await seq.forward(tokens.slice(0, 21), { allLogits: true });
    worst = maxAbsDiff(first, want.subarray(0, 21 * vocab));
    for (let t = 21; t < tokens.length; t++) {
      const logits = await seq.forward([tokens[t]]);
      worst = Math.max(worst, maxAbsDiff(logits, want.subarray(t * vocab, (t + 1) * vocab)));
    }
    seq.free();
    assert.ok(worst <= 1e-4, `incremental logits differ from the full prefill by ${worst}`);
  });

  it('chunks of odd sizes give the same logits as one prefill', async () => {
    const full = model.newSequence();
    const want = await full.forward(tokens);
    full.free();
    const seq = model.newSequence();
    let last!: Float32Array;
    for (let i = 0, k = 3; i < tokens.length; i += k, k = (k * 7) % 11 + 1) last = await seq.forward(tokens.slice(i, i + k));
    seq.free();
    assert.ok(maxAbsDiff(last, want) <= 1e-4);
  });

  it('truncate() rebuilds the state from the kept tokens', async () => {
    const ref = model.newSequence();
    const want = await ref.forward(tokens.slice(0, 50));
    ref.free();
    const seq = model.newSequence();
    await seq.forward(tokens.slice(0, 70));
    seq.truncate(49);
    assert.equal(seq.length, 49);
    const got = await seq.forward([tokens[49]]);
    seq.free();
    assert.ok(maxAbsDiff(got, want) <= 1e-4);
  });

  it('accounts its state memory and refuses tokens past its capacity', async () => {
    const seq = model.newSequence({ contextLength: 64 });
    assert.ok(seq.stateBytes > 0);
    assert.ok(model.description.stateBytesPerToken > 0);
    await assert.rejects(seq.forward(tokens.slice(0, 65)), /context full/);
    await assert.rejects(seq.forward([512]), /outside the vocabulary/);
    seq.free();
  });
});

describe('DeepSeek-V4 checkpoint checks', () => {
  const src = openSafetensors(path.join(FIXTURE, 'model.safetensors'));
  const config = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8'));
  const dirs: string[] = [];
  after(() => {
    src.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  /** The fixture rewritten with `edit` applied to its tensor list (and config). */
  function variant(edit: (ts: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[], cfg: object = config): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v4-'));
    dirs.push(dir);
    const ts = [...src.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: () => src.read(t.name) }));
    writeSafetensors(path.join(dir, 'model.safetensors'), edit(ts));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    return dir;
  }

  it('a missing tensor', async () => {
    const dir = variant((ts) => ts.filter((t) => t.name !== 'layers.1.attn.indexer.wq_b.scale'));
    await assert.rejects(loadModel(dir), /missing tensor 'layers\.1\.attn\.indexer\.wq_b\.scale'/);
  });

  it('a tensor of the wrong shape', async () => {
    const dir = variant((ts) => ts.map((t) => t.name === 'layers.0.attn.wkv.weight' ? { ...t, shape: [64, 256] } : t));
    await assert.rejects(loadModel(dir), /'layers\.0\.attn\.wkv\.weight' is f8_e4m3 \[64, 256\], expected f8_e4m3 \[128, 128\]/);
  });

  it('a scale tensor of the wrong size', async () => {
    const dir = variant((ts) => ts.map((t) => t.name === 'layers.2.ffn.experts.3.w2.scale'
      ? { ...t, shape: [128, 2], data: new Uint8Array(256).fill(127) } : t));
    await assert.rejects(loadModel(dir), /'layers\.2\.ffn\.experts\.3\.w2\.scale' is e8m0 \[128, 2\], expected e8m0 \[128, 4\]/);
  });

  it('a config that disagrees with the weights', async () => {
    const fewer = variant((ts) => ts, { ...config, n_routed_experts: 4 });
    await assert.rejects(loadModel(fewer), /'layers\.0\.ffn\.gate\.weight' is bf16 \[8, 128\], expected bf16 \[4, 128\]/);
    const shallower = variant((ts) => ts, { ...config, num_hidden_layers: 3, compress_ratios: [0, 4, 16, 0] });
    await assert.rejects(loadModel(shallower), /tensor 'layers\.3\.[a-z_.]+' is not part of a DeepSeek-V4 checkpoint with this config/);
    const wider = variant((ts) => ts, { ...config, hidden_size: 256 });
    await assert.rejects(loadModel(wider), /'embed\.weight' is bf16 \[512, 128\], expected bf16 \[512, 256\]/);
  });

  it('a later revision\'s config is refused rather than mis-run', async () => {
    const dir = variant((ts) => ts, { ...config, kv_source_layer_ids: [0, 0, 1, 1] });
    await assert.rejects(loadModel(dir), /later DeepSeek revision/);
  });

  it('a hash table that routes to a missing expert', async () => {
    const dir = variant((ts) => ts.map((t) => {
      if (t.name !== 'layers.0.ffn.gate.tid2eid') return t;
      const bytes = src.read(t.name).slice();
      new BigInt64Array(bytes.buffer)[5] = 9n;
      return { ...t, data: bytes };
    }));
    await assert.rejects(loadModel(dir), /'layers\.0\.ffn\.gate\.tid2eid' routes to expert 9, but the config has 8 experts/);
  });
});
