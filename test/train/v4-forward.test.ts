/**
 * The training forward computes the inference forward's function: on the fixture checkpoint
 * (shared/fixtures/deepseek-v4-tiny) its logits and MTP logits equal the official reference's
 * noquant goldens and minke's inference forward (loadModel with actQuant/kvQuant off) to 1e-4; on
 * spec testdata/tiny_v4 they equal its noquant goldens. Also: seeded random initialisation and the
 * loader's errors.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DeepseekV4Model } from '../../src/models/deepseek-v4.js';
import { v4ConfigFromHF } from '../../src/models/deepseek-v4-config.js';
import { loadModel } from '../../src/models/index.js';
import { Tape } from '../../src/train/autograd.js';
import { V4TrainModel } from '../../src/train/v4-train-model.js';
import { initV4Params, loadV4Params } from '../../src/train/v4-train-params.js';
import { sharedPath } from '../models/util.js';
import { rng } from '../support/rng.js';

const FIXTURE = sharedPath('fixtures/deepseek-v4-tiny');
const TINY_V4 = sharedPath('spec/testdata/tiny_v4');
const TOL = 1e-4;

interface ArrayEntry { file: string; shape: number[] }
const fixtureGolden = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'golden.json'), 'utf8')) as {
  cases: { name: string; kind: string; tokens: number[]; outputs: { noquant?: Record<string, ArrayEntry> } }[];
};
const readF32 = (e: ArrayEntry) => {
  const b = fs.readFileSync(path.join(FIXTURE, e.file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, n = b.length): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Logits and MTP logits of the training forward, no gradients (MTP row t takes tokens[t + 1]; the last row gets `last`). */
function trainForward(model: V4TrainModel, tokens: readonly number[], last = 0) {
  const fw = model.forward(new Tape('f32', false), tokens, { mtpIds: [...tokens.slice(1), last] });
  return { logits: fw.logits.data, mtp: fw.mtpLogits!.data };
}

describe('training forward = inference forward (noquant)', () => {
  let train: V4TrainModel;
  let inference: DeepseekV4Model;

  before(async () => {
    train = new V4TrainModel(loadV4Params(FIXTURE));
    inference = await loadModel(FIXTURE, { threads: 1, actQuant: false, kvQuant: false }) as DeepseekV4Model;
  });
  after(async () => { await inference?.close(); });

  for (const c of fixtureGolden.cases.filter((c) => c.kind === 'prefill' && c.outputs.noquant)) {
    it(`fixture ${c.name} (${c.tokens.length} tokens): logits and MTP logits vs the reference's noquant goldens`, () => {
      const out = c.outputs.noquant!;
      const { logits, mtp } = trainForward(train, c.tokens);
      const d = maxAbsDiff(logits, readF32(out.logits));
      assert.ok(d <= TOL, `logits differ by ${d}`);
      if (out.mtp_logits) {
        const dm = maxAbsDiff(mtp, readF32(out.mtp_logits));
        assert.ok(dm <= TOL, `MTP logits differ by ${dm}`);
      }
    });
  }

  it('fixture: random sequences, every position, vs the inference forward', async () => {
    const next = rng(5);
    for (const n of [21, 45]) {
      const tokens = Array.from({ length: n }, () => Math.floor(next() * 512));
      const { logits, mtp } = trainForward(train, tokens);
      const seq = inference.newSequence();
      try {
        const want = await seq.forward(tokens, { allLogits: true });
        const d = maxAbsDiff(logits, want);
        assert.ok(d <= TOL, `${n} tokens: logits differ by ${d}`);
        const wantMtp = await seq.mtp(tokens.slice(1));
        const dm = maxAbsDiff(mtp, wantMtp);
        assert.ok(dm <= TOL, `${n} tokens: MTP logits differ by ${dm}`);
      } finally {
        seq.free();
      }
    }
  });

  it('spec tiny_v4: prefill, teacher-forced decode positions and MTP vs the reference noquant goldens', () => {
    const g = JSON.parse(fs.readFileSync(path.join(TINY_V4, 'golden.json'), 'utf8')) as {
      tokens: number[]; prompt_len: number; decode_positions: number[];
      noquant: { prefill_last_logits: number[]; decode_logits: number[][]; mtp_last_logits_for_prompt_with_next_ids: number[] };
    };
    const model = new V4TrainModel(loadV4Params(TINY_V4));
    const V = model.config.vocab, P = g.prompt_len;
    // One forward over all tokens: row p is the logits after position p, prefill or decode alike.
    const all = trainForward(model, g.tokens).logits;
    const d = maxAbsDiff(all.subarray((P - 1) * V, P * V), g.noquant.prefill_last_logits);
    assert.ok(d <= TOL, `prefill last logits differ by ${d}`);
    g.decode_positions.forEach((p, i) => {
      const dd = maxAbsDiff(all.subarray(p * V, (p + 1) * V), g.noquant.decode_logits[i]);
      assert.ok(dd <= TOL, `decode position ${p} differs by ${dd}`);
    });
    const { mtp } = trainForward(model, g.tokens.slice(0, P), g.tokens[P]);
    const dm = maxAbsDiff(mtp.subarray((P - 1) * V, P * V), g.noquant.mtp_last_logits_for_prompt_with_next_ids);
    assert.ok(dm <= TOL, `MTP logits differ by ${dm}`);
  });
});

describe('training parameters', () => {
  const config = v4ConfigFromHF(JSON.parse(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8')), 'fixture config.json');

  it('random init is reproducible from its seed and starts near a uniform prediction', () => {
    const a = initV4Params(config, 42), b = initV4Params(config, 42), c = initV4Params(config, 43);
    for (const [name, t] of a.tensors) assert.deepEqual(t.data, b.tensors.get(name)!.data, name);
    assert.notDeepEqual(a.tensors.get('layers.0.attn.wq_a.weight')!.data, c.tensors.get('layers.0.attn.wq_a.weight')!.data);
    const table = a.hashTables.get('layers.0.ffn.gate.tid2eid')!;
    assert.equal(table.length, config.vocab * config.topK);
    for (let t = 0; t < config.vocab; t++) assert.notEqual(table[2 * t], table[2 * t + 1], 'hash experts of a token are distinct');
    assert.equal(a.tensors.get('layers.3.ffn.gate.bias')!.requiresGrad, false, 'the routing bias is not trained by gradient');

    const model = new V4TrainModel(a);
    const tokens = Array.from({ length: 30 }, (_, i) => (i * 53 + 7) % config.vocab);
    const tp = new Tape('f32');
    const l = model.loss(tp, tokens);
    assert.ok(Math.abs(l.ce - Math.log(config.vocab)) < 1.5, `initial cross-entropy ${l.ce} is far from ln(vocab) ${Math.log(config.vocab)}`);
    assert.ok(Number.isFinite(l.mtp) && Number.isFinite(l.indexer) && l.indexer > 0);
    for (const [block, load] of l.forward.expertLoad) assert.equal(load.reduce((s, x) => s + x, 0), 29 * config.topK, block);
    tp.backward(l.loss);
    assert.ok(a.tensors.get('embed.weight')!.grad!.some((x) => x !== 0));
    assert.ok(a.tensors.get('layers.1.attn.indexer.wq_b.weight')!.grad!.some((x) => x !== 0), 'the indexer learns from its loss');
  });

  it('the loader refuses a checkpoint that does not match its config', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v4-train-'));
    try {
      const json = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8'));
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...json, moe_intermediate_size: 64 }));
      fs.symlinkSync(path.join(FIXTURE, 'model.safetensors'), path.join(dir, 'model.safetensors'));
      assert.throws(() => loadV4Params(dir), /tensor 'layers\.0\.ffn\.experts\.0\.w1\.weight' is i8 \[128, 64\], expected i8 \[64, 64\]/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(() => loadV4Params(path.join(os.tmpdir(), 'no-such-minke-dir')), /no-such-minke-dir/);
  });
});
