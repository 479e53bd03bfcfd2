// The constraint in the serving engine (EngineRequest.constraint) with a real model (stories260K):
// whatever the model prefers, the output is JSON of the schema and ends as soon as it is whole.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import { compileJsonConstraint } from '../../src/engine/constrain/index.js';
import { Engine } from '../../src/engine/engine.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import { sharedPath } from '../models/util.js';

const schema = {
  type: 'object',
  properties: {
    mood: { enum: ['happy', 'sad', 'sleepy'] }, count: { type: 'integer' }, ok: { type: 'boolean' },
    pets: { type: 'array', items: { enum: ['cat', 'dog'] }, maxItems: 3 },
  },
  required: ['mood', 'count', 'ok'], additionalProperties: false,
};

describe('engine with a JSON-schema constraint', () => {
  let model: LanguageModel;
  before(async () => { model = await loadModel(sharedPath('models/stories260K/stories260K.gguf'), { threads: 1 }); });
  after(async () => { await model.close(); });

  it('every sampled output validates and finishes with the value', async () => {
    const validate = new Ajv2020.default({ strict: false }).compile(schema);
    // This tiny model loves blank space: one byte per gap keeps its outputs short.
    const c = compileJsonConstraint(schema, model.tokenizer, { maxWhitespace: 1 });
    const engine = new Engine(model);
    const handles = [1, 2, 3, 4, 5, 6].map((seed) => engine.submit({
      prompt: [1, 403, 407], maxTokens: 300, constraint: c.start(), sampling: { temperature: 1, seed },
    }));
    for (const h of handles) {
      const r = await h.result;
      assert.equal(r.finishReason, 'eog', r.text);
      assert.ok(validate(JSON.parse(r.text)), `${r.text}: ${JSON.stringify(validate.errors)}`);
    }
    await engine.close();
  });
});
