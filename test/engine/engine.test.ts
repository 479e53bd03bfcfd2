/**
 * The serving engine against the same requests run alone: continuous batching must not change a
 * single greedy token (stories260K with batched forwards, the tiny DeepSeek-V4 fixture through the
 * one-by-one fallback), and cancellation, queue limits and logprobs behave.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine, EngineBusyError, type EngineResult } from '../../src/engine/engine.js';
import { generateText } from '../../src/engine/generate.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import { rng } from '../support/rng.js';
import { sharedPath } from '../models/util.js';

/** 16 prompts of different lengths (1 … 61 tokens) of ordinary token ids. */
function prompts(vocab: number, seed: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: 16 }, (_, i) => Array.from({ length: 1 + ((i * 13) % 61) }, () => 3 + Math.floor(r() * (vocab - 3))));
}

async function alone(model: LanguageModel, prompt: number[], maxTokens: number): Promise<number[]> {
  const seq = model.newSequence({ contextLength: prompt.length + maxTokens });
  try {
    return (await generateText(seq, model.tokenizer, prompt, { maxTokens, sampling: { temperature: 0 } })).tokens;
  } finally {
    seq.free();
  }
}

for (const [name, file, maxTokens] of [
  ['stories260K', 'models/stories260K/stories260K.gguf', 40],
  ['tiny DeepSeek-V4', 'fixtures/deepseek-v4-tiny', 12],
] as const) {
  describe(`engine on ${name}`, () => {
    let model: LanguageModel;
    before(async () => { model = await loadModel(sharedPath(file), { threads: 2 }); });
    after(async () => { await model.close(); });

    it('16 concurrent requests give exactly the tokens each gives alone (temperature 0)', async () => {
      const ps = prompts(model.description.vocabSize, 3);
      const want: number[][] = [];
      for (const p of ps) want.push(await alone(model, p, maxTokens));
      const engine = new Engine(model, { maxSequences: 16, prefillChunk: 48 });
      // Staggered arrivals: requests join a batch that is already decoding.
      const handles = [];
      for (let i = 0; i < ps.length; i++) {
        handles.push(engine.submit({ prompt: ps[i], maxTokens, sampling: { temperature: 0 } }));
        if (i % 4 === 3) await new Promise((r) => setTimeout(r, 5));
      }
      const results: EngineResult[] = await Promise.all(handles.map((h) => h.result));
      results.forEach((r, i) => assert.deepEqual(r.tokens, want[i], `request ${i} (prompt ${ps[i].length} tokens)`));
      assert.ok(engine.stats.steps < ps.length * maxTokens, `batched: ${engine.stats.steps} steps`);
      await engine.close();
    });
  });
}

describe('engine requests', () => {
  let model: LanguageModel;
  before(async () => { model = await loadModel(sharedPath('models/stories260K/stories260K.gguf'), { threads: 1 }); });
  after(async () => { await model.close(); });

  it('streams events whose text adds up to the result, with logprobs of a normalised distribution', async () => {
    const engine = new Engine(model);
    const h = engine.submit({ prompt: [1, 403, 407], maxTokens: 20, logprobs: true, topLogprobs: 3, sampling: { temperature: 0 } });
    let text = '';
    for await (const e of h) {
      text += e.text;
      if (e.token < 0) continue;
      assert.equal(e.top!.length, 3);
      assert.equal(e.top![0].token, e.token, 'greedy picks the most likely token');
      assert.ok(e.logprob! <= 0 && e.top![0].logprob >= e.top![1].logprob);
      const mass = e.top!.reduce((a, t) => a + Math.exp(t.logprob), 0);
      assert.ok(mass > 0 && mass <= 1 + 1e-6, `top-3 probability mass ${mass}`);
    }
    const r = await h.result;
    assert.equal(text, r.text);
    assert.equal(r.finishReason, 'length');
    await engine.close();
  });

  it('a cancelled request ends at once with its state freed; the others go on', async () => {
    const engine = new Engine(model, { maxSequences: 2 });
    const ac = new AbortController();
    const a = engine.submit({ prompt: [1, 403], maxTokens: 200, signal: ac.signal });
    const b = engine.submit({ prompt: [1, 407], maxTokens: 30 });
    let seen = 0;
    for await (const _ of a) if (++seen === 5) ac.abort();
    assert.equal((await a.result).finishReason, 'aborted');
    assert.ok((await a.result).tokens.length < 200);
    assert.equal((await b.result).tokens.length, 30);
    assert.equal(engine.load.running, 0);
    assert.equal(engine.load.stateBytes, 0);
    await engine.close();
  });

  it('refuses past the queue and a request that can never fit, with the reason', async () => {
    const engine = new Engine(model, { maxSequences: 1, maxQueue: 1, maxStateBytes: 1e6 });
    assert.throws(() => engine.submit({ prompt: [1], maxTokens: 1e6 }), (e: unknown) => e instanceof EngineBusyError && !e.retryable && /needs .* bytes of state/.test(e.message));
    const first = engine.submit({ prompt: [1, 5], maxTokens: 50 });
    const queued = engine.submit({ prompt: [1, 6], maxTokens: 5 });
    assert.throws(() => engine.submit({ prompt: [1, 7], maxTokens: 5 }), (e: unknown) => e instanceof EngineBusyError && e.retryable);
    assert.equal((await first.result).tokens.length > 0, true);
    assert.equal((await queued.result).finishReason === 'length' || (await queued.result).finishReason === 'eog', true);
    await engine.close();
  });
});
