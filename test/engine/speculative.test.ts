/**
 * Speculative decoding with the model's own MTP block: at temperature 0 the output is exactly the
 * plain decode's (the verification keeps only what the trunk itself would pick), and the engine
 * reports how many drafts were accepted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import { rng } from '../support/rng.js';
import { sharedPath } from '../models/util.js';

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
