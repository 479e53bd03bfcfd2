// The OpenAI Responses dialect, stateless as at DeepSeek (api-deepseek.md §14): request → ChatJob
// field by field, the semantic event stream of a scripted answer written out by hand, and real
// servers (stories260K, the tiny V4 with reasoning and DSML tool calls) driven by the official,
// unmodified `openai` SDK.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { encodeV4Messages, type V4Message } from '../../src/chat/deepseek-v4-encoding.js';
import type { ChatEvent, ChatOutcome } from '../../src/server/chat.js';
import { PASS_BACK_MESSAGE } from '../../src/server/errors.js';
import type { ApiServer } from '../../src/server/http.js';
import { startServer } from '../../src/server/index.js';
import type { LocalBackend } from '../../src/server/local-backend.js';
import { parseResponsesRequest } from '../../src/server/responses-request.js';
import { ResponsesTranscript } from '../../src/server/responses-wire.js';
import { postSse, ScriptedBackend, serveBackends } from './dialect-helpers.js';
import { postJson, STORIES, tinyV4 } from './helpers.js';

const ctx = { reasoning: true, maxTokens: 1000, signal: new AbortController().signal };
const base = { model: 'm', input: 'Hi' };
const parse = (extra: object, c = ctx) => parseResponsesRequest({ ...base, ...extra }, c);

describe('request → ChatJob', () => {
  test('input items map to turns; reasoning items go to the assistant turn after them', () => {
    const { job, stream } = parse({
      stream: true, instructions: 'Be brief.', max_output_tokens: 64, temperature: 0.5, top_p: 0.9, store: false, parallel_tool_calls: false,
      input: [
        { role: 'developer', content: 'Use tools.' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather?' }, { type: 'input_text', text: 'In Paris.' }] },
        { type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'reasoning_text', text: 'Need ' }, { type: 'reasoning_text', text: 'the tool.' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Checking.', annotations: [] }] },
        { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call', call_id: 'c2', name: 'get_weather', arguments: '{"city":"Rome"}' },
        { type: 'function_call_output', call_id: 'c1', output: 'Sunny' },
        { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'Rainy' }] },
        { type: 'reasoning', id: 'rs_2', summary: [] },
        { type: 'function_call', call_id: 'c3', name: 'get_weather', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c3', output: '?' },
        { role: 'system', content: 'Answer now.' },
        { role: 'user', content: 'So?' },
      ],
      tools: [{ type: 'function', name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object' }, strict: true }],
      tool_choice: 'auto',
      reasoning: { effort: 'max', summary: 'auto' },
      text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object' } }, verbosity: 'low' },
    });
    assert.equal(stream, true);
    assert.equal(job.parallelToolCalls, false);
    assert.deepEqual(job.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'system', content: 'Use tools.' },
      { role: 'user', content: 'Weather?\n\nIn Paris.' },
      { role: 'assistant', content: 'Checking.', reasoning: 'Need the tool.', toolCalls: [
        { id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' }, { id: 'c2', name: 'get_weather', arguments: '{"city":"Rome"}' },
      ] },
      { role: 'tool', content: 'Sunny', toolCallId: 'c1' },
      { role: 'tool', content: 'Rainy', toolCallId: 'c2' },
      { role: 'assistant', content: '', reasoning: '', toolCalls: [{ id: 'c3', name: 'get_weather', arguments: '{}' }] },
      { role: 'tool', content: '?', toolCallId: 'c3' },
      { role: 'system', content: 'Answer now.' },
      { role: 'user', content: 'So?' },
    ]);
    assert.deepEqual(job.tools, [{ name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object' }, strict: true }]);
    assert.equal(job.toolChoice, 'auto');
    assert.equal(job.think, 'max');
    assert.deepEqual(job.responseFormat, { schema: { type: 'object' } });
    assert.equal(job.maxTokens, 64);
    assert.equal(job.temperature, 0.5);
    assert.equal(job.topP, 0.9);
    assert.deepEqual(job.stop, []);
  });

  test('an assistant turn without a reasoning item has no reasoning (the pass-back check sees it)', () => {
    const { job } = parse({ input: [
      { role: 'user', content: 'x' },
      { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c1', output: 'y' },
    ] });
    assert.deepEqual(job.messages[1], { role: 'assistant', content: '', reasoning: undefined, toolCalls: [{ id: 'c1', name: 'f', arguments: '{}' }] });
  });

  test('reasoning.effort → reasoning mode (none turns thinking off), tool_choice and text.format', () => {
    const think = (effort?: string, c = ctx) => parse(effort === undefined ? {} : { reasoning: { effort } }, c).job.think;
    assert.equal(think(), 'high', 'thinking defaults on at high effort (§5)');
    assert.equal(think('none'), 'none');
    assert.equal(think('minimal'), 'low', 'minimal and low apply low (§5); the V4 format thinks at high then');
    assert.equal(think('low'), 'low');
    assert.equal(think('medium'), 'high');
    assert.equal(think('high'), 'high');
    assert.equal(think('max'), 'max');
    assert.equal(think('high', { ...ctx, reasoning: false }), 'none', 'a model without reasoning never thinks');

    const tools = [{ type: 'function', name: 'a' }, { type: 'function', name: 'b' }];
    const choice = (tool_choice?: unknown) => parse({ tools, tool_choice }).job.toolChoice;
    assert.equal(choice(), 'auto');
    assert.equal(choice('none'), 'none');
    assert.equal(choice('required'), 'required');
    assert.deepEqual(choice({ type: 'function', name: 'b' }), { name: 'b' });
    assert.equal(parse({}).job.toolChoice, 'none', 'no tools: none');
    assert.equal(parse({}).job.parallelToolCalls, true, 'parallel calls by default');

    assert.equal(parse({ text: { format: { type: 'text' } } }).job.responseFormat, 'text');
    assert.equal(parse({ text: { format: { type: 'json_object' } } }).job.responseFormat, 'json_object');
  });

  test('state is refused: the API is stateless', () => {
    for (const [extra, param] of [
      [{ previous_response_id: 'resp_1' }, 'previous_response_id'],
      [{ store: true }, 'store'],
      [{ conversation: 'conv_1' }, 'conversation'],
      [{ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].type'],
    ] as const) {
      assert.throws(() => parse(extra), (e: any) => e.status === 400 && e.param === param && /stateless/.test(e.message), param);
    }
  });

  test('bad fields are refused with a 400 naming them', () => {
    const cases: [object, string, RegExp][] = [
      [{ model: undefined }, 'model', /must be a string/],
      [{ input: [] }, 'input', /at least one item/],
      [{ input: 3 }, 'input', /must be an array/],
      [{ input: [{ type: 'reasoning', summary: [] }] }, 'input', /no message/],
      [{ input: [{ role: 'tool', content: 'x' }] }, 'input[0].role', /must be one of/],
      [{ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] }, 'input[0].content[0].type', /"input_image" is not supported/],
      [{ input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 'input[0].call_id', /must be a string/],
      [{ input: [{ type: 'web_search_call', id: 'x' }] }, 'input[0].type', /"web_search_call" is not supported/],
      [{ background: true }, 'background', /not supported/],
      [{ tools: [{ type: 'web_search' }] }, 'tools[0].type', /"web_search" is not supported/],
      [{ tools: [{ type: 'function', name: 'a.b' }] }, 'tools[0].name', /1–64 characters/],
      [{ tools: [{ type: 'function', name: 'a' }, { type: 'function', name: 'a' }] }, 'tools', /two tools/],
      [{ tool_choice: 'required' }, 'tool_choice', /needs tools/],
      [{ tools: [{ type: 'function', name: 'a' }], tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [] } }, 'tool_choice.type', /not supported/],
      [{ tools: [{ type: 'function', name: 'a' }], tool_choice: { type: 'function', name: 'b' } }, 'tool_choice.name', /"b", which is not in tools/],
      [{ reasoning: { effort: 'extreme' } }, 'reasoning.effort', /must be one of/],
      [{ text: { format: { type: 'yaml' } } }, 'text.format.type', /must be one of/],
      [{ text: { format: { type: 'json_schema', name: 'x' } } }, 'text.format.schema', /must be an object/],
      [{ max_output_tokens: 0 }, 'max_output_tokens', /between 1 and 1000/],
      [{ temperature: 3 }, 'temperature', /between 0 and 2/],
      [{ top_p: -1 }, 'top_p', /between 0 and 1/],
      [{ parallel_tool_calls: 'no' }, 'parallel_tool_calls', /must be a boolean/],
    ];
    for (const [patch, param, message] of cases) {
      assert.throws(() => parse(patch), (e: any) => {
        assert.equal(e.status, 400, JSON.stringify(patch));
        assert.equal(e.param, param, JSON.stringify(patch));
        assert.match(e.message, message);
        return true;
      });
    }
  });
});

describe('ChatEvents → wire', () => {
  const echo = parse({}).echo;
  const usage = { promptTokens: 5, completionTokens: 2, cachedTokens: 1, reasoningTokens: 0 };
  const ended = (finishReason: ChatOutcome['finishReason']) => {
    const t = new ResponsesTranscript('resp_1', 1, 'm', echo, false);
    t.start();
    t.push({ type: 'content', text: 'ab' });
    return { events: t.finish({ finishReason, usage }), response: t.response() };
  };

  test('finish reasons → status, incomplete_details, error, and the last event', () => {
    const cases = [
      ['stop', 'completed', null, null, 'response.completed'],
      ['tool_calls', 'completed', null, null, 'response.completed'],
      ['length', 'incomplete', { reason: 'max_output_tokens' }, null, 'response.incomplete'],
      ['content_filter', 'incomplete', { reason: 'content_filter' }, null, 'response.incomplete'],
      ['insufficient_system_resource', 'failed', null, 'server_error', 'response.failed'],
    ] as const;
    for (const [reason, status, details, code, last] of cases) {
      const { events, response } = ended(reason);
      assert.equal(response.status, status, reason);
      assert.deepEqual(response.incomplete_details, details, reason);
      assert.equal((response.error as { code: string } | null)?.code ?? null, code, reason);
      assert.equal(events.at(-1)!.event, last, reason);
      assert.equal((response.output as { status: string }[])[0].status, status === 'completed' ? 'completed' : 'incomplete', reason);
      assert.deepEqual(response.usage, { input_tokens: 5, input_tokens_details: { cached_tokens: 1 }, output_tokens: 2, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 7 });
    }
  });

  test('an empty answer still has its (empty) message item', () => {
    const t = new ResponsesTranscript('resp_1', 1, 'm', echo, false);
    t.start();
    const names = t.finish({ finishReason: 'stop', usage }).map((w) => w.event);
    assert.deepEqual(names, [
      'response.output_item.added', 'response.content_part.added', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
    ]);
    assert.deepEqual((t.response().output as { content: unknown }[])[0].content, [{ type: 'output_text', text: '', annotations: [], logprobs: [] }]);
  });
});

// A scripted answer with every kind of event.
const SCRIPT: ChatEvent[] = [
  { type: 'reasoning', text: 'Let me' },
  { type: 'reasoning', text: ' think' },
  { type: 'content', text: 'Hello' },
  { type: 'content', text: ' world' },
  { type: 'tool_call', index: 0, call: { id: 'call_1', name: 'get_weather', arguments: '{"city": "Paris"}' } },
];
const OUTCOME: ChatOutcome = { finishReason: 'tool_calls', usage: { promptTokens: 20, completionTokens: 9, cachedTokens: 4, reasoningTokens: 2 } };
const USAGE = { input_tokens: 20, input_tokens_details: { cached_tokens: 4 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 29 };

describe('a scripted backend over HTTP', () => {
  let url: string, server: ApiServer, backend: ScriptedBackend;

  before(async () => {
    backend = new ScriptedBackend('fake', () => ({ events: SCRIPT, end: OUTCOME }));
    const failing = new ScriptedBackend('failing', () => ({ events: [{ type: 'content', text: 'Hel' }], end: new Error('the kernel fell over') }), false);
    ({ url, server } = await serveBackends([backend, failing]));
  });
  after(() => server.close());

  const request = { model: 'fake', input: 'Hi', tools: [{ type: 'function' as const, name: 'get_weather', parameters: { type: 'object' }, strict: false }], max_output_tokens: 100 };

  test('the stream, event by event, with a rising sequence_number and no [DONE]', async () => {
    const r = await postSse(`${url}/v1/responses`, { ...request, stream: true });
    assert.equal(r.status, 200);
    assert.match(r.contentType ?? '', /^text\/event-stream/);
    assert.ok(!r.text.includes('[DONE]'));
    r.events.forEach((e, i) => {
      assert.equal(e.event, e.data.type, 'every event is named as its type');
      assert.equal(e.data.sequence_number, i);
    });
    const response = r.events[0].data.response;
    const [rs, msg, fc] = r.events.filter((e) => e.event === 'response.output_item.added').map((e) => e.data.item.id);
    assert.match(response.id, /^resp_[0-9a-f]{32}$/);
    assert.match(rs, /^rs_/);
    assert.match(msg, /^msg_/);
    assert.match(fc, /^fc_/);
    const text = (t: string) => ({ type: 'output_text', text: t, annotations: [], logprobs: [] });
    const reasoning = (t: string, status: string) => ({ type: 'reasoning', id: rs, summary: [], content: [{ type: 'reasoning_text', text: t }], status });
    const message = (t: string, status: string) => ({ type: 'message', id: msg, role: 'assistant', status, content: [text(t)] });
    const call = (args: string, status: string) => ({ type: 'function_call', id: fc, call_id: 'call_1', name: 'get_weather', arguments: args, status });
    const inProgress = { ...response, status: 'in_progress', output: [], usage: null };
    const at = (item_id: string, output_index: number) => ({ item_id, output_index });
    const expected = [
      { type: 'response.created', response: inProgress },
      { type: 'response.in_progress', response: inProgress },
      { type: 'response.output_item.added', output_index: 0, item: { ...reasoning('', 'in_progress'), content: [] } },
      { type: 'response.content_part.added', ...at(rs, 0), content_index: 0, part: { type: 'reasoning_text', text: '' } },
      { type: 'response.reasoning_text.delta', ...at(rs, 0), content_index: 0, delta: 'Let me' },
      { type: 'response.reasoning_text.delta', ...at(rs, 0), content_index: 0, delta: ' think' },
      { type: 'response.reasoning_text.done', ...at(rs, 0), content_index: 0, text: 'Let me think' },
      { type: 'response.content_part.done', ...at(rs, 0), content_index: 0, part: { type: 'reasoning_text', text: 'Let me think' } },
      { type: 'response.output_item.done', output_index: 0, item: reasoning('Let me think', 'completed') },
      { type: 'response.output_item.added', output_index: 1, item: { ...message('', 'in_progress'), content: [] } },
      { type: 'response.content_part.added', ...at(msg, 1), content_index: 0, part: text('') },
      { type: 'response.output_text.delta', ...at(msg, 1), content_index: 0, delta: 'Hello', logprobs: [] },
      { type: 'response.output_text.delta', ...at(msg, 1), content_index: 0, delta: ' world', logprobs: [] },
      { type: 'response.output_text.done', ...at(msg, 1), content_index: 0, text: 'Hello world', logprobs: [] },
      { type: 'response.content_part.done', ...at(msg, 1), content_index: 0, part: text('Hello world') },
      { type: 'response.output_item.done', output_index: 1, item: message('Hello world', 'completed') },
      { type: 'response.output_item.added', output_index: 2, item: call('', 'in_progress') },
      { type: 'response.function_call_arguments.delta', ...at(fc, 2), delta: '{"city": "Paris"}' },
      { type: 'response.function_call_arguments.done', ...at(fc, 2), name: 'get_weather', arguments: '{"city": "Paris"}' },
      { type: 'response.output_item.done', output_index: 2, item: call('{"city": "Paris"}', 'completed') },
      { type: 'response.completed', response: {
        ...response, status: 'completed', usage: USAGE,
        output: [reasoning('Let me think', 'completed'), message('Hello world', 'completed'), call('{"city": "Paris"}', 'completed')],
      } },
    ];
    assert.deepEqual(r.events.map((e) => { const { sequence_number: _, ...rest } = e.data; return rest; }), expected);
    // The response object repeats the request's settings.
    assert.deepEqual({ ...response, id: 'x', created_at: 0 }, {
      id: 'x', object: 'response', created_at: 0, status: 'in_progress', background: false, error: null, incomplete_details: null,
      instructions: null, max_output_tokens: 100, model: 'fake', output: [], parallel_tool_calls: true, previous_response_id: null,
      reasoning: { effort: 'high', summary: null }, store: false, temperature: null, text: { format: { type: 'text' } },
      tool_choice: 'auto', tools: request.tools, top_p: null, truncation: 'disabled', usage: null, metadata: {},
    });
    assert.ok(Math.abs(response.created_at - Date.now() / 1000) < 60);
  });

  test('the SDK streams it and assembles the same response as the whole answer', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'test' });
    const stream = client.responses.stream(request);
    const types: string[] = [];
    for await (const e of stream) types.push(e.type);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    const streamed = await stream.finalResponse();
    const whole = await client.responses.create(request);
    for (const r of [streamed, whole]) {
      assert.equal(r.status, 'completed');
      assert.equal(r.output_text, 'Hello world');
      assert.deepEqual(r.output.map((o) => o.type), ['reasoning', 'message', 'function_call']);
      const fc = r.output[2] as OpenAI.Responses.ResponseFunctionToolCall;
      assert.deepEqual([fc.call_id, fc.name, fc.arguments, fc.status], ['call_1', 'get_weather', '{"city": "Paris"}', 'completed']);
      assert.deepEqual((r.output[0] as OpenAI.Responses.ResponseReasoningItem).content, [{ type: 'reasoning_text', text: 'Let me think' }]);
      assert.deepEqual(r.usage, USAGE);
    }
  });

  test('a failure mid-stream ends with response.failed', async () => {
    const r = await postSse(`${url}/responses`, { ...request, model: 'failing', stream: true });
    assert.deepEqual(r.events.map((e) => e.event), [
      'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added', 'response.output_text.delta',
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.failed',
    ]);
    r.events.forEach((e, i) => assert.equal(e.data.sequence_number, i));
    const failed = r.events.at(-1)!.data.response;
    assert.equal(failed.status, 'failed');
    assert.deepEqual(failed.error, { code: 'server_error', message: 'the kernel fell over' });
    assert.equal(failed.output[0].status, 'incomplete');
    assert.equal(failed.output[0].content[0].text, 'Hel');
  });
});

describe('stories260K through the SDK', () => {
  let url: string, server: ApiServer, client: OpenAI;

  before(async () => {
    ({ url, server } = await startServer({ models: [{ path: STORIES }], port: 0, prefixCache: false, threads: 1 }));
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'test', maxRetries: 0 });
  });
  after(() => server.close());

  const request = { model: 'stories260K', input: 'Once upon a time', max_output_tokens: 8, temperature: 0 };

  test('a whole response and the streamed one say the same', async () => {
    const whole = await client.responses.create(request);
    assert.equal(whole.object, 'response');
    assert.equal(whole.status, 'incomplete');
    assert.deepEqual(whole.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(whole.output.length, 1, 'a model without reasoning: no reasoning item');
    assert.equal(whole.reasoning?.effort, null);
    assert.equal(whole.usage?.output_tokens, 8);
    assert.equal(whole.usage?.total_tokens, whole.usage!.input_tokens + 8);
    assert.ok(whole.output_text.length > 0);

    const r = await postSse(`${url}/responses`, { ...request, stream: true });
    r.events.forEach((e, i) => assert.equal(e.data.sequence_number, i));
    const deltas = r.events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta);
    assert.equal(deltas.join(''), whole.output_text, 'greedy: the same text streamed');
    assert.equal(r.events.at(-1)!.event, 'response.incomplete');
    assert.equal(r.events.at(-1)!.data.response.output[0].content[0].text, whole.output_text);
  });

  test('errors come back in the OpenAI shape', async () => {
    await assert.rejects(client.responses.create({ ...request, model: 'gpt-4o' }), (e: any) => {
      assert.equal(e instanceof OpenAI.BadRequestError, true);
      assert.deepEqual(e.error, { message: 'Model Not Exist: "gpt-4o"; this server has "stories260K"', type: 'invalid_request_error', param: 'model', code: 'invalid_request_error' });
      return true;
    });
    await assert.rejects(client.responses.create({ ...request, previous_response_id: 'resp_123' }), (e: any) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, 'previous_response_id');
      assert.match(e.message, /stateless/);
      return true;
    });
    const stored = await postJson(`${url}/v1/responses`, { ...request, store: true });
    assert.equal(stored.status, 400);
    assert.equal(stored.json.error.param, 'store');
  });
});

describe('the tiny DeepSeek-V4 through the SDK', () => {
  let url: string, server: ApiServer, client: OpenAI;
  const tokens = (messages: V4Message[], thinking: boolean, effort: 'high' | 'max' = 'high') =>
    (server.context.registry.get('v4') as LocalBackend).model.tokenizer.encode(encodeV4Messages(messages, { thinking, reasoningEffort: effort }), { parseSpecial: true }).length;
  // A string enum keeps the forced call short: its value is one of two words.
  const schema = { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'] };
  const tools = [{ type: 'function' as const, name: 'get_weather', description: 'Weather of a city', parameters: schema, strict: false }];
  const v4Tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: schema } }];

  before(async () => {
    ({ url, server } = await startServer({ models: [{ name: 'v4', path: tinyV4() }], port: 0, prefixCache: false, threads: 1 }));
    client = new OpenAI({ baseURL: url, apiKey: 'test', maxRetries: 0 });
  });
  after(() => server?.close());

  test('reasoning on by default: a reasoning item first, over the thinking prompt', async () => {
    const r = await client.responses.create({ model: 'v4', instructions: 'Be brief.', input: 'Hi', max_output_tokens: 2 });
    assert.equal(r.output[0].type, 'reasoning');
    assert.equal(r.reasoning?.effort, 'high');
    assert.equal(r.usage?.output_tokens, 2);
    assert.equal(r.usage?.input_tokens, tokens([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], true));
  });

  test('effort max streams reasoning_text deltas over the Think Max prompt', async () => {
    const r = await postSse(`${url}/v1/responses`, { model: 'v4', input: 'Hi', max_output_tokens: 2, stream: true, reasoning: { effort: 'max' } });
    r.events.forEach((e, i) => assert.equal(e.data.sequence_number, i));
    const names = r.events.map((e) => e.event);
    assert.deepEqual(names.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.equal(r.events[2].data.item.type, 'reasoning');
    assert.ok(names.includes('response.reasoning_text.delta'), names.join());
    const done = r.events.at(-1)!.data.response;
    assert.equal(done.reasoning.effort, 'max');
    assert.equal(done.usage.input_tokens, tokens([{ role: 'user', content: 'Hi' }], true, 'max'));
  });

  test('effort none: no reasoning item, the non-thinking prompt', async () => {
    const r = await client.responses.create({ model: 'v4', input: 'Hi', max_output_tokens: 3, temperature: 0, reasoning: { effort: 'none' } });
    assert.deepEqual(r.output.map((o) => o.type), ['message']);
    assert.equal(r.reasoning?.effort, null);
    assert.equal(r.usage?.output_tokens_details.reasoning_tokens, 0);
    assert.equal(r.usage?.input_tokens, tokens([{ role: 'user', content: 'Hi' }], false));
  });

  test('a forced function call (one: parallel_tool_calls false), streamed; its output sent back is answered', async () => {
    const user = { role: 'user' as const, content: 'Weather in Paris?' };
    const r = await postSse(`${url}/v1/responses`, {
      model: 'v4', input: [user], tools, tool_choice: { type: 'function', name: 'get_weather' }, parallel_tool_calls: false, reasoning: { effort: 'none' },
      max_output_tokens: 200, temperature: 0, stream: true,
    });
    r.events.forEach((e, i) => assert.equal(e.data.sequence_number, i));
    const done = r.events.at(-1)!;
    assert.equal(done.event, 'response.completed');
    assert.equal(done.data.response.parallel_tool_calls, false);
    const calls = done.data.response.output;
    assert.equal(calls.length, 1);
    for (const [i, c] of calls.entries()) {
      assert.equal(c.type, 'function_call');
      assert.equal(c.name, 'get_weather');
      assert.ok(['Paris', 'Rome'].includes(JSON.parse(c.arguments).city), c.arguments);
      const own = r.events.filter((e) => e.data.output_index === i).map((e) => e.event);
      assert.deepEqual(own, ['response.output_item.added', 'response.function_call_arguments.delta', 'response.function_call_arguments.done', 'response.output_item.done']);
    }

    const outputs = calls.map((c: { call_id: string }) => ({ type: 'function_call_output' as const, call_id: c.call_id, output: 'Sunny, 25C' }));
    const answer = await client.responses.create({
      model: 'v4', input: [user, ...calls, ...outputs], tools, reasoning: { effort: 'none' }, max_output_tokens: 2, temperature: 0,
    });
    assert.equal(answer.status, 'incomplete');
    assert.equal(answer.usage?.input_tokens, tokens([
      { role: 'system', content: '', tools: v4Tools },
      user,
      { role: 'assistant', content: '', tool_calls: calls.map((c: { call_id: string; arguments: string }) => ({ id: c.call_id, type: 'function', function: { name: 'get_weather', arguments: c.arguments } })) },
      ...calls.map((c: { call_id: string }) => ({ role: 'tool' as const, content: 'Sunny, 25C', tool_call_id: c.call_id })),
    ] as V4Message[], false), 'the conversation is the prompt the encoder writes for it');
  });

  test('thinking mode: a function call without its reasoning item is the pass-back 400; with it, answered', async () => {
    const input = (withReasoning: boolean): OpenAI.Responses.ResponseInputItem[] => [
      { role: 'user', content: 'Weather in Paris?' },
      ...(withReasoning ? [{ type: 'reasoning' as const, id: 'rs_1', summary: [], content: [{ type: 'reasoning_text' as const, text: 'Use the tool.' }] }] : []),
      { type: 'function_call', call_id: 'call_00_x', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_00_x', output: 'Sunny' },
    ];
    await assert.rejects(client.responses.create({ model: 'v4', input: input(false), tools, max_output_tokens: 1 }), (e: any) => {
      assert.equal(e instanceof OpenAI.BadRequestError, true);
      assert.equal(e.error.message, PASS_BACK_MESSAGE);
      return true;
    });
    const r = await client.responses.create({ model: 'v4', input: input(true), tools, max_output_tokens: 1 });
    assert.equal(r.output[0].type, 'reasoning');
  });

  test('text.format json_schema: the answer is JSON of the schema', async () => {
    const r = await client.responses.create({
      model: 'v4', input: 'Is it sunny?', reasoning: { effort: 'none' }, max_output_tokens: 60, temperature: 0,
      text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false } } },
    });
    assert.equal(r.status, 'completed');
    assert.equal(r.text?.format?.type, 'json_schema');
    const value = JSON.parse(r.output_text);
    assert.deepEqual(Object.keys(value), ['ok']);
    assert.equal(typeof value.ok, 'boolean');
  });
});
