// A generation the engine cannot finish (memory runs out mid-answer) ends with DeepSeek's
// `insufficient_system_resource` finish reason and keeps the text generated before the failure,
// in the whole answer and in the stream — the client can tell it from a success and retry.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Engine } from '../../src/engine/engine.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import type { Sequence } from '../../src/models/model.js';
import { LocalBackend } from '../../src/server/local-backend.js';
import { serveBackends } from './dialect-helpers.js';
import { postJson, rawSse, shared, STORIES } from './helpers.js';

const greedy = JSON.parse(fs.readFileSync(shared('fixtures/stories260K/greedy.json'), 'utf8')).results as { prompt: string; generated_text: string; generated_ids: number[] }[];
const ONCE = greedy.find((c) => c.prompt === 'Once upon a time')!;
const FAIL_AFTER = 10; // forward calls: the prefill, then 9 decode steps

/** stories260K whose sequences run out of memory on their 11th forward call. */
function failing(model: LanguageModel): LanguageModel {
  return {
    description: model.description,
    tokenizer: model.tokenizer,
    backend: model.backend,
    close: () => model.close(),
    newSequence: (opts) => {
      const seq = model.newSequence(opts);
      let calls = 0;
      return new Proxy(seq, {
        get(target, prop, receiver) {
          if (prop === 'forward') {
            return (tokens: readonly number[], o?: { allLogits?: boolean }) => {
              if (++calls > FAIL_AFTER) throw new RangeError('WebAssembly.Memory.grow(): Maximum memory size exceeded (out of memory)');
              return target.forward(tokens, o);
            };
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      }) as Sequence;
    },
  };
}

let url: string;
let close: () => Promise<void>;
before(async () => {
  const model = failing(await loadModel(STORIES, { threads: 1 }));
  const s = await serveBackends([new LocalBackend('stories260K', model, new Engine(model))]);
  url = s.url;
  close = () => s.server.close();
});
after(async () => { await close?.(); });

const body = { model: 'stories260K', messages: [{ role: 'user', content: ONCE.prompt }], temperature: 0, max_tokens: 64 };

test('the whole answer: insufficient_system_resource, with the text before the failure', async () => {
  const r = await postJson(`${url}/chat/completions`, body);
  assert.equal(r.status, 200);
  const choice = r.json.choices[0];
  assert.equal(choice.finish_reason, 'insufficient_system_resource');
  assert.ok(choice.message.content.length > 0 && ONCE.generated_text.startsWith(choice.message.content), JSON.stringify(choice.message.content));
  assert.ok(choice.message.content.length < ONCE.generated_text.length);
});

test('the stream ends with the same finish reason and [DONE]', async () => {
  const raw = await rawSse(`${url}/chat/completions`, { ...body, stream: true });
  const chunks = raw.events.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.equal(raw.events.at(-1)!.data, '[DONE]');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'insufficient_system_resource');
  const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
  assert.ok(text.length > 0 && ONCE.generated_text.startsWith(text));
});

test('a failure after keep-alive blank lines still ends the JSON answer with the error body', async () => {
  const { ScriptedBackend } = await import('./dialect-helpers.js');
  const slowFail = new ScriptedBackend('slow-fail', () => ({ events: [], end: new Error('the kernel fell over'), delayMs: 120 }));
  const s = await serveBackends([slowFail], { keepAliveMs: 20 });
  try {
    const res = await fetch(`${s.url}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'slow-fail', messages: [{ role: 'user', content: 'x' }] }) });
    const text = await res.text();
    assert.match(text, /^\n+\{/, 'blank keep-alive lines, then the body');
    const err = JSON.parse(text.trim());
    assert.match(err.error.message, /the kernel fell over/);
    assert.equal(err.error.type, 'server_error');
  } finally {
    await s.server.close();
  }
});
