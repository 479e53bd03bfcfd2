/**
 * Speculative decoding with the model's own MTP block: at temperature 0 the output is exactly the
 * plain decode's (the verification keeps only what the trunk itself would pick), and the engine
 * reports how many drafts were accepted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import type { DeepseekV41Model } from '../../src/models/deepseek-v41.js';
import { rng } from '../support/rng.js';
import { sharedPath } from '../models/util.js';
import { oracleModel } from '../../bench/synth-v41.js';

for (const [name, file] of [['DeepSeek-V3', 'fixtures/deepseek-v3-tiny'], ['DeepSeek-V4', 'fixtures/deepseek-v4-tiny']] as const) {
  describe(`speculative decoding on the tiny ${name} fixture`, () => {
    let model: LanguageModel;
    before(async () => { model = await loadModel(sharedPath(file), { threads: 2 }); });
    after(async () => { await model.close(); });

    it('temperature 0: identical tokens with and without MTP drafts; the acceptance rate is reported', async () => {
      assert.ok((model.description.mtpLayers ?? 0) > 0);
      const r = rng(17);
      const prompts = Array.from({ length: 4 }, (_, i) => Array.from({ length: 5 + 9 * i }, () => 3 + Math.floor(r() * 500)));
      const plain = new Engine(model, { speculative: false });
      const spec = new Engine(model);
      let drafts = 0, accepted = 0;
      for (const prompt of prompts) {
        const req = { prompt, maxTokens: 24, sampling: { temperature: 0 } };
        const want = await plain.submit(req).result;
        const got = await spec.submit(req).result;
        assert.deepEqual(got.tokens, want.tokens);
        assert.equal(want.drafts, 0);
        drafts += got.drafts;
        accepted += got.draftsAccepted;
      }
      assert.ok(drafts > 0, 'drafts were verified');
      assert.equal(spec.stats.drafts, drafts);
      assert.equal(spec.stats.draftsAccepted, accepted);
      console.log(`# ${name}: ${accepted} of ${drafts} MTP drafts accepted (${((100 * accepted) / drafts).toFixed(1)} %)`);
      await plain.close();
      await spec.close();
    });
  });
}

describe('speculative decoding with DSpark on the tiny DeepSeek-V4.1 fixture', () => {
  const dir = sharedPath('fixtures/deepseek-v41-tiny');
  let model: DeepseekV41Model;
  before(async () => {
    model = await loadModel(dir, { threads: 2 }) as DeepseekV41Model;
    const golden = JSON.parse(fs.readFileSync(path.join(dir, 'golden.json'), 'utf8'));
    const map = fs.readFileSync(path.join(dir, golden.engram.token_map.file));
    model.setEngramTokenMap(new Int32Array(map.buffer.slice(map.byteOffset, map.byteOffset + map.byteLength)));
  });
  after(async () => { await model.close(); });

  for (const threshold of [0, 0.25]) {
    it(`temperature 0, draft threshold ${threshold}: identical tokens with and without DSpark blocks; acceptance and tokens per verify pass reported`, async () => {
      const r = rng(23);
      const prompts = Array.from({ length: 3 }, (_, i) => Array.from({ length: 4 + 11 * i }, () => 3 + Math.floor(r() * 490)));
      const plain = new Engine(model, { speculative: false });
      const spec = new Engine(model, { draftThreshold: threshold });
      let drafts = 0, accepted = 0, passes = 0, tokens = 0;
      for (const prompt of prompts) {
        const req = { prompt, maxTokens: 20, sampling: { temperature: 0 } };
        const want = await plain.submit(req).result;
        const got = await spec.submit(req).result;
        assert.deepEqual(got.tokens, want.tokens);
        drafts += got.drafts;
        accepted += got.draftsAccepted;
        passes += got.verifySteps;
        tokens += got.tokens.length;
      }
      assert.ok(passes > 0 && drafts >= passes, 'blocks of drafts were verified');
      assert.equal(spec.stats.verifySteps, passes);
      console.log(`# DSpark (threshold ${threshold}): ${accepted} of ${drafts} drafts accepted, ${((accepted + passes) / passes).toFixed(2)} tokens per verify pass, ${tokens} tokens`);
      await plain.close();
      await spec.close();
    });
  }

  it('accepts the right prefix of a block and rolls the rest back (drafts from an oracle: 2 right, then wrong)', async () => {
    const prompt = [0, 40, 509, 349, 476, 303, 449, 338, 350];
    const req = { prompt, maxTokens: 24, sampling: { temperature: 0 } };
    const plain = new Engine(model, { speculative: false });
    const want = (await plain.submit(req).result).tokens;
    const truth = [...prompt, ...want];
    // The model's own draft head, its ids replaced: the next two tokens right, the others wrong.
    const oracle = oracleModel(model, truth, 2);
    const spec = new Engine(oracle, { draftThreshold: 0 });
    const got = await spec.submit(req).result;
    assert.deepEqual(got.tokens, want);
    assert.ok(got.draftsAccepted >= 2 * (got.verifySteps - 2), `${got.draftsAccepted} accepted in ${got.verifySteps} passes`);
    assert.ok(got.tokens.length / got.verifySteps > 2.5, 'about three tokens per verify pass');
    await plain.close();
    await spec.close();
  });
});
