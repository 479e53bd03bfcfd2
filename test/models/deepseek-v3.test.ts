/**
 * DeepSeek-V3 against the official reference (deepseek-ai/DeepSeek-V3 model.py): the goldens of
 * shared/fixtures/deepseek-v3-tiny — every logit vector in the default bf16_gemm mode (prefill and
 * token-by-token decode, absorbed MLA), fp8_gemm block by block on its debug dumps, the kernel
 * goldens, and decode over the latent cache against the naive (expanded) attention.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ropeFreqs, yarnFreqs } from '../../src/kernels/rope-freqs.js';
import { loadModel } from '../../src/models/index.js';
import type { DeepseekV3Model, DeepseekV3Sequence } from '../../src/models/deepseek-v3.js';
import { actQuantFp8, dequantize } from '../../src/tensor/dequantize.js';
import { FP8_BLOCK_F32 } from '../../src/tensor/dtype.js';
import { E4M3_TO_F32, f32ToE4m3 } from '../../src/tensor/float.js';
import { rng } from '../support/rng.js';
import { type ArrayEntry, maxAbsDiff, readArray } from './golden.js';
import { argmax, sharedPath } from './util.js';

const FIXTURE = sharedPath('fixtures/deepseek-v3-tiny');
type Mode = 'bf16_gemm' | 'fp8_gemm';
const golden = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'golden.json'), 'utf8')) as {
  cases: { name: string; kind: 'prefill' | 'decode'; tokens: number[]; steps?: number; generated?: Record<Mode, number[]>; outputs: Record<Mode, Record<string, ArrayEntry>> }[];
  debug: Record<Mode, { case: string; tensors: Record<string, ArrayEntry> }>;
};
const kernels = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'kernels/kernels.json'), 'utf8')) as {
  tests: { name: string; params: Record<string, unknown>; inputs: Record<string, ArrayEntry>; outputs: Record<string, ArrayEntry> }[];
};

const read = (e: ArrayEntry, dir = FIXTURE) => readArray(dir, e);
const readF32 = (e: ArrayEntry, dir?: string) => read(e, dir) as Float32Array;


describe('DeepSeek-V3 tiny fixture (official reference goldens)', () => {
  const models: Partial<Record<Mode, DeepseekV3Model>> = {};
  before(async () => {
    models.bf16_gemm = await loadModel(FIXTURE, { threads: 1 }) as DeepseekV3Model;
    models.fp8_gemm = await loadModel(FIXTURE, { threads: 1, actQuant: true }) as DeepseekV3Model;
  });
  after(async () => {
    await models.bf16_gemm?.close();
    await models.fp8_gemm?.close();
  });

  for (const c of golden.cases) {
    it(`bf16_gemm ${c.name}: ${c.kind === 'prefill' ? `prefill of ${c.tokens.length}` : `prompt ${c.tokens.length}, ${c.steps} greedy steps`}`, async () => {
      const model = models.bf16_gemm!, vocab = model.config.vocab;
      const seq = model.newSequence();
      try {
        if (c.kind === 'prefill') {
          const d = maxAbsDiff(await seq.forward(c.tokens, { allLogits: true }), read(c.outputs.bf16_gemm.logits));
          assert.ok(d <= 1e-3, `logits differ by ${d}`);
          return;
        }
        const want = readF32(c.outputs.bf16_gemm.step_logits);
        const tokens: number[] = [];
        let worst = 0;
        let logits = await seq.forward(c.tokens);
        for (let i = 0; i < c.steps!; i++) {
          if (i > 0) logits = await seq.forward([tokens[i - 1]]);
          worst = Math.max(worst, maxAbsDiff(logits, want.subarray(i * vocab, (i + 1) * vocab)));
          tokens.push(argmax(logits));
        }
        assert.deepEqual(tokens, c.generated!.bf16_gemm);
        assert.ok(worst <= 1e-3, `step logits differ by ${worst}`);
      } finally {
        seq.free();
      }
    });
  }

  for (const mode of ['bf16_gemm', 'fp8_gemm'] as const) {
    it(`${mode}: every block fed its golden input matches the reference block by block`, async () => {
      const dbg = golden.debug[mode];
      const c = golden.cases.find((x) => x.name === dbg.case)!;
      const seq = models[mode]!.newSequence() as DeepseekV3Sequence;
      const got = new Map<string, Float32Array | Int32Array>();
      seq.probe = {
        tap: (name, data) => got.set(name, data.slice()),
        blockInput: (name) => name === 'layer0' ? undefined : readF32(dbg.tensors[`layer${Number(name.slice(5)) - 1}.out`]),
      };
      try {
        await seq.forward(c.tokens, { allLogits: true });
        for (const [name, entry] of Object.entries(dbg.tensors)) {
          if (name === 'logits' || name === 'head.norm_out') continue; // end to end, checked above
          const g = got.get(name);
          assert.ok(g, `${name} was not produced`);
          const w = read(entry);
          if (w instanceof Int32Array) {
            assert.deepEqual([...g!], [...w], `${name} differs`);
            continue;
          }
          let absMax = 0, off = 0;
          for (let i = 0; i < w.length; i++) absMax = Math.max(absMax, Math.abs(w[i]));
          for (let i = 0; i < w.length; i++) if (Math.abs(g![i] - w[i]) > 1e-4 * absMax) off++;
          // fp8_gemm: a rounding-midpoint flip stays local (fixture README): ≥ 99 % of elements agree.
          if (mode === 'bf16_gemm') assert.equal(off, 0, `${name}: ${off} elements differ by more than 1e-4·absmax`);
          else assert.ok(off <= 0.01 * w.length && maxAbsDiff(g!, w) <= 5e-2 * absMax, `${name}: ${off} of ${w.length} elements differ`);
        }
      } finally {
        seq.free();
      }
    });
  }

  it('fp8_gemm end to end on the probe-stable short prompt', async () => {
    const c = golden.cases.find((x) => x.name === 'p5')!;
    const seq = models.fp8_gemm!.newSequence();
    try {
      const d = maxAbsDiff(await seq.forward(c.tokens, { allLogits: true }), read(c.outputs.fp8_gemm.logits));
      assert.ok(d <= 1e-3, `logits differ by ${d}`);
    } finally {
      seq.free();
    }
  });
});

describe('DeepSeek-V3 latent cache', () => {
  it('decoding 210 tokens over the latent cache (absorbed) equals the naive expanded prefill', async () => {
    const absorbed = await loadModel(FIXTURE, { threads: 1 }) as DeepseekV3Model;
    const naive = await loadModel(FIXTURE, { threads: 1, mlaForm: 'naive' }) as DeepseekV3Model;
    const rand = rng(9);
    const tokens = Array.from({ length: 210 }, () => Math.floor(rand() * 512));
    const vocab = absorbed.config.vocab;
    try {
      const full = naive.newSequence();
      const want = await full.forward(tokens, { allLogits: true });
      full.free();
      const seq = absorbed.newSequence();
      let worst = maxAbsDiff(await seq.forward(tokens.slice(0, 10), { allLogits: true }), want.subarray(0, 10 * vocab));
      for (let t = 10; t < tokens.length; t++) worst = Math.max(worst, maxAbsDiff(await seq.forward([tokens[t]]), want.subarray(t * vocab, (t + 1) * vocab)));
      seq.free();
      assert.ok(worst <= 1e-4, `decode differs from the naive prefill by ${worst}`);
      const d = absorbed.description;
      assert.ok((d.details.mhaCacheBytesPer1KTokens as number) > (d.details.latentCacheBytesPer1KTokens as number));
      assert.equal(d.stateBytesPerToken, 4 * 4 * (128 + 32)); // 4 layers × (kv_lora_rank + rope) f32
    } finally {
      await absorbed.close();
      await naive.close();
    }
  });
});

describe('DeepSeek-V3 kernel goldens', () => {
  const dir = path.join(FIXTURE, 'kernels');
  const test = (name: string) => kernels.tests.find((t) => t.name === name)!;

  for (const name of ['act_quant_v3_float_scale', 'act_quant_v3_ue8m0']) {
    it(`${name}: E4M3 codes and scales bit-exact`, () => {
      const t = test(name);
      const { codes, scales } = actQuantFp8(readF32(t.inputs.x, dir), 128, t.params.scale_fmt === 'ue8m0');
      const y = readF32(t.outputs.y_e4m3_values, dir), s = readF32(t.outputs.scale, dir);
      for (let i = 0; i < y.length; i++) assert.ok(Object.is(E4M3_TO_F32[codes[i]], y[i]), `y[${i}]`);
      for (let i = 0; i < s.length; i++) assert.ok(Object.is(scales[i], s[i]), `scale[${i}]`);
    });
  }

  it('weight_dequant with partial 128×128 tiles, exact', () => {
    const t = test('weight_dequant_partial_blocks');
    const values = readF32(t.inputs.w_e4m3_values, dir), scale = readF32(t.inputs.scale, dir);
    const [rows, cols] = t.inputs.w_e4m3_values.shape;
    const codes = Uint8Array.from(values, (v) => f32ToE4m3(v));
    const w = dequantize(FP8_BLOCK_F32, codes, rows, cols, new Uint8Array(scale.buffer));
    const want = readF32(t.outputs.w, dir);
    for (let i = 0; i < want.length; i++) assert.ok(Object.is(w[i], want[i]), `w[${i}]`);
  });

  it('the V3 YaRN rope table', () => {
    const t = test('rope_table_v3_yarn'), p = t.params as Record<string, number>;
    const f = yarnFreqs({ base: p.rope_theta, dim: p.qk_rope_head_dim, originalSeqLen: p.original_seq_len, factor: p.rope_factor, betaFast: p.beta_fast, betaSlow: p.beta_slow });
    assert.notDeepEqual(f, ropeFreqs(p.rope_theta, p.qk_rope_head_dim));
    const cos = readF32(t.outputs.cos, dir), sin = readF32(t.outputs.sin, dir), half = f.length;
    for (let pos = 0; pos < p.max_seq_len; pos++) {
      for (let i = 0; i < half; i++) {
        const a = Math.fround(pos * f[i]);
        assert.ok(Math.abs(Math.cos(a) - cos[pos * half + i]) <= 2e-6 && Math.abs(Math.sin(a) - sin[pos * half + i]) <= 2e-6, `pos ${pos} i ${i}`);
      }
    }
  });
});
