/**
 * stories260K against llama.cpp (fixtures/stories260K/greedy.json): from the GGUF and from the
 * llama2.c checkpoint + tok512.bin, with 1 thread and with 2 (every op split across the pool), the
 * prompt tokenizes to llama.cpp's ids, 64 greedy tokens come out the same, and the top-5
 * probabilities of every step are within 1e-4 (f32 KV cache; the fixture's suggested tolerance,
 * llama.cpp vs a float64 reference differ by 2.2e-6). Then the same references through the batched
 * prefill path (all logits of prompt + continuation at once) and with an f16 KV cache (teacher
 * forced, within the fixture's 5e-3).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CpuBackend } from '../../src/kernels/cpu/cpu-backend.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import { argmax, checkGreedyCase, greedyCases, softmax, STORIES_BIN, STORIES_GGUF, STORIES_TOK, top5Error } from './util.js';

const CASES = greedyCases();
const SOURCES = [['GGUF', STORIES_GGUF], ['llama2.c .bin', STORIES_BIN]] as const;

for (const [label, path] of SOURCES) {
  for (const threads of [1, 2]) {
    describe(`stories260K from the ${label}, ${threads} thread${threads > 1 ? 's' : ''}: greedy parity with llama.cpp`, () => {
      let be: CpuBackend;
      let model: LanguageModel;
      before(async () => {
        be = await CpuBackend.create({ threads, parallelMin: { matrixBytes: 0, opElements: 0 } });
        model = await loadModel(path, { backend: be, tokenizerPath: path === STORIES_BIN ? STORIES_TOK : undefined });
      });
      after(async () => { await model.close(); await be.close(); });

      for (const c of CASES) {
        it(JSON.stringify(c.prompt), async () => {
          assert.deepEqual(model.tokenizer.encode(c.prompt, { addBos: false }), c.prompt_tokens);
          await checkGreedyCase(model, c);
        });
      }
    });
  }
}

describe('stories260K GGUF: prefill batches and the f16 KV cache', () => {
  it('all logits of prompt + continuation in one forward (two prefill batches) match the references', async () => {
    const model = await loadModel(STORIES_GGUF, { threads: 2 });
    try {
      for (const c of CASES) {
        const ids = [...c.input_ids, ...c.generated_ids.slice(0, -1)];
        const seq = model.newSequence();
        const all = await seq.forward(ids, { allLogits: true });
        const vocab = model.description.vocabSize;
        assert.equal(all.length, ids.length * vocab);
        let worst = 0;
        for (let i = 0; i < c.generated_ids.length; i++) {
          const row = all.subarray((c.input_ids.length - 1 + i) * vocab, (c.input_ids.length + i) * vocab);
          assert.equal(argmax(row), c.generated_ids[i], `${JSON.stringify(c.prompt)} step ${i}`);
          worst = Math.max(worst, top5Error(softmax(row), c.steps[i]));
        }
        assert.ok(worst <= 1e-4, `${JSON.stringify(c.prompt)}: top-5 differ by up to ${worst}`);
        seq.free();
      }
    } finally {
      await model.close();
    }
  });

  it('an f16 KV cache stays within 5e-3 of llama.cpp (teacher forced on its tokens)', async () => {
    const model = await loadModel(STORIES_GGUF, { threads: 1, kvType: 'f16' });
    try {
      assert.equal(model.description.stateBytesPerToken, 5 * 2 * 32 * 2);
      let worst = 0;
      for (const c of CASES) {
        const seq = model.newSequence();
        let logits = await seq.forward(c.input_ids);
        for (let i = 0; i < c.generated_ids.length; i++) {
          worst = Math.max(worst, top5Error(softmax(logits), c.steps[i]));
          logits = await seq.forward([c.generated_ids[i]]);
        }
        seq.free();
      }
      assert.ok(worst <= 5e-3, `top-5 differ by up to ${worst}`);
    } finally {
      await model.close();
    }
  });

  it('truncate rewinds: the same tokens again give the same logits', async () => {
    const model = await loadModel(STORIES_GGUF, { threads: 1 });
    try {
      const c = CASES[0];
      const seq = model.newSequence({ contextLength: 64 });
      await seq.forward(c.input_ids);
      const first = await seq.forward(c.generated_ids.slice(0, 5));
      seq.truncate(c.input_ids.length);
      const again = await seq.forward(c.generated_ids.slice(0, 5));
      assert.deepEqual(again, first);
      seq.truncate(0);
      assert.equal(seq.length, 0);
      // Token by token (matvec) against the batch (matmul): the same up to f32 summation order.
      const byToken: Float32Array[] = [];
      for (const t of c.input_ids) byToken.push(await seq.forward([t]));
      seq.truncate(0);
      const batch = await seq.forward(c.input_ids, { allLogits: true });
      const vocab = model.description.vocabSize;
      byToken.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - batch[i * vocab + j]) <= 1e-4, `token ${i} logit ${j}`)));
      seq.free();
    } finally {
      await model.close();
    }
  });
});
