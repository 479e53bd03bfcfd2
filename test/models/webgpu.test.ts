/**
 * The model tests on the WebGPU backend (SwiftShader here, see test/kernels/webgpu-util.ts):
 * stories260K's greedy parity with llama.cpp, the DeepSeek-V4 and V3 tiny fixtures' official
 * golden logits, and the shipped minke-nano generating what it generates on the CPU.
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
import { checkGoldenCase, readGolden } from './golden.js';
import { argmax, checkGreedyCase, greedyCases, sharedPath, STORIES_GGUF } from './util.js';

const gpuOrReason = await webGpuBackend();
const skip = typeof gpuOrReason === 'string' ? gpuOrReason : false;
const gpu = () => gpuOrReason as WebGpuBackend;
const ALL = process.env.MINKE_SLOW === '1';
/** The cases run by default (all with MINKE_SLOW=1). */
const DEFAULT_CASES = new Set(['stories:0', 'stories:3', 'v4-noquant:p130', 'v4-faithful:p67', 'v4-faithful:d3', 'v3:p120', 'v3:d5']);
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
