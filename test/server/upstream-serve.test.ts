// The acceptance test for upstream models: a real minke server (stories260K) as the upstream of a
// second, front server, driven with the official `openai` npm client (only baseURL changed).
// Streaming passes through chunk by chunk with the upstream's own greedy text and usage; when the
// upstream goes away the front answers the documented error (api-deepseek.md §16) at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import OpenAI from 'openai';
import { postJson, serve, shared, STORIES, type Running } from './helpers.js';

const greedy = JSON.parse(fs.readFileSync(shared('fixtures/stories260K/greedy.json'), 'utf8')).results as { prompt: string; generated_text: string }[];
const ONCE = greedy.find((c) => c.prompt === 'Once upon a time')!;

let upstream: Running;
let front: Running;
let direct: OpenAI;
let viaFront: OpenAI;

before(async () => {
  upstream = await serve({ models: [{ path: STORIES }] });
  front = await serve({ models: [{ name: 'remote', upstream: upstream.url, model: 'stories260K' }] });
  direct = new OpenAI({ baseURL: upstream.url, apiKey: 'x', maxRetries: 0 });
  viaFront = new OpenAI({ baseURL: front.url, apiKey: 'x', maxRetries: 0 });
});
after(async () => {
  await front?.close();
  await upstream?.close();
});

const messages = [{ role: 'user' as const, content: ONCE.prompt }];

describe('a minke server as the upstream of another', () => {
  let answer: string;
  let usage: OpenAI.CompletionUsage;

  test('the upstream answers greedily by itself (llama.cpp\'s greedy text)', async () => {
    const r = await direct.chat.completions.create({ model: 'stories260K', messages, temperature: 0, max_tokens: 48 });
    answer = r.choices[0].message.content!;
    usage = r.usage!;
    assert.ok(ONCE.generated_text.startsWith(answer) && answer.length > 20, 'the upstream itself matches the reference');
  });

  test('the front lists the upstream model under its own name', async () => {
    const list = await viaFront.models.list();
    assert.deepEqual(list.data.map((m) => [m.id, m.owned_by]), [['remote', 'upstream']]);
  });

  test('streaming through the front: chunks arrive, the text is the upstream\'s, usage is reported', async () => {
    const stream = await viaFront.chat.completions.create({ model: 'remote', messages, temperature: 0, max_tokens: 48, stream: true, stream_options: { include_usage: true } });
    let text = '', contentChunks = 0, finish: string | null = null;
    let streamed: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'remote');
      const d = c.choices[0]?.delta?.content;
      if (d) { text += d; contentChunks++; }
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) streamed = c.usage;
    }
    assert.equal(text, answer);
    assert.ok(contentChunks > 5, `the answer streams in pieces (${contentChunks} content chunks)`);
    assert.equal(finish, 'length');
    assert.ok(streamed, 'the usage chunk is there');
    assert.equal(streamed.prompt_tokens, usage.prompt_tokens);
    assert.equal(streamed.completion_tokens, 48);
    assert.equal(streamed.total_tokens, usage.prompt_tokens + 48);
  });

  test('a whole (non-streamed) answer through the front is the same', async () => {
    const r = await viaFront.chat.completions.create({ model: 'remote', messages, temperature: 0, max_tokens: 48, thinking: { type: 'disabled' } } as never) as OpenAI.ChatCompletion;
    assert.equal(r.choices[0].message.content, answer);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage!.completion_tokens, 48);
  });

  test('plain completion (/beta/completions) goes through too', async () => {
    const body = { model: 'stories260K', prompt: ONCE.prompt, max_tokens: 16, temperature: 0 };
    const own = await direct.completions.create(body);
    const via = await new OpenAI({ baseURL: `${front.url}/beta`, apiKey: 'x', maxRetries: 0 }).completions.create({ ...body, model: 'remote' });
    assert.equal(via.choices[0].text, own.choices[0].text);
    assert.ok(own.choices[0].text.length > 0);
    assert.equal(via.usage!.completion_tokens, 16);
  });

  test('a client that leaves the front stops the generation upstream', async () => {
    const gauge = async (name: string) => {
      const text = await (await fetch(`${upstream.url}/metrics`)).text();
      return Number(new RegExp(`^${name}\\{model="stories260K"\\} (\\S+)$`, 'm').exec(text)![1]);
    };
    const before = await gauge('minke_generated_tokens_total');
    const stream = await viaFront.chat.completions.create({ model: 'remote', messages, temperature: 0, max_tokens: 400, stream: true });
    for await (const c of stream) if (c.choices[0]?.delta?.content) break; // leaves: the SDK aborts its request
    const t0 = performance.now();
    while (await gauge('minke_sequences_running') > 0) {
      assert.ok(performance.now() - t0 < 2000, 'the upstream is still generating 2 s after the client left');
      await new Promise((r) => setTimeout(r, 20));
    }
    const generated = await gauge('minke_generated_tokens_total') - before;
    assert.ok(generated < 200, `the upstream stopped early (${generated} of 400 tokens)`);
  });

  test('with the upstream gone, the front answers 503 in the documented shape, promptly', async () => {
    await upstream.close();
    let t0 = performance.now();
    const raw = await postJson(`${front.url}/chat/completions`, { model: 'remote', messages, max_tokens: 8 });
    assert.ok(performance.now() - t0 < 3000, 'no hang');
    assert.equal(raw.status, 503);
    assert.deepEqual(Object.keys(raw.json.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(raw.json.error.type, 'overloaded_error');
    assert.match(raw.json.error.message, new RegExp(`^remote: the upstream ${upstream.url} is unavailable: it cannot be reached`));

    t0 = performance.now();
    await assert.rejects(viaFront.chat.completions.create({ model: 'remote', messages, max_tokens: 8 }), (e) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 503);
      assert.equal(e.type, 'overloaded_error');
      return true;
    });
    // Streaming: the error arrives as the stream's error event, which the SDK throws.
    await assert.rejects(async () => {
      const stream = await viaFront.chat.completions.create({ model: 'remote', messages, max_tokens: 8, stream: true });
      for await (const _ of stream) { /* until the error */ }
    }, (e) => e instanceof OpenAI.APIError && /is unavailable: it cannot be reached/.test(e.message));
    assert.ok(performance.now() - t0 < 3000, 'no hang');
  });
});
