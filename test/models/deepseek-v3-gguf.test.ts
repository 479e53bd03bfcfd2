/**
 * DeepSeek-V3 from llama.cpp `deepseek2` GGUF files: the tiny fixture exported (v3-gguf-export.ts)
 * in both kv_b layouts llama.cpp has written, with F32 and Q8_0 stacked experts, must give the
 * safetensors model's logits and the official reference's goldens.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openGGUF } from '../../src/formats/gguf.js';
import { writeGGUF } from '../../src/formats/gguf-writer.js';
import { describeModel, loadModel } from '../../src/models/index.js';
import type { DeepseekV3Model, DeepseekV3Sequence } from '../../src/models/deepseek-v3.js';
import type { V3Config } from '../../src/models/deepseek-v3-config.js';
import { absorbedFromKvB, kvBFromAbsorbed } from '../../src/models/deepseek-v3-load.js';
import { dequantize } from '../../src/tensor/dequantize.js';
import { argmax, sharedPath } from './util.js';
import { v3GGUFSpec } from './v3-gguf-export.js';
import { writeLiteCheckpoint } from './v3-synth-lite.js';

const FIXTURE = sharedPath('fixtures/deepseek-v3-tiny');
interface ArrayEntry { file: string; shape: number[] }
const golden = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'golden.json'), 'utf8')) as {
  cases: { name: string; tokens: number[]; outputs: { bf16_gemm: Record<string, ArrayEntry> } }[];
};
const testCase = (name: string) => golden.cases.find((c) => c.name === name)!;

function readF32(e: ArrayEntry): Float32Array {
  const b = fs.readFileSync(path.join(FIXTURE, e.file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function prefill(model: DeepseekV3Model, tokens: readonly number[]): Promise<Float32Array> {
  const seq = model.newSequence();
  try {
    return await seq.forward(tokens, { allLogits: true });
  } finally {
    seq.free();
  }
}

/** The prompt, then `steps` greedy tokens one at a time: each step's logits and the tokens chosen. */
async function decode(model: DeepseekV3Model, prompt: readonly number[], steps: number): Promise<{ logits: Float32Array[]; tokens: number[] }> {
  const seq = model.newSequence();
  const logits: Float32Array[] = [], tokens: number[] = [];
  try {
    let l = await seq.forward(prompt);
    for (let i = 0; i < steps; i++) {
      if (i > 0) l = await seq.forward([tokens[i - 1]]);
      logits.push(l);
      tokens.push(argmax(l));
    }
    return { logits, tokens };
  } finally {
    seq.free();
  }
}

/** The experts each token is routed to, per MoE layer, as sorted lists "layer/token: e,e,e". */
async function routing(model: DeepseekV3Model, tokens: readonly number[]): Promise<string[]> {
  const seq = model.newSequence() as DeepseekV3Sequence;
  const out: string[] = [];
  const K = model.config.topK;
  seq.probe = {
    tap: (name, d) => {
      if (!name.endsWith('.gate.indices')) return;
      for (let t = 0; t < d.length / K; t++) out.push(`${name.split('.')[0]}/${t}: ${[...d.subarray(t * K, (t + 1) * K)].sort((a, b) => a - b).join(',')}`);
    },
  };
  try {
    await seq.forward(tokens);
    return out;
  } finally {
    seq.free();
  }
}

describe('DeepSeek-V3 from a llama.cpp deepseek2 GGUF (the tiny fixture exported)', () => {
  let dir: string;
  const files = { whole: '', split: '', q8: '' };
  let hf: DeepseekV3Model, whole: DeepseekV3Model, split: DeepseekV3Model, q8: DeepseekV3Model;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v3-gguf-'));
    files.whole = path.join(dir, 'tiny-kv_b-f32.gguf');
    files.split = path.join(dir, 'tiny-k_b-v_b-f32-mtp.gguf');
    files.q8 = path.join(dir, 'tiny-q8_0-experts.gguf');
    writeGGUF(files.whole, v3GGUFSpec(FIXTURE, { kvB: 'whole', experts: 'f32' }));
    writeGGUF(files.split, v3GGUFSpec(FIXTURE, { kvB: 'split', experts: 'f32', mtp: true }));
    writeGGUF(files.q8, v3GGUFSpec(FIXTURE, { kvB: 'split', experts: 'q8_0' }));
    hf = await loadModel(FIXTURE, { threads: 1 }) as DeepseekV3Model;
    whole = await loadModel(files.whole, { threads: 1 }) as DeepseekV3Model;
    split = await loadModel(files.split, { threads: 1 }) as DeepseekV3Model;
    q8 = await loadModel(files.q8, { threads: 1 }) as DeepseekV3Model;
  });
  after(async () => {
    for (const m of [hf, whole, split, q8]) await m?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads the deepseek2 metadata into the same config as config.json', () => {
    assert.deepEqual({ ...whole.config, eps: 0 }, { ...hf.config, eps: 0, mtpLayers: 0 }); // the converter drops the MTP layer
    assert.equal(whole.config.eps, Math.fround(1e-6)); // stored as f32
    assert.equal(whole.config.yarn!.mscale, 1); // yarn_log_multiplier 0.1·mscale_all_dim, undone
    assert.deepEqual({ ...split.config, mtpLayers: 0 }, { ...whole.config, mtpLayers: 0 });
    assert.equal(split.config.mtpLayers, 1);
    assert.equal(whole.weights.softmaxScale, hf.weights.softmaxScale);
  });

  for (const name of ['p5', 'p40']) {
    it(`prefill ${name}: F32 GGUF = the safetensors model (≤ 1e-4) = the bf16_gemm goldens (≤ 1e-3)`, async () => {
      const c = testCase(name);
      const got = await prefill(whole, c.tokens);
      const d = maxAbsDiff(got, await prefill(hf, c.tokens));
      assert.ok(d <= 1e-4, `GGUF and safetensors logits differ by ${d}`);
      const g = maxAbsDiff(got, readF32(c.outputs.bf16_gemm.logits));
      assert.ok(g <= 1e-3, `GGUF logits differ from the golden by ${g}`);
    });
  }

  it('decode: prompt d5 and 8 greedy steps over the latent cache, F32 GGUF = the safetensors model', async () => {
    const prompt = testCase('d5').tokens;
    const a = await decode(whole, prompt, 8), b = await decode(hf, prompt, 8);
    assert.deepEqual(a.tokens, b.tokens);
    const d = Math.max(...a.logits.map((l, i) => maxAbsDiff(l, b.logits[i])));
    assert.ok(d <= 1e-4, `step logits differ by ${d}`);
  });

  it('attn_k_b / attn_v_b (current converter, MTP block present) gives the attn_kv_b file\'s logits exactly', async () => {
    const c = testCase('p40');
    assert.equal(maxAbsDiff(await prefill(split, c.tokens), await prefill(whole, c.tokens)), 0);
    const prompt = testCase('d5').tokens;
    const a = await decode(split, prompt, 4), b = await decode(whole, prompt, 4);
    assert.deepEqual(a.tokens, b.tokens);
    a.logits.forEach((l, i) => assert.equal(maxAbsDiff(l, b.logits[i]), 0, `step ${i}`));
  });

  it('a file holding attn_kv_b besides attn_k_b / attn_v_b reads the split pair (and reports all it reads)', async () => {
    const both = path.join(dir, 'tiny-all-three.gguf');
    writeGGUF(both, v3GGUFSpec(FIXTURE, { kvB: 'both', experts: 'f32' }));
    let last = [0, -1];
    const m = await loadModel(both, { threads: 1, onProgress: (done, total) => { last = [done, total]; } }) as DeepseekV3Model;
    try {
      assert.equal(last[0], last[1]);
      assert.equal(m.weights.layers[0].wkvB, undefined); // the split pair is used, kv_b is not read
      const c = testCase('p5');
      assert.equal(maxAbsDiff(await prefill(m, c.tokens), await prefill(whole, c.tokens)), 0);
    } finally {
      await m.close();
    }
  });

  it('attn_k_b / attn_v_b in the naive form (kv_b rebuilt from them) equals the absorbed form', async () => {
    const naive = await loadModel(files.split, { threads: 1, mlaForm: 'naive' }) as DeepseekV3Model;
    try {
      assert.deepEqual(naive.weights.layers[0].wkvB!.shape, [4 * (32 + 32), 128]);
      assert.equal(split.weights.layers[0].wkvB, undefined); // the absorbed form never reads it
      const c = testCase('p40');
      const d = maxAbsDiff(await prefill(naive, c.tokens), await prefill(split, c.tokens));
      assert.ok(d <= 1e-4, `naive and absorbed differ by ${d}`);
    } finally {
      await naive.close();
    }
  });

  it('Q8_0 stacked experts: each expert is its slice, kept Q8_0; routes as F32, logits within 5 %', async () => {
    const file = openGGUF(files.q8);
    try {
      for (const [w, name] of [['w1', 'gate'], ['w3', 'up'], ['w2', 'down']] as const) {
        const e = (await q8.weights.layers[2].moe!.expert(5))[w];
        assert.deepEqual([e.dtype, e.shape], ['q8_0', [128, 128]]);
        const slice = new Uint8Array(128 * 4 * 34); // 128 rows of 4 Q8_0 blocks
        assert.deepEqual(await q8.backend.downloadBytes(e), file.readRange(`blk.2.ffn_${name}_exps.weight`, 5 * slice.length, slice));
      }
    } finally {
      file.close();
    }
    assert.equal((await whole.weights.layers[1].moe!.expert(5)).w1.dtype, 'f32');
    const c = testCase('p40');
    const want = await prefill(whole, c.tokens);
    const d = maxAbsDiff(await prefill(q8, c.tokens), want);
    const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    // Measured 0.17 of 8.3: Q8_0 weights and the Q8 activations their kernel takes, through 3 MoE layers.
    assert.ok(d > 0 && d <= 0.05 * scale, `Q8_0 experts move the logits by ${d} (largest logit ${scale})`);
    const a = await routing(q8, c.tokens), b = await routing(whole, c.tokens);
    assert.equal(a.length, 3 * 40);
    const same = a.filter((x, i) => x === b[i]).length;
    assert.ok(same >= 0.9 * a.length, `${same} of ${a.length} routing choices agree`);
  });

  it('Q8_0 attn_k_b / attn_v_b are used as stored: attention as with their values in F32 (Q8 activations aside)', async () => {
    const spec = v3GGUFSpec(FIXTURE, { kvB: 'split', experts: 'f32', kvBType: 'q8_0' });
    const asF32 = spec.tensors!.map((t) => t.dtype !== 'q8_0' ? t : {
      ...t, dtype: 'f32' as const, data: new Uint8Array(dequantize({ dtype: 'q8_0' }, t.data as Uint8Array, t.shape[0] * t.shape[1], t.shape[2]).buffer),
    });
    const [qf, ff] = [path.join(dir, 'kb-q8_0.gguf'), path.join(dir, 'kb-q8_0-as-f32.gguf')];
    writeGGUF(qf, spec);
    writeGGUF(ff, { metadata: spec.metadata, tensors: asF32 });
    const q = await loadModel(qf, { threads: 1 }) as DeepseekV3Model, f = await loadModel(ff, { threads: 1 }) as DeepseekV3Model;
    try {
      assert.deepEqual([q.weights.layers[0].ukT.dtype, q.weights.layers[0].ukT.shape], ['q8_0', [4 * 128, 32]]);
      assert.deepEqual([q.weights.layers[0].uv.dtype, q.weights.layers[0].uv.shape], ['q8_0', [4 * 32, 128]]);
      const attnOut = async (m: DeepseekV3Model) => {
        const seq = m.newSequence() as DeepseekV3Sequence;
        let out: Float32Array | undefined;
        seq.probe = { tap: (name, d) => { if (name === 'layer0.attn_out') out = d.slice() as Float32Array; } };
        await seq.forward(testCase('p40').tokens);
        seq.free();
        return out!;
      };
      const want = await attnOut(f);
      const d = maxAbsDiff(await attnOut(q), want), scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      // Measured 0.75 %: the Q8 rounding of q_nope and of the attended latents their kernels take.
      assert.ok(d <= 0.015 * scale, `layer 0 attention output differs by ${d} (largest ${scale})`);
    } finally {
      await q.close();
      await f.close();
    }
  });

  it('describeModel (minke info) on the exports', () => {
    const ref = describeModel(FIXTURE);
    const d = describeModel(files.whole);
    assert.equal(d.architecture, 'deepseek2');
    assert.equal(d.details.source, 'gguf');
    for (const k of ['parameters', 'layers', 'vocabSize', 'contextLength', 'stateBytesPerToken'] as const) assert.equal(d[k], ref[k], k);
    assert.equal(d.details.activeParameters, ref.details.activeParameters);
    assert.deepEqual(d.weightBytes, { f32: 4 * d.parameters });
    const s = describeModel(files.split); // the MTP block is not counted
    assert.equal(s.parameters, ref.parameters);
    const q = describeModel(files.q8);
    assert.equal(q.parameters, ref.parameters);
    assert.deepEqual(Object.keys(q.weightBytes).sort(), ['f32', 'q8_0']);
    assert.equal(q.weightBytes.q8_0, 3 * 3 * (8 * 128 * 128 / 32) * 34); // 3 MoE layers × gate/up/down
  });

  it('the tokenizer comes from tokenizer.ggml.*', () => {
    const t = whole.tokenizer;
    assert.equal(t.vocabSize, 512);
    assert.equal(t.bos, 0);
    assert.ok(t.eog.has(1));
    const ids = t.encode('hello world', { addBos: false });
    assert.equal(t.decode(ids), 'hello world');
    assert.deepEqual(t.encode(' ab', { addBos: false }), [t.tokenId('Ġa')!, t.tokenId('b')!]);
    assert.deepEqual(t.encode('ab', { addBos: false }), [t.tokenId('ab')!]);
    assert.equal(t.encode('ab')[0], 0);
  });

  it('says what is wrong with a file whose metadata and tensors disagree', () => {
    const bad = path.join(dir, 'bad.gguf');
    const variant = (edit: (meta: [string, unknown][], names: string[]) => void, opts = { kvB: 'split' as const, experts: 'f32' as const, mtp: true }) => {
      const spec = v3GGUFSpec(FIXTURE, opts);
      const meta = [...spec.metadata!] as [string, unknown][], tensors = [...spec.tensors!];
      const drop: string[] = [];
      edit(meta, drop);
      writeGGUF(bad, { metadata: meta as never, tensors: tensors.filter((t) => !drop.includes(t.name)) });
      return () => describeModel(bad);
    };
    const set = (meta: [string, unknown][], key: string, value: unknown) => { meta.find((m) => m[0] === key)![1] = value; };
    assert.throws(variant((m) => set(m, 'deepseek2.expert_gating_func', { type: 'u32', value: 3 })), /expert_gating_func 3 is not supported/);
    assert.throws(variant((_, drop) => drop.push('blk.2.ffn_up_exps.weight')), /missing tensor 'blk\.2\.ffn_up_exps\.weight'/);
    assert.throws(variant((m) => m.splice(m.findIndex((e) => e[0] === 'deepseek2.nextn_predict_layers'), 1)), /tensor 'blk\.4\.nextn\.\w+\.weight' is not part of a deepseek2 model/);
    assert.throws(variant((m) => set(m, 'deepseek2.attention.key_length_mla', { type: 'u32', value: 80 })), /tensor 'blk\.0\.attn_q_b\.weight' is \[256, 128\], expected \[320, 128\]/);
  });
});

describe('a DeepSeek-V2-Lite-shaped checkpoint as HF and as GGUF', () => {
  it('plain attn_q, softmax routing without bias or groups, tied output, mscale 0.707: the same model', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v3-lite-'));
    const models: DeepseekV3Model[] = [];
    try {
      writeLiteCheckpoint(dir);
      const gguf = path.join(dir, 'lite.gguf');
      const spec = v3GGUFSpec(dir, { kvB: 'split', experts: 'f32', tieOutput: true });
      const keys = new Set([...spec.metadata!].map(([k]) => k));
      for (const k of ['q_lora_rank', 'expert_group_count', 'expert_weights_norm']) assert.ok(!keys.has(`deepseek2.${k}`) && !keys.has(`deepseek2.attention.${k}`), k);
      assert.ok(!spec.tensors!.some((t) => t.name === 'output.weight' || t.name.includes('exp_probs_b')));
      writeGGUF(gguf, spec);
      const [hf, g] = [await loadModel(dir, { threads: 1 }), await loadModel(gguf, { threads: 1 })] as DeepseekV3Model[];
      models.push(hf, g);
      assert.deepEqual(
        { ...g.config, eps: 0, yarn: { ...g.config.yarn!, mscale: 0 } },
        { ...hf.config, eps: 0, yarn: { ...hf.config.yarn!, mscale: 0 } },
      );
      assert.equal(g.config.qLoraRank, 0);
      assert.equal(g.config.scoring, 'softmax');
      assert.ok(Math.abs(g.config.yarn!.mscale - 0.707) < 1e-6);
      assert.ok(Math.abs(g.weights.softmaxScale / hf.weights.softmaxScale - 1) < 1e-6);
      const tokens = Array.from({ length: 24 }, (_, i) => (i * 97 + 13) % 512);
      const d = maxAbsDiff(await prefill(g, tokens), await prefill(hf, tokens));
      assert.ok(d <= 1e-4, `GGUF and HF logits differ by ${d}`);
    } finally {
      for (const m of models) await m.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('kv_b and its per-head split', () => {
  // H 2 heads, r 2, nope 1, V 1: kv_b rows are [k(h0), v(h0), k(h1), v(h1)], two inputs each.
  const c = { heads: 2, kvLoraRank: 2, nopeDim: 1, vDim: 1 } as V3Config;
  const B = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);

  it('absorbedFromKvB: B_kᵀ rows per head, B_v rows per head', () => {
    const { ukT, uv } = absorbedFromKvB(B, c);
    assert.deepEqual([...ukT], [0, 1, 4, 5]); // [H·r, nope]: head h, input i → k row of head h, column i
    assert.deepEqual([...uv], [2, 3, 6, 7]);
  });

  it('kvBFromAbsorbed inverts it, and both check sizes', () => {
    const { ukT, uv } = absorbedFromKvB(B, c);
    assert.deepEqual([...kvBFromAbsorbed(ukT, uv, c)], [...B]);
    assert.throws(() => absorbedFromKvB(B.subarray(1), c), /kv_b has 7 values, expected 8/);
    assert.throws(() => kvBFromAbsorbed(ukT, uv.subarray(1), c), /k_b \/ v_b have 4 \/ 3 values, expected 4 \/ 4/);
  });
});
