// `minke serve` through the official, unmodified `openai` npm client (only baseURL changed), on
// stories260K and on a DeepSeek-V4 checkpoint: chat, streaming, thinking modes, tool calls and the
// pass-back rule, JSON output, FIM, prefix completion, logprobs, models, errors. Greedy stories
// answers are checked against llama.cpp's greedy tokens; SSE transcripts field by field against
// the DeepSeek contract (api-deepseek.md §6–§7).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import OpenAI from 'openai';
import Ajv2020 from 'ajv/dist/2020.js';
import { postJson, rawSse, serve, shared, STORIES, tinyV4, type Running } from './helpers.js';

const greedy = JSON.parse(fs.readFileSync(shared('fixtures/stories260K/greedy.json'), 'utf8')).results as { prompt: string; generated_text: string; generated_ids: number[] }[];
const ONCE = greedy.find((c) => c.prompt === 'Once upon a time')!;

const ajv = new Ajv2020.default({ strict: false });

let srv: Running;
let client: OpenAI;
let beta: OpenAI;

before(async () => {
  srv = await serve({ models: [{ path: STORIES }, { name: 'v4', path: tinyV4() }] });
  client = new OpenAI({ baseURL: srv.url, apiKey: 'unused' });
  beta = new OpenAI({ baseURL: `${srv.url}/beta`, apiKey: 'unused' });
});
after(async () => { await srv?.close(); });

// The DeepSeek-only fields ride along in the body, as extra_body does in Python.
type Extra = Record<string, unknown>;
const create = (c: OpenAI, body: Extra) => c.chat.completions.create(body as never) as unknown as Promise<any>;

describe('models and plain chat (stories260K)', () => {
  test('GET /models lists every model by its name', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), ['stories260K', 'v4']);
    for (const m of list.data) assert.equal(m.object, 'model');
    const balance = await (await fetch(`${srv.url}/user/balance`)).json() as any;
    assert.equal(balance.is_available, true, 'nothing is billed locally');
    assert.equal(balance.balance_infos[0].currency, 'CNY');
  });

  test('a greedy answer is llama.cpp\'s greedy continuation', async () => {
    const r = await create(client, { model: 'stories260K', messages: [{ role: 'user', content: ONCE.prompt }], temperature: 0, max_tokens: 64 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.content, ONCE.generated_text);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.choices[0].message.reasoning_content, undefined, 'a model without reasoning answers without reasoning_content');
    assert.equal(r.usage.completion_tokens, 64);
    assert.equal(r.usage.prompt_tokens, 5, 'BOS + 4 prompt tokens, as llama.cpp');
    assert.equal(r.usage.prompt_cache_hit_tokens + r.usage.prompt_cache_miss_tokens, r.usage.prompt_tokens);
    assert.equal(r.usage.prompt_tokens_details.cached_tokens, r.usage.prompt_cache_hit_tokens);
    assert.equal(r.usage.total_tokens, 69);
  });

  test('streaming gives the same text, in the documented chunk order', async () => {
    const body = { model: 'stories260K', messages: [{ role: 'user', content: ONCE.prompt }], temperature: 0, max_tokens: 64, stream: true, stream_options: { include_usage: true } };
    let text = '';
    const stream = await create(client, body);
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, ONCE.generated_text);

    const raw = await rawSse(`${srv.url}/chat/completions`, body);
    assert.equal(raw.status, 200);
    assert.match(raw.contentType ?? '', /^text\/event-stream/);
    assert.equal(raw.events.at(-1)!.data, '[DONE]');
    const chunks = raw.events.slice(0, -1).map((e) => JSON.parse(e.data));
    const id = chunks[0].id;
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.id, id);
      assert.equal(c.model, 'stories260K');
      assert.equal(typeof c.created, 'number');
      assert.equal(typeof c.system_fingerprint, 'string');
    }
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage.completion_tokens, 64);
    const finish = chunks.at(-2);
    assert.equal(finish.choices[0].finish_reason, 'length');
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null, 'only the usage chunk carries usage');
    for (const c of chunks.slice(0, -2)) assert.equal(c.choices[0].finish_reason, null);
    assert.equal(chunks.slice(1, -2).map((c) => c.choices[0].delta.content).join(''), ONCE.generated_text);
  });

  test('stop strings end the answer before them', async () => {
    const r = await create(client, { model: 'stories260K', messages: [{ role: 'user', content: ONCE.prompt }], temperature: 0, max_tokens: 64, stop: ['Lily'] });
    assert.equal(r.choices[0].message.content, ONCE.generated_text.slice(0, ONCE.generated_text.indexOf('Lily')));
    assert.equal(r.choices[0].finish_reason, 'stop');
  });

  test('logprobs: one entry per token, top alternatives sorted, the greedy token first', async () => {
    const r = await create(client, { model: 'stories260K', messages: [{ role: 'user', content: ONCE.prompt }], temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 3 });
    const lp = r.choices[0].logprobs.content;
    assert.equal(lp.length, 8);
    assert.equal(lp.map((e: any) => e.token).join(''), r.choices[0].message.content);
    for (const e of lp) {
      assert.equal(e.top_logprobs.length, 3);
      assert.equal(e.top_logprobs[0].token, e.token);
      assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6);
      assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob && e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob);
      assert.ok(e.logprob <= 0);
      assert.deepEqual(Buffer.from(e.bytes).toString('utf8'), e.token);
    }
  });

  test('JSON output: json_object gives one JSON object; a json_schema is enforced', async () => {
    // A tiny model may go on inside the object until max_tokens; what it writes is an object either way.
    const r = await create(client, { model: 'stories260K', messages: [{ role: 'user', content: 'Answer in json.' }], response_format: { type: 'json_object' }, temperature: 0, max_tokens: 60 });
    assert.match(r.choices[0].message.content, /^\s*\{/);
    if (r.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(r.choices[0].message.content), 'object');
    const schema = { type: 'object', properties: { color: { enum: ['red', 'blue'] }, ok: { type: 'boolean' } }, required: ['color', 'ok'], additionalProperties: false };
    const s = await create(client, { model: 'stories260K', messages: [{ role: 'user', content: 'json' }], response_format: { type: 'json_schema', json_schema: { name: 'p', schema } }, temperature: 0.7, seed: 5, max_tokens: 300 }); // room for the whitespace a tiny model pads with (≤ 20 bytes per gap)
    assert.ok(ajv.validate(schema, JSON.parse(s.choices[0].message.content)));
  });

  test('forced tool calls on a model without a tool syntax come back as tool_calls', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'], additionalProperties: false } } }];
    const r = await create(client, { model: 'stories260K', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, tool_choice: 'required', parallel_tool_calls: false, temperature: 0, max_tokens: 300 });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    const call = r.choices[0].message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.match(call.id, /^call_00_/);
    assert.equal(typeof JSON.parse(call.function.arguments).city, 'string');
  });

  test('prefix completion continues the given text (llama.cpp\'s greedy tokens after it)', async () => {
    // stories260K has no template: the conversation is the document, so the assistant prefix
    // "Once upon a time" after an empty user turn is completed as llama.cpp completes that prompt.
    const r = await create(beta, { model: 'stories260K', messages: [{ role: 'user', content: '' }, { role: 'assistant', content: ONCE.prompt, prefix: true }], temperature: 0, max_tokens: 64 });
    assert.equal(r.choices[0].message.content, ONCE.generated_text);
  });

  test('FIM endpoint: a plain completion without suffix; a suffix needs FIM tokens', async () => {
    const r = await beta.completions.create({ model: 'stories260K', prompt: ONCE.prompt, max_tokens: 64, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, ONCE.generated_text);
    const bad = await postJson(`${srv.url}/beta/completions`, { model: 'stories260K', prompt: 'a', suffix: 'b' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'suffix');
  });
});

describe('DeepSeek-V4: thinking, tools, FIM, prefix', () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'London'] }, days: { type: 'integer', enum: [1, 2, 3] } }, required: ['city', 'days'] } } }];

  test('thinking on (default), off and max', async () => {
    const msg = [{ role: 'user', content: 'Hi' }];
    const on = await create(client, { model: 'v4', messages: msg, max_tokens: 6 });
    assert.equal(typeof on.choices[0].message.reasoning_content, 'string');
    assert.equal(on.usage.completion_tokens_details.reasoning_tokens > 0 || on.choices[0].message.reasoning_content === '', true);
    const off = await create(client, { model: 'v4', messages: msg, max_tokens: 6, temperature: 0, thinking: { type: 'disabled' } });
    assert.equal(off.choices[0].message.reasoning_content, undefined);
    assert.equal(off.usage.completion_tokens_details.reasoning_tokens, 0);
    const max = await create(client, { model: 'v4', messages: msg, max_tokens: 6, reasoning_effort: 'max' });
    assert.ok(max.usage.prompt_tokens > on.usage.prompt_tokens, 'Think Max adds its preamble to the prompt');
    const low = await create(client, { model: 'v4', messages: msg, max_tokens: 1, reasoning_effort: 'low' });
    assert.equal(low.usage.prompt_tokens, on.usage.prompt_tokens, 'V4 has no low level: it thinks as at high');
    const xhigh = await create(client, { model: 'v4', messages: msg, max_tokens: 1, reasoning_effort: 'xhigh' });
    assert.equal(xhigh.usage.prompt_tokens, on.usage.prompt_tokens, 'xhigh maps to high (the contract table since V4.1)');
    const bad = await postJson(`${srv.url}/chat/completions`, { model: 'v4', messages: msg, reasoning_effort: 'extreme' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'reasoning_effort');
  });

  test('thinking stream: role with empty reasoning_content first, then reasoning deltas', async () => {
    const raw = await rawSse(`${srv.url}/chat/completions`, { model: 'v4', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, stream: true });
    const chunks = raw.events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: null, reasoning_content: '' });
    for (const c of chunks.slice(1, -1)) {
      const d = c.choices[0].delta;
      assert.ok(typeof d.reasoning_content === 'string' || typeof d.content === 'string', JSON.stringify(d));
    }
    assert.notEqual(chunks.at(-1).choices[0].finish_reason, null);
    assert.equal(raw.events.at(-1)!.data, '[DONE]');
  });

  test('tool call round trip in DSML, and the pass-back rule', async () => {
    const first = await create(client, {
      model: 'v4', messages: [{ role: 'user', content: 'Weather in Paris for 3 days?' }], tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false, thinking: { type: 'disabled' }, temperature: 0, max_tokens: 200,
    });
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    const call = first.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments);
    assert.ok(ajv.validate(tools[0].function.parameters, args), call.function.arguments);

    const history = [
      { role: 'user', content: 'Weather in Paris for 3 days?' },
      { role: 'assistant', content: '', tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '{"forecast": "sunny"}' },
    ];
    const second = await create(client, { model: 'v4', messages: history, tools, thinking: { type: 'disabled' }, temperature: 0, max_tokens: 5 });
    assert.ok(['stop', 'length', 'tool_calls'].includes(second.choices[0].finish_reason));

    // Thinking mode with tools: the assistant turn must carry its reasoning_content.
    const refused = await postJson(`${srv.url}/chat/completions`, { model: 'v4', messages: history, tools, max_tokens: 5 });
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.json, { error: { message: 'The reasoning_content in the thinking mode must be passed back to the API.', type: 'invalid_request_error', param: null, code: 'invalid_request_error' } });
    const passed = await create(client, { model: 'v4', messages: [history[0], { ...history[1], reasoning_content: '' }, history[2]], tools, max_tokens: 3 });
    assert.equal(typeof passed.choices[0].message.reasoning_content, 'string');

    const sdkError = await create(client, { model: 'v4', messages: history, tools, max_tokens: 5 }).catch((e) => e);
    assert.ok(sdkError instanceof OpenAI.BadRequestError);
  });

  test('streamed tool calls arrive as tool_calls deltas with index, id and name', async () => {
    const raw = await rawSse(`${srv.url}/chat/completions`, {
      model: 'v4', messages: [{ role: 'user', content: 'Weather?' }], tools, tool_choice: 'required', parallel_tool_calls: false, thinking: { type: 'disabled' }, temperature: 0, max_tokens: 200, stream: true,
    });
    const chunks = raw.events.slice(0, -1).map((e) => JSON.parse(e.data));
    const calls = chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    assert.ok(calls.length >= 1);
    assert.equal(calls[0].index, 0);
    assert.match(calls[0].id, /^call_00_/);
    assert.equal(calls[0].type, 'function');
    assert.equal(calls[0].function.name, 'get_weather');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
  });

  test('prefix completion on /beta continues the assistant text; elsewhere it is refused', async () => {
    const messages = [{ role: 'user', content: 'Write code' }, { role: 'assistant', content: '```python\n', prefix: true }];
    const r = await create(beta, { model: 'v4', messages, thinking: { type: 'disabled' }, temperature: 0, max_tokens: 4 });
    assert.equal(r.usage.completion_tokens, 4);
    const off = await create(client, { model: 'v4', messages: [{ role: 'user', content: 'Write code' }], thinking: { type: 'disabled' }, temperature: 0, max_tokens: 1 });
    assert.ok(r.usage.prompt_tokens > off.usage.prompt_tokens, 'the prefix is part of the prompt');
    const refused = await postJson(`${srv.url}/chat/completions`, { model: 'v4', messages });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.param, 'messages[1].prefix');
  });

  test('FIM with a suffix on a model with FIM tokens', async () => {
    const r = await beta.completions.create({ model: 'v4', prompt: 'def add(a, b):\n', suffix: '\n    return c\n', max_tokens: 4, temperature: 0 });
    assert.equal(r.usage!.completion_tokens, 4);
    assert.equal(typeof r.choices[0].text, 'string');
  });

  test('JSON output and logprobs of reasoning and content', async () => {
    const schema = { type: 'object', properties: { answer: { enum: ['yes', 'no'] }, sure: { type: 'boolean' } }, required: ['answer', 'sure'], additionalProperties: false };
    const r = await create(client, { model: 'v4', messages: [{ role: 'user', content: 'json please' }], thinking: { type: 'disabled' }, response_format: { type: 'json_schema', json_schema: { name: 'a', schema } }, temperature: 0, max_tokens: 300 });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(ajv.validate(schema, JSON.parse(r.choices[0].message.content)), r.choices[0].message.content);
    const obj = await create(client, { model: 'v4', messages: [{ role: 'user', content: 'json' }], thinking: { type: 'disabled' }, response_format: { type: 'json_object' }, temperature: 0, max_tokens: 20 });
    assert.match(obj.choices[0].message.content, /^\s*\{/);

    const lp = await create(client, { model: 'v4', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, logprobs: true, top_logprobs: 2 });
    const reasoning = lp.choices[0].logprobs.reasoning_content, content = lp.choices[0].logprobs.content;
    assert.equal(reasoning.length + content.length, 5, 'every token is in one of the two lists');
    assert.equal(reasoning.length, lp.usage.completion_tokens_details.reasoning_tokens);
    for (const e of [...reasoning, ...content]) assert.equal(e.top_logprobs.length, 2);
  });

  test('thinking mode refuses a forced tool choice', async () => {
    const r = await postJson(`${srv.url}/chat/completions`, { model: 'v4', messages: [{ role: 'user', content: 'x' }], tools, tool_choice: 'required' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'tool_choice');
  });
});

describe('errors and limits', () => {
  test('malformed requests get a 400 naming the field', async () => {
    const cases: [unknown, string | null][] = [
      [{ model: 'nope', messages: [{ role: 'user', content: 'x' }] }, 'model'],
      [{ model: 'stories260K' }, 'messages'],
      [{ model: 'stories260K', messages: [] }, 'messages'],
      [{ model: 'stories260K', messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], temperature: 3 }, 'temperature'],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], max_tokens: 1e12 }, 'max_tokens'],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], top_logprobs: 5 }, 'top_logprobs'],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'bad name!' } }] }, 'tools[0].function.name'],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], stop: Array(17).fill('a') }, 'stop'],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], user_id: 'a b' }, 'user_id'],
    ];
    for (const [body, param] of cases) {
      const r = await postJson(`${srv.url}/chat/completions`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.param, param, JSON.stringify(body));
      assert.equal(typeof r.json.error.message, 'string');
    }
    for (const text of ['{', '[]', '', '{"a":' + '['.repeat(1000) + ']'.repeat(1000) + '}']) {
      const r = await postJson(`${srv.url}/chat/completions`, text);
      assert.equal(r.status, 400, text.slice(0, 20));
    }
    const res = await fetch(`${srv.url}/chat/completions`, { method: 'POST', body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as any).error.message, /UTF-8/);
  });

  test('a client that disconnects cancels its generation at once', async () => {
    const ctl = new AbortController();
    const res = await fetch(`${srv.url}/chat/completions`, {
      method: 'POST', signal: ctl.signal, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'v4', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 100000, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    ctl.abort();
    const t0 = Date.now();
    for (;;) {
      const m = await (await fetch(`${srv.url}/metrics`)).text();
      if (/minke_sequences_running\{model="v4"\} 0/.test(m)) break;
      assert.ok(Date.now() - t0 < 5000, 'generation still running 5 s after the client left');
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});

describe('API keys, keep-alives, metrics', () => {
  test('with a key configured, requests need it (Bearer or x-api-key)', async () => {
    const keyed = await serve({ models: [{ path: STORIES }], apiKeys: ['sk-test'] });
    try {
      const wrong = await new OpenAI({ baseURL: keyed.url, apiKey: 'sk-wrong' }).models.list().catch((e) => e);
      assert.ok(wrong instanceof OpenAI.AuthenticationError);
      const ok = await new OpenAI({ baseURL: keyed.url, apiKey: 'sk-test' }).models.list();
      assert.equal(ok.data.length, 1);
      const viaHeader = await fetch(`${keyed.url}/models`, { headers: { 'x-api-key': 'sk-test' } });
      assert.equal(viaHeader.status, 200);
      const none = await fetch(`${keyed.url}/models`);
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as any).error.type, 'authentication_error');
      assert.equal((await fetch(`${keyed.url}/health`)).status, 200, 'health needs no key');
    } finally {
      await keyed.close();
    }
  });

  test('a queued stream receives keep-alive comments; metrics count it', async () => {
    const one = await serve({ models: [{ name: 'v4', path: tinyV4() }], parallel: 1, keepAliveMs: 20 });
    try {
      const body = (n: number) => ({ model: 'v4', messages: [{ role: 'user', content: 'Hi' }], max_tokens: n, stream: true, thinking: { type: 'disabled' }, temperature: 0 });
      const [, queued] = await Promise.all([rawSse(`${one.url}/chat/completions`, body(60)), rawSse(`${one.url}/chat/completions`, body(2))]);
      assert.ok(queued.comments.includes('keep-alive'), `comments: ${JSON.stringify(queued.comments)}`);
      assert.equal(queued.events.at(-1)!.data, '[DONE]');
      const m = await (await fetch(`${one.url}/metrics`)).text();
      assert.match(m, /minke_requests_total\{endpoint="\/chat\/completions",status="200"\} 2/);
      assert.match(m, /minke_generated_tokens_total\{model="v4"\} 62/);
      assert.match(m, /# TYPE minke_generated_tokens_per_second gauge/);
    } finally {
      await one.close();
    }
  });
});
