// The Anthropic Messages dialect (api-deepseek.md §15): request → ChatJob field by field, the wire
// transcript of a scripted answer written out by hand, and real servers (stories260K, the tiny V4
// with reasoning and DSML tool calls) driven by the official, unmodified @anthropic-ai/sdk.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { parseAnthropicRequest, resolveAnthropicModel } from '../../src/server/anthropic-request.js';
import { AnthropicTranscript } from '../../src/server/anthropic-wire.js';
import type { ChatEvent, ChatOutcome } from '../../src/server/chat.js';
import { encodeV4Messages, type V4Message } from '../../src/chat/deepseek-v4-encoding.js';
import { PASS_BACK_MESSAGE } from '../../src/server/errors.js';
import type { ApiServer } from '../../src/server/http.js';
import { startServer } from '../../src/server/index.js';
import type { LocalBackend } from '../../src/server/local-backend.js';
import { postSse, ScriptedBackend, serveBackends } from './dialect-helpers.js';
import { postJson, STORIES, tinyV4 } from './helpers.js';

/** Request params with fields this SDK's types have dropped (temperature: deprecated there, still sent as given). */
const params = (p: object): Anthropic.MessageCreateParamsNonStreaming => p as Anthropic.MessageCreateParamsNonStreaming;

const ctx = { model: 'm', reasoning: true, maxTokens: 1000, signal: new AbortController().signal };
const base = { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] };

describe('request → ChatJob', () => {
  test('a whole conversation maps block by block', () => {
    const { job, stream } = parseAnthropicRequest({
      model: 'm', max_tokens: 64, stream: true,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Answer in French.' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather?' }, { type: 'text', text: 'In Paris.' }] },
        { role: 'assistant', content: [
          { type: 'thinking', thinking: 'Need the tool.', signature: 'sig' },
          { type: 'redacted_thinking', data: 'opaque' },
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
        ] },
        { role: 'user', content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'Sunny' }] },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'timeout', is_error: true },
          { type: 'text', text: 'Thanks' },
        ] },
      ],
      tools: [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, cache_control: { type: 'ephemeral' } }],
      tool_choice: { type: 'any' },
      stop_sequences: ['END'], temperature: 1.5, top_p: 0.9, top_k: 5, service_tier: 'auto', container: 'c', mcp_servers: [],
      metadata: { user_id: 'user_42' },
    }, ctx);
    assert.equal(stream, true);
    assert.deepEqual(job.messages, [
      { role: 'system', content: 'Be brief.\n\nAnswer in French.' },
      { role: 'user', content: 'Weather?\n\nIn Paris.' },
      { role: 'assistant', content: 'Checking.', reasoning: 'Need the tool.', toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
      { role: 'tool', content: 'Sunny', toolCallId: 'toolu_1' },
      { role: 'tool', content: 'Error: timeout', toolCallId: 'toolu_2' },
      { role: 'user', content: 'Thanks' },
    ]);
    assert.deepEqual(job.tools, [{ name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }]);
    assert.equal(job.toolChoice, 'required');
    assert.deepEqual(job.stop, ['END']);
    assert.equal(job.maxTokens, 64);
    assert.equal(job.temperature, 1.5);
    assert.equal(job.topP, 0.9);
    assert.equal(job.think, 'high', 'thinking defaults on at high effort (§5)');
    assert.equal(job.userId, 'user_42');
    assert.deepEqual(job.responseFormat, 'text');
  });

  test('thinking switch and output_config.effort → reasoning mode', () => {
    const think = (extra: object, reasoning = true) => parseAnthropicRequest({ ...base, ...extra }, { ...ctx, reasoning }).job.think;
    assert.equal(think({}), 'high');
    assert.equal(think({ thinking: { type: 'enabled', budget_tokens: 1024 } }), 'high');
    assert.equal(think({ thinking: { type: 'adaptive' } }), 'high');
    assert.equal(think({ output_config: { effort: 'max' } }), 'max');
    assert.equal(think({ output_config: { effort: 'low' } }), 'low', 'low passes through (the V4 format thinks at high then)');
    assert.equal(think({ thinking: { type: 'disabled' }, output_config: { effort: 'max' } }), 'none');
    assert.equal(think({}, false), 'none', 'a model without reasoning never thinks');
  });

  test('tool_choice types, prefill, user ids and string content', () => {
    const tools = [{ name: 'a', input_schema: { type: 'object' } }, { name: 'b', input_schema: { type: 'object' } }];
    const choice = (tool_choice?: object) => parseAnthropicRequest({ ...base, tools, tool_choice }, ctx).job.toolChoice;
    assert.equal(choice(), 'auto');
    assert.equal(choice({ type: 'auto', disable_parallel_tool_use: true }), 'auto');
    const parallel = (tool_choice?: object) => parseAnthropicRequest({ ...base, tools, tool_choice }, ctx).job.parallelToolCalls;
    assert.equal(parallel(), true);
    assert.equal(parallel({ type: 'any' }), true);
    assert.equal(parallel({ type: 'any', disable_parallel_tool_use: true }), false);
    assert.equal(choice({ type: 'none' }), 'none');
    assert.equal(choice({ type: 'any' }), 'required');
    assert.deepEqual(choice({ type: 'tool', name: 'b' }), { name: 'b' });
    assert.equal(parseAnthropicRequest(base, ctx).job.toolChoice, 'none', 'no tools: none');

    const prefill = parseAnthropicRequest({ ...base, messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }, ctx).job;
    assert.deepEqual(prefill.messages.at(-1), { role: 'assistant', content: 'Hello', prefix: true });

    const claudeCodeId = JSON.stringify({ device_id: 'd', session_id: 's' });
    const hashed = parseAnthropicRequest({ ...base, metadata: { user_id: claudeCodeId } }, ctx).job.userId;
    assert.equal(hashed, createHash('sha256').update(claudeCodeId).digest('hex'));
  });

  test('bad fields are refused with a 400 naming them', () => {
    const cases: [object, string, RegExp][] = [
      [{ max_tokens: undefined }, 'max_tokens', /max_tokens is required/],
      [{ max_tokens: 0 }, 'max_tokens', /between 1 and 1000/],
      [{ max_tokens: 1001 }, 'max_tokens', /between 1 and 1000/],
      [{ temperature: 2.5 }, 'temperature', /between 0 and 2/],
      [{ top_p: 1.5 }, 'top_p', /between 0 and 1/],
      [{ messages: [] }, 'messages', /at least one message/],
      [{ messages: [{ role: 'system', content: 'x' }] }, 'messages[0].role', /one of "user", "assistant"/],
      [{ messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] }, 'messages[0].content[0].type', /"image" is not supported/],
      [{ messages: [{ role: 'user', content: [{ type: 'tool_result', content: 'x' }] }] }, 'messages[0].content[0].tool_use_id', /must be a string/],
      [{ messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 'x', name: 'f', input: '{}' }] }] }, 'messages[0].content[0].input', /must be an object/],
      [{ system: [{ type: 'image' }] }, 'system[0].type', /must be "text"/],
      [{ thinking: { type: 'on' } }, 'thinking.type', /"enabled", "adaptive", "disabled"/],
      [{ output_config: { effort: 'extreme' } }, 'output_config.effort', /must be one of/],
      [{ tools: [{ name: 'a b', input_schema: {} }] }, 'tools[0].name', /1–128 characters/],
      [{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'tools[0].type', /not supported/],
      [{ tools: [{ name: 'a', input_schema: {} }, { name: 'a', input_schema: {} }] }, 'tools', /two tools are named "a"/],
      [{ tool_choice: { type: 'any' } }, 'tool_choice', /needs tools/],
      [{ tools: [{ name: 'a', input_schema: {} }], tool_choice: { type: 'tool', name: 'b' } }, 'tool_choice.name', /"b", which is not in tools/],
      [{ stop_sequences: [1] }, 'stop_sequences[0]', /must be a string/],
      [{ stream: 'yes' }, 'stream', /must be a boolean/],
      [{ tools: [{ name: 'a', input_schema: {} }], tool_choice: { type: 'auto', disable_parallel_tool_use: 1 } }, 'tool_choice.disable_parallel_tool_use', /must be a boolean/],
    ];
    for (const [patch, param, message] of cases) {
      assert.throws(() => parseAnthropicRequest({ ...base, ...patch }, ctx), (e: any) => {
        assert.equal(e.status, 400, JSON.stringify(patch));
        assert.equal(e.param, param, JSON.stringify(patch));
        assert.match(e.message, message);
        return true;
      });
    }
  });

  test('model names: registered names directly, claude* → the first model, others unknown', () => {
    const names = ['deepseek-flash', 'other'];
    assert.equal(resolveAnthropicModel('other', names), 'other');
    assert.equal(resolveAnthropicModel('claude-opus-4-1', names), 'deepseek-flash');
    assert.equal(resolveAnthropicModel('claude-3-5-haiku-latest', names), 'deepseek-flash');
    assert.equal(resolveAnthropicModel('gpt-4o', names), undefined);
    assert.equal(resolveAnthropicModel(undefined, names), undefined);
  });
});

describe('ChatEvents → wire', () => {
  const usage = { promptTokens: 7, completionTokens: 3, cachedTokens: 0, reasoningTokens: 0 };

  test('without thinking: no thinking block, empty text skipped, an empty answer has no blocks', () => {
    const t = new AnthropicTranscript('msg_1', 'm', false);
    assert.deepEqual(t.start().map((w) => w.event), ['message_start']);
    assert.deepEqual(t.push({ type: 'content', text: '' }), []);
    const outcome: ChatOutcome = { finishReason: 'stop', usage };
    assert.deepEqual(t.finish(outcome).map((w) => w.event), ['message_delta', 'message_stop']);
    assert.deepEqual(t.message(outcome), {
      id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [], stop_reason: 'end_turn', stop_sequence: null,
      usage: { input_tokens: 7, output_tokens: 3, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
    });
  });

  test('finish reasons → stop reasons; unparsable tool arguments become {}', () => {
    const reasons = [['stop', 'end_turn'], ['length', 'max_tokens'], ['tool_calls', 'tool_use'], ['content_filter', 'refusal'], ['insufficient_system_resource', 'max_tokens']] as const;
    for (const [reason, expected] of reasons) {
      const t = new AnthropicTranscript('msg_1', 'm', false);
      t.start();
      assert.deepEqual(t.finish({ finishReason: reason, usage })[0].data.delta, { stop_reason: expected, stop_sequence: null });
    }
    const t = new AnthropicTranscript('msg_1', 'm', false);
    t.start();
    const events = t.push({ type: 'tool_call', index: 0, call: { id: 'c', name: 'f', arguments: '{"a": tr' } });
    assert.deepEqual(events.map((w) => w.data.delta ?? w.data.content_block), [
      { type: 'tool_use', id: 'c', name: 'f', input: {} }, { type: 'input_json_delta', partial_json: '{}' }, undefined,
    ]);
  });
});

// A scripted answer with every kind of event, and its transcript written out by hand.
const SCRIPT: ChatEvent[] = [
  { type: 'reasoning', text: 'Let me' },
  { type: 'reasoning', text: ' think' },
  { type: 'content', text: 'Hello' },
  { type: 'content', text: ' world' },
  { type: 'tool_call', index: 0, call: { id: 'call_1', name: 'get_weather', arguments: '{"city": "Paris"}' } },
];
const OUTCOME: ChatOutcome = { finishReason: 'tool_calls', usage: { promptTokens: 20, completionTokens: 9, cachedTokens: 4, reasoningTokens: 2 } };
const FINAL_USAGE = { input_tokens: 16, output_tokens: 9, cache_read_input_tokens: 4, cache_creation_input_tokens: 0 };
const FINAL_CONTENT = [
  { type: 'thinking', thinking: 'Let me think', signature: '' },
  { type: 'text', text: 'Hello world' },
  { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } },
];

describe('a scripted backend over HTTP', () => {
  let url: string, server: ApiServer, backend: ScriptedBackend, failing: ScriptedBackend, slow: ScriptedBackend;

  before(async () => {
    backend = new ScriptedBackend('fake', () => ({ events: SCRIPT, end: OUTCOME }));
    failing = new ScriptedBackend('failing', () => ({ events: [{ type: 'content', text: 'Hel' }], end: new Error('the kernel fell over') }));
    slow = new ScriptedBackend('slow', () => ({ events: [{ type: 'content', text: 'late' }], end: { ...OUTCOME, finishReason: 'stop' }, delayMs: 120 }), false);
    ({ url, server } = await serveBackends([backend, failing, slow], { keepAliveMs: 20 }));
  });
  after(() => server.close());

  const request = { model: 'fake', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Hi' }] };

  test('the stream, event by event', async () => {
    const r = await postSse(`${url}/anthropic/v1/messages`, { ...request, stream: true });
    assert.equal(r.status, 200);
    assert.match(r.contentType ?? '', /^text\/event-stream/);
    for (const e of r.events) assert.equal(e.event, e.data.type, 'every event is named as its type');
    const id = r.events[0].data.message.id;
    assert.match(id, /^msg_[A-Za-z0-9_-]{20,}$/);
    const start = (index: number, content_block: object) => ({ type: 'content_block_start', index, content_block });
    const delta = (index: number, d: object) => ({ type: 'content_block_delta', index, delta: d });
    const stop = (index: number) => ({ type: 'content_block_stop', index });
    assert.deepEqual(r.events.map((e) => e.data), [
      { type: 'message_start', message: { id, type: 'message', role: 'assistant', model: 'fake', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 } } },
      start(0, { type: 'thinking', thinking: '', signature: '' }),
      delta(0, { type: 'thinking_delta', thinking: 'Let me' }),
      delta(0, { type: 'thinking_delta', thinking: ' think' }),
      delta(0, { type: 'signature_delta', signature: '' }),
      stop(0),
      start(1, { type: 'text', text: '' }),
      delta(1, { type: 'text_delta', text: 'Hello' }),
      delta(1, { type: 'text_delta', text: ' world' }),
      stop(1),
      start(2, { type: 'tool_use', id: 'call_1', name: 'get_weather', input: {} }),
      delta(2, { type: 'input_json_delta', partial_json: '{"city":"Paris"}' }),
      stop(2),
      { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: FINAL_USAGE },
      { type: 'message_stop' },
    ]);
    assert.ok(!r.text.includes('[DONE]'));
  });

  test('the SDK streams it and assembles the same message as the whole answer', async () => {
    const client = new Anthropic({ baseURL: `${url}/anthropic`, apiKey: 'test' });
    const stream = client.messages.stream(request);
    const seen: string[] = [];
    stream.on('text', (t) => seen.push(t));
    const streamed = await stream.finalMessage();
    assert.deepEqual(seen, ['Hello', ' world']);
    const whole = await client.messages.create(request);
    for (const m of [streamed, whole]) {
      assert.deepEqual(m.content, FINAL_CONTENT);
      assert.equal(m.stop_reason, 'tool_use');
      assert.equal(m.stop_sequence, null);
      assert.equal(m.model, 'fake');
      assert.deepEqual(m.usage, FINAL_USAGE);
    }
    assert.deepEqual(Object.keys(whole).sort(), ['content', 'id', 'model', 'role', 'stop_reason', 'stop_sequence', 'type', 'usage']);
    assert.equal(backend.jobs.at(-1)!.think, 'high');
  });

  test('a failure mid-stream is an error event, which the SDK raises', async () => {
    const r = await postSse(`${url}/anthropic/v1/messages`, { ...request, model: 'failing', stream: true });
    // The empty thinking block (signature only), the text so far, then the error.
    assert.deepEqual(r.events.map((e) => e.event), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'content_block_start', 'content_block_delta', 'error']);
    assert.deepEqual(r.events[5].data.delta, { type: 'text_delta', text: 'Hel' });
    assert.deepEqual(r.events.at(-1)!.data, { type: 'error', error: { type: 'api_error', message: 'the kernel fell over' } });
    const client = new Anthropic({ baseURL: `${url}/anthropic`, apiKey: 'test', maxRetries: 0 });
    await assert.rejects(async () => { for await (const _ of await client.messages.create({ ...request, model: 'failing', stream: true })) { /* drain */ } },
      (e: any) => e instanceof Anthropic.APIError && /the kernel fell over/.test(e.message));
  });

  test('keep-alive comments while the answer is slow; the SDK reads through them', async () => {
    const r = await postSse(`${url}/anthropic/v1/messages`, { ...request, model: 'slow', stream: true });
    assert.ok(r.comments.includes(': keep-alive'), r.text);
    assert.deepEqual(r.events.map((e) => e.event), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    const client = new Anthropic({ baseURL: `${url}/anthropic`, apiKey: 'test' });
    const m = await client.messages.stream({ ...request, model: 'slow' }).finalMessage();
    assert.deepEqual(m.content, [{ type: 'text', text: 'late' }], 'a model without reasoning has no thinking block');
    assert.equal(m.stop_reason, 'end_turn');
  });

  test('a failure after keep-alive blank lines still ends with the error body', async () => {
    const slowFail = new ScriptedBackend('slow-fail', () => ({ events: [], end: new Error('out of memory'), delayMs: 120 }));
    const s = await serveBackends([slowFail], { keepAliveMs: 20 });
    try {
      const r = await postJson(`${s.url}/anthropic/v1/messages`, { ...request, model: 'slow-fail' });
      assert.deepEqual(r.json, { type: 'error', error: { type: 'api_error', message: 'out of memory' } });
    } finally {
      await s.server.close();
    }
  });

  test('x-api-key and Bearer keys are accepted; a wrong key is a 401 in the Anthropic shape', async () => {
    const s = await serveBackends([new ScriptedBackend('fake', () => ({ events: SCRIPT, end: OUTCOME }))], { apiKeys: ['sk-right'] });
    try {
      const ok = await new Anthropic({ baseURL: `${s.url}/anthropic`, apiKey: 'sk-right' }).messages.create(request);
      assert.deepEqual(ok.content, FINAL_CONTENT);
      const bearer = await postJson(`${s.url}/anthropic/v1/messages`, request, { authorization: 'Bearer sk-right' });
      assert.equal(bearer.status, 200);
      await assert.rejects(new Anthropic({ baseURL: `${s.url}/anthropic`, apiKey: 'sk-wrong', maxRetries: 0 }).messages.create(request), (e: any) => {
        assert.equal(e instanceof Anthropic.AuthenticationError, true);
        assert.deepEqual(e.error, { type: 'error', error: { type: 'authentication_error', message: 'Authentication Fails: the API key is invalid' } });
        return true;
      });
    } finally {
      await s.server.close();
    }
  });
});

describe('stories260K through the SDK', () => {
  let url: string, server: ApiServer, client: Anthropic;

  before(async () => {
    ({ url, server } = await startServer({ models: [{ path: STORIES }], port: 0, prefixCache: false, threads: 1 }));
    client = new Anthropic({ baseURL: `${url}/anthropic`, apiKey: 'test', maxRetries: 0 });
  });
  after(() => server.close());

  const request = params({ model: 'stories260K', max_tokens: 8, temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }] });

  test('a claude-* name is served by the first model; the stream says what the whole answer says', async () => {
    const whole = await client.messages.create({ ...request, model: 'claude-sonnet-4-5' });
    assert.equal(whole.model, 'stories260K');
    assert.equal(whole.stop_reason, 'max_tokens');
    assert.equal(whole.usage.output_tokens, 8);
    assert.ok(whole.usage.input_tokens > 0);
    assert.equal(whole.content.length, 1);
    assert.equal(whole.content[0].type, 'text');
    const text = (whole.content[0] as Anthropic.TextBlock).text;
    assert.ok(text.length > 0);

    const r = await postSse(`${url}/anthropic/v1/messages`, { ...request, stream: true });
    const names = r.events.map((e) => e.event);
    assert.deepEqual([names[0], names[1], ...names.slice(-3)], ['message_start', 'content_block_start', 'content_block_stop', 'message_delta', 'message_stop']);
    const deltas = r.events.filter((e) => e.event === 'content_block_delta').map((e) => e.data);
    assert.equal(deltas.length, names.length - 5);
    assert.ok(deltas.every((d) => d.index === 0 && d.delta.type === 'text_delta'));
    assert.equal(deltas.map((d) => d.delta.text).join(''), text, 'greedy: the same text streamed');
    assert.deepEqual(r.events.at(-2)!.data, { type: 'message_delta', delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { ...whole.usage } });
  });

  test('stop_sequences end the answer before the sequence, and say which one', async () => {
    const whole = await client.messages.create(request);
    const text = (whole.content[0] as Anthropic.TextBlock).text;
    const cut = text.trimStart().split(' ')[1]; // the second word of the greedy answer
    const stopped = await client.messages.create({ ...request, stop_sequences: [cut] });
    const stoppedText = stopped.content.length ? (stopped.content[0] as Anthropic.TextBlock).text : '';
    assert.equal(stoppedText, text.slice(0, text.indexOf(cut)));
    assert.equal(stopped.stop_reason, 'stop_sequence');
    assert.equal(stopped.stop_sequence, cut);
  });

  test('errors come back in the Anthropic shape', async () => {
    await assert.rejects(client.messages.create({ ...request, model: 'gpt-4o' }), (e: any) => {
      assert.equal(e instanceof Anthropic.BadRequestError, true);
      assert.deepEqual(e.error, { type: 'error', error: { type: 'invalid_request_error', message: 'Model Not Exist: "gpt-4o"; this server has "stories260K"' } });
      return true;
    });
    await assert.rejects(client.messages.create(params({ ...request, temperature: 2.5 })), (e: any) => {
      assert.equal(e instanceof Anthropic.BadRequestError, true);
      assert.equal(e.error.error.message, 'temperature must be between 0 and 2, got 2.5');
      return true;
    });
    const missing = await postJson(`${url}/anthropic/v1/messages`, { model: 'stories260K', messages: request.messages });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.json, { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens is required' } });
    const notJson = await postJson(`${url}/anthropic/v1/messages`, '{"model":');
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.type, 'error');
    assert.match(notJson.json.error.message, /not valid JSON/);
  });
});

describe('the tiny DeepSeek-V4 through the SDK', () => {
  let url: string, server: ApiServer, client: Anthropic;
  const tokens = (messages: V4Message[], thinking: boolean, effort: 'high' | 'max' = 'high') =>
    (server.context.registry.get('v4') as LocalBackend).model.tokenizer.encode(encodeV4Messages(messages, { thinking, reasoningEffort: effort }), { parseSpecial: true }).length;
  // A string enum keeps the forced call short: its value is one of two words.
  const schema = { type: 'object' as const, properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'] };
  const tools = [{ name: 'get_weather', description: 'Weather of a city', input_schema: schema }];
  const v4Tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: schema } }];

  before(async () => {
    ({ url, server } = await startServer({ models: [{ name: 'v4', path: tinyV4() }], port: 0, prefixCache: false, threads: 1 }));
    client = new Anthropic({ baseURL: `${url}/anthropic`, apiKey: 'test', maxRetries: 0 });
  });
  after(() => server?.close());

  test('thinking on by default: a thinking block first, the prompt of the thinking mode', async () => {
    const m = await client.messages.create({ model: 'v4', max_tokens: 2, system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(m.content[0].type, 'thinking');
    assert.equal((m.content[0] as Anthropic.ThinkingBlock).signature, '');
    assert.equal(m.stop_reason, 'max_tokens');
    assert.equal(m.usage.output_tokens, 2);
    assert.equal(m.usage.input_tokens, tokens([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], true));
  });

  test('effort max streams thinking deltas over the Think Max prompt', async () => {
    const r = await postSse(`${url}/anthropic/v1/messages`, { model: 'v4', max_tokens: 2, stream: true, output_config: { effort: 'max' }, messages: [{ role: 'user', content: 'Hi' }] });
    const names = r.events.map((e) => e.event);
    assert.deepEqual([names[0], names[1]], ['message_start', 'content_block_start']);
    assert.deepEqual(r.events[1].data.content_block, { type: 'thinking', thinking: '', signature: '' });
    assert.deepEqual(names.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    const deltas = r.events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.type);
    assert.ok(deltas.includes('thinking_delta'), names.join());
    const usage = r.events.at(-2)!.data.usage;
    assert.equal(usage.output_tokens, 2);
    assert.equal(usage.input_tokens, tokens([{ role: 'user', content: 'Hi' }], true, 'max'));
    assert.ok(usage.input_tokens > tokens([{ role: 'user', content: 'Hi' }], true, 'high'));
  });

  test('thinking disabled: no thinking block, the non-thinking prompt', async () => {
    const m = await client.messages.stream(params({ model: 'claude-haiku-4-5', max_tokens: 3, temperature: 0, thinking: { type: 'disabled' }, messages: [{ role: 'user', content: 'Hi' }] })).finalMessage();
    assert.equal(m.model, 'v4');
    assert.ok(m.content.every((b) => b.type === 'text'));
    assert.equal(m.usage.input_tokens, tokens([{ role: 'user', content: 'Hi' }], false));
  });

  test('a forced tool call, streamed; its result sent back is answered', async () => {
    const user = { role: 'user' as const, content: 'Weather in Paris?' };
    const r = await postSse(`${url}/anthropic/v1/messages`, {
      model: 'v4', max_tokens: 200, temperature: 0, stream: true, thinking: { type: 'disabled' }, tools, tool_choice: { type: 'tool', name: 'get_weather' }, messages: [user],
    });
    const starts = r.events.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block);
    assert.ok(starts.length >= 1);
    const calls = starts.map((b, i) => {
      assert.equal(b.type, 'tool_use');
      assert.equal(b.name, 'get_weather');
      assert.deepEqual(b.input, {});
      assert.match(b.id, /^call_\d\d_/);
      const json = r.events.filter((e) => e.event === 'content_block_delta' && e.data.index === i).map((e) => e.data.delta);
      assert.equal(json.length, 1);
      assert.equal(json[0].type, 'input_json_delta');
      const input = JSON.parse(json[0].partial_json);
      assert.ok(['Paris', 'Rome'].includes(input.city), json[0].partial_json);
      return { type: 'tool_use' as const, id: b.id as string, name: 'get_weather', input };
    });
    assert.equal(r.events.at(-2)!.data.delta.stop_reason, 'tool_use');

    const results = calls.map((c) => ({ type: 'tool_result' as const, tool_use_id: c.id, content: 'Sunny, 25C' }));
    const answer = await client.messages.create(params({
      model: 'v4', max_tokens: 2, temperature: 0, thinking: { type: 'disabled' }, tools,
      messages: [user, { role: 'assistant', content: calls }, { role: 'user', content: results }],
    }));
    assert.equal(answer.stop_reason, 'max_tokens');
    assert.equal(answer.usage.input_tokens, tokens([
      { role: 'system', content: '', tools: v4Tools },
      user,
      { role: 'assistant', content: '', tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.input) } })) },
      ...calls.map((c) => ({ role: 'tool' as const, content: 'Sunny, 25C', tool_call_id: c.id })),
    ] as V4Message[], false), 'the conversation is the prompt the encoder writes for it');
  });

  test('thinking mode: a tool turn without its thinking block is the pass-back 400; with it, answered', async () => {
    const history = (withThinking: boolean): Anthropic.MessageParam[] => [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: [
        ...(withThinking ? [{ type: 'thinking' as const, thinking: 'Use the tool.', signature: '' }] : []),
        { type: 'tool_use' as const, id: 'call_00_x', name: 'get_weather', input: { city: 'Paris' } },
      ] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_00_x', content: 'Sunny' }] },
    ];
    await assert.rejects(client.messages.create({ model: 'v4', max_tokens: 1, tools, messages: history(false) }), (e: any) => {
      assert.equal(e instanceof Anthropic.BadRequestError, true);
      assert.deepEqual(e.error, { type: 'error', error: { type: 'invalid_request_error', message: PASS_BACK_MESSAGE } });
      return true;
    });
    const m = await client.messages.create({ model: 'v4', max_tokens: 1, tools, messages: history(true) });
    assert.equal(m.content[0].type, 'thinking');
  });

  test('a forced tool choice in thinking mode is refused', async () => {
    await assert.rejects(client.messages.create({ model: 'v4', max_tokens: 10, tools, tool_choice: { type: 'any' }, messages: [{ role: 'user', content: 'Hi' }] }), (e: any) => {
      assert.equal(e instanceof Anthropic.BadRequestError, true);
      assert.equal(e.error.error.type, 'invalid_request_error');
      assert.match(e.error.error.message, /not supported in thinking mode/);
      return true;
    });
  });
});
