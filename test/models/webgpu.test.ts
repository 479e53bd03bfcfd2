/**
 * The model tests on the WebGPU backend (SwiftShader here, see test/kernels/webgpu-util.ts):
 * stories260K's greedy parity with llama.cpp, the DeepSeek-V4, V4.1 and V3 tiny fixtures' official
 * golden logits (V4.1 with its DSpark drafts), and the shipped minke-nano generating what it
 * generates on the CPU.
 *
 * SwiftShader runs a decode step in a fraction of a second, so every fixture case takes ≈ 5 min:
 * by default a set covering each fixture and mode (a long prefill past the window and the
 * compression blocks, a greedy decode in each model), every case with MINKE_SLOW=1.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CpuBackend } from '../../src/kernels/cpu/cpu-backend.js';
import type { WebGpuBackend } from '../../src/kernels/webgpu/webgpu-backend.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import { NANO_MODEL_DIR } from '../../src/models/shipped.js';
import { webGpuBackend } from '../kernels/webgpu-util.js';
import { type ArrayEntry, checkGoldenCase, maxAbsDiff, readArray, readGolden } from './golden.js';
import type { DeepseekV41Model } from '../../src/models/deepseek-v41.js';
import { argmax, checkGreedyCase, greedyCases, sharedPath, STORIES_GGUF } from './util.js';

const gpuOrReason = await webGpuBackend();
const skip = typeof gpuOrReason === 'string' ? gpuOrReason : false;
const gpu = () => gpuOrReason as WebGpuBackend;
const ALL = process.env.MINKE_SLOW === '1';
/** The cases run by default (all with MINKE_SLOW=1). */
const DEFAULT_CASES = new Set(['stories:0', 'stories:3', 'v4-noquant:p130', 'v4-faithful:p67', 'v4-faithful:d3', 'v3:p120', 'v3:d5', 'v41:seq0']);
const runs = (key: string) => ALL || DEFAULT_CASES.has(key);

describe('models on WebGPU', { skip }, () => {
  after(async () => { await gpu().close(); });

  describe('stories260K (GGUF): greedy parity with llama.cpp', () => {
    let model: LanguageModel;
    before(async () => { model = await loadModel(STORIES_GGUF, { backend: gpu() }); });
    after(async () => { await model.close(); });

    for (const [i, c] of greedyCases().entries()) {
      if (!runs(`stories:${i}`)) continue;
      it(JSON.stringify(c.prompt), () => checkGreedyCase(model, c));
    }
  });

  const V4 = sharedPath('fixtures/deepseek-v4-tiny');
  /** The fixture's known FP8 rounding-midpoint flip (its README): faithful prefill p130 from row 128. */
  const V4_FLIPS: Record<string, number> = { p130: 128 };
  for (const mode of ['noquant', 'faithful'] as const) {
    describe(`DeepSeek-V4 tiny fixture, ${mode}: golden logits`, () => {
      let model: LanguageModel;
      before(async () => { model = await loadModel(V4, { backend: gpu(), actQuant: mode === 'faithful', kvQuant: mode === 'faithful' }); });
      after(async () => { await model.close(); });
      for (const c of readGolden(V4).cases.filter((x) => (x.outputs[mode]?.logits || x.outputs[mode]?.step_logits) && runs(`v4-${mode}:${x.name}`))) {
        it(c.name, () => checkGoldenCase(model, V4, c, mode, model.description.vocabSize, 1e-3, mode === 'faithful' ? V4_FLIPS[c.name] : undefined));
      }
    });
  }

  const V41 = sharedPath('fixtures/deepseek-v41-tiny');
  describe('DeepSeek-V4.1 tiny fixture, faithful: golden logits and DSpark drafts', () => {
    const golden = readGolden(V41) as unknown as { cases: { name: string; tokens: number[]; prefill_len: number; outputs: { faithful: Record<string, ArrayEntry> & { dspark_anchor_ids: number[] } } }[]; engram: { token_map: ArrayEntry } };
    let model: DeepseekV41Model;
    before(async () => {
      model = await loadModel(V41, { backend: gpu() }) as DeepseekV41Model;
      model.setEngramTokenMap(readArray(V41, golden.engram.token_map) as Int32Array);
    });
    after(async () => { await model.close(); });
    // seq0 runs through position 21, where the CPU kernels' summation order meets an FP8 midpoint
    // (deepseek-v41.test.ts); the GPU's lands on the reference's side.
    for (const c of golden.cases.filter((x) => runs(`v41:${x.name}`))) {
      it(`${c.name}: prefill of every position, decode steps and their DSpark drafts`, async () => {
        const V = model.config.vocab, o = c.outputs.faithful, gamma = model.config.dspark.blockSize;
        const seq = model.newSequence();
        try {
          const logits = await seq.forward(c.tokens, { allLogits: true });
          assert.ok(maxAbsDiff(logits, readArray(V41, o.logits)) <= 1e-3);
          seq.truncate(c.prefill_len);
          const want = readArray(V41, o.decode_logits), ids = readArray(V41, o.dspark_output_ids);
          for (let i = c.prefill_len; i < c.tokens.length; i++) {
            const k = i - c.prefill_len, step = await seq.forward([c.tokens[i]]);
            assert.ok(maxAbsDiff(step, want.subarray(k * V, (k + 1) * V)) <= 1e-3, `step ${k}`);
            const d = await seq.dspark(o.dspark_anchor_ids[k]);
            assert.deepEqual(d.ids, Array.from(ids.subarray(k * (gamma + 1), (k + 1) * (gamma + 1))), `draft ${k}`);
          }
        } finally {
          seq.free();
        }
      });
    }
  });

  const V3 = sharedPath('fixtures/deepseek-v3-tiny');
  describe('DeepSeek-V3 tiny fixture, bf16_gemm: golden logits', () => {
    let model: LanguageModel;
    before(async () => { model = await loadModel(V3, { backend: gpu() }); });
    after(async () => { await model.close(); });
    for (const c of readGolden(V3).cases.filter((x) => runs(`v3:${x.name}`))) {
      it(c.name, () => checkGoldenCase(model, V3, c, 'bf16_gemm', model.description.vocabSize));
    }
  });

  it('minke-nano answers with the tokens it gives on the CPU', async () => {
    const cpu = await CpuBackend.create({ threads: 1 });
    const prompt = [0, 100, 200, 300, 400, 500, 600];
    const greedy = async (model: LanguageModel): Promise<number[]> => {
      const seq = model.newSequence({ contextLength: 128 });
      const out: number[] = [];
      let logits = await seq.forward(prompt);
      for (let i = 0; i < 12; i++) { out.push(argmax(logits)); logits = await seq.forward([out[i]]); }
      seq.free();
      return out;
    };
    const onCpu = await loadModel(NANO_MODEL_DIR, { backend: cpu });
    const onGpu = await loadModel(NANO_MODEL_DIR, { backend: gpu() });
    try {
      assert.deepEqual(await greedy(onGpu), await greedy(onCpu));
    } finally {
      await onCpu.close();
      await onGpu.close();
      await cpu.close();
    }
  });
});
