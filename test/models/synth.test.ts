/**
 * Tiny random models of each architecture, written as a Hugging Face directory and as a GGUF
 * (test/models/synth.ts): both forms give the same logits, and both agree with a float64
 * reference forward written from the equations (test/models/reference.ts). Covered: GQA, Llama 3
 * RoPE scaling (config.json vs rope_freqs.weight), the GGUF Q/K permutation against NeoX RoPE,
 * qwen2 q/k/v biases, qwen3 per-head q/k norms with head_dim ≠ hidden/heads, tied heads, f16
 * weights, a mistral sliding window; prefill (matmul) then decode (matvec).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CpuBackend, type CpuTensor } from '../../src/kernels/cpu/cpu-backend.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import { rng } from '../kernels/util.js';
import { inverseFrequencies, referenceLogits } from './reference.js';
import { synthWeights, type SynthSpec, writeGGUFModel, writeHF } from './synth.js';

const BASE = { eps: 1e-5, ropeTheta: 10000, contextLength: 64, dtype: 'f32', tied: false } as const;
const SPECS: Record<string, SynthSpec> = {
  'llama (GQA 4/2, Llama 3 RoPE scaling)': {
    ...BASE, arch: 'llama', dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, seed: 1,
    llama3: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 },
  },
  'qwen2 (q/k/v bias, tied head, f16 weights)': {
    ...BASE, arch: 'qwen2', dim: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, ffn: 64, seed: 2,
    ropeTheta: 1e6, eps: 1e-6, tied: true, dtype: 'f16',
  },
  'qwen3 (q/k norm, head_dim 16 with hidden 32)': {
    ...BASE, arch: 'qwen3', dim: 32, layers: 2, heads: 4, kvHeads: 1, headDim: 16, ffn: 48, seed: 3, eps: 1e-6,
  },
};
const PROMPT = 8, DECODE = 4;

/** Logits of PROMPT tokens at once (all rows) and DECODE more one at a time. */
async function run(model: LanguageModel, tokens: readonly number[]): Promise<Float32Array[]> {
  const vocab = model.description.vocabSize;
  const seq = model.newSequence();
  const all = await seq.forward(tokens.slice(0, PROMPT), { allLogits: true });
  const rows: Float32Array[] = Array.from({ length: PROMPT }, (_, i) => all.slice(i * vocab, (i + 1) * vocab));
  for (const t of tokens.slice(PROMPT)) rows.push(await seq.forward([t]));
  seq.free();
  return rows;
}

/** Largest |a − b| over every row, and the largest |b|. */
function diff(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): { max: number; scale: number } {
  let max = 0, scale = 0;
  a.forEach((row, t) => {
    for (let i = 0; i < row.length; i++) {
      max = Math.max(max, Math.abs(row[i] - b[t][i]));
      scale = Math.max(scale, Math.abs(b[t][i]));
    }
  });
  return { max, scale };
}

let dir: string;
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-synth-')); });
after(() => fs.rmSync(dir, { recursive: true, force: true }));

for (const [label, spec] of Object.entries(SPECS)) {
  describe(label, () => {
    const weights = synthWeights(spec);
    const r = rng(spec.seed + 100);
    const tokens = Array.from({ length: PROMPT + DECODE }, () => Math.floor(r() * weights.vocab));
    const ref = referenceLogits(spec, weights, tokens);
    let hf: Float32Array[], gguf: Float32Array[];

    before(async () => {
      const hfDir = path.join(dir, `${spec.arch}-hf`), ggufPath = path.join(dir, `${spec.arch}.gguf`);
      writeHF(hfDir, spec, weights);
      writeGGUFModel(ggufPath, spec, weights);
      for (const [p, set] of [[hfDir, (x: Float32Array[]) => { hf = x; }], [ggufPath, (x: Float32Array[]) => { gguf = x; }]] as const) {
        const model = await loadModel(p, { threads: 2 });
        try {
          assert.equal(model.description.architecture, spec.arch);
          assert.equal(model.description.vocabSize, weights.vocab);
          set(await run(model, tokens));
        } finally {
          await model.close();
        }
      }
    });

    it('the GGUF and Hugging Face forms give the same logits (within 1e-5 relative)', () => {
      const d = diff(gguf, hf);
      assert.ok(d.max <= 1e-5 * Math.max(1, d.scale), `logits differ by ${d.max} (largest ${d.scale})`);
    });

    it('both agree with the float64 reference forward within 1e-4', () => {
      for (const [form, got] of [['HF', hf], ['GGUF', gguf]] as const) {
        const d = diff(got, ref);
        assert.ok(d.max <= 1e-4 * Math.max(1, d.scale), `${form}: logits differ from the reference by ${d.max} (largest ${d.scale})`);
      }
    });

    if (spec.llama3) {
      it('the Llama 3 scaling matters: the unscaled reference is far off', () => {
        const plain = referenceLogits(spec, weights, tokens, inverseFrequencies({ ...spec, llama3: undefined }));
        assert.ok(diff(hf, plain).max > 1e-2);
      });
    }
  });
}

describe('mistral sliding window (Hugging Face sliding_window)', () => {
  const spec: SynthSpec = { ...BASE, arch: 'mistral', dim: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, ffn: 48, seed: 4, window: 3, tied: true };
  const weights = synthWeights(spec);
  const tokens = Array.from({ length: PROMPT + DECODE }, (_, i) => (7 * i + 3) % weights.vocab);

  it('positions beyond the window are not attended, as in the reference', async () => {
    const hfDir = path.join(dir, 'mistral-hf');
    writeHF(hfDir, spec, weights);
    const model = await loadModel(hfDir, { threads: 1 });
    try {
      assert.equal(model.description.details.slidingWindow, 3);
      const got = await run(model, tokens);
      const d = diff(got, referenceLogits(spec, weights, tokens));
      assert.ok(d.max <= 1e-4 * Math.max(1, d.scale), `differs from the windowed reference by ${d.max}`);
      const full = referenceLogits({ ...spec, window: undefined }, weights, tokens);
      assert.ok(diff(got, full).max > 1e-3, 'the window changed nothing');
    } finally {
      await model.close();
    }
  });
});

describe('f16 matrices stored as column panels (CPU backend, panelColumns)', () => {
  const spec = SPECS['qwen2 (q/k/v bias, tied head, f16 weights)'];
  const weights = synthWeights(spec);
  const tokens = Array.from({ length: PROMPT + DECODE }, (_, i) => (5 * i + 1) % weights.vocab);

  it('give the reference logits in prefill and decode, with every long-row matrix in panels', async () => {
    const file = path.join(dir, 'qwen2-panels.gguf');
    writeGGUFModel(file, spec, weights);
    // Panels of 24 columns: rows of 32 and 64 split into 24 + 8 and 24 + 24 + 16.
    const backend = await CpuBackend.create({ threads: 2, panelColumns: 24, parallelMin: { matrixBytes: 0, opElements: 0 } });
    const panelled: number[] = [];
    const load = backend.loadWeight.bind(backend);
    backend.loadWeight = async (src, w) => { const t = await load(src, w) as CpuTensor; panelled.push(t.panel); return t; };
    try {
      const model = await loadModel(file, { backend });
      const got = await run(model, tokens);
      await model.close();
      assert.equal(panelled.length, 7 * spec.layers, 'q, k, v, o, gate, up, down of each layer');
      assert.ok(panelled.every((p) => p === 24), `panels: ${panelled.join(', ')}`);
      const d = diff(got, referenceLogits(spec, weights, tokens));
      assert.ok(d.max <= 1e-4 * Math.max(1, d.scale), `differs from the reference by ${d.max}`);
    } finally {
      await backend.close();
    }
  });
});
