// UpstreamBackend against a scripted fake upstream (node:http in this process): the DeepSeek
// request it sends (api-deepseek.md §3–§4, §10–§11), the SSE answer it reads back (§7: keep-alive
// comments, reasoning/content deltas, tool-call fragments by index, logprobs, the usage chunk),
// and every failure mode as the documented error (§16) — promptly, never a hang.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChatEvent, ChatJob, ChatOutcome, ChatRun, CompletionJob } from '../../src/server/chat.js';
import { ApiError } from '../../src/server/errors.js';
import { UpstreamBackend, betaBase } from '../../src/server/upstream.js';

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
}

type Script = (res: http.ServerResponse, seen: Seen) => void;

interface Fake {
  readonly url: string;
  readonly seen: Seen[];
  /** Resolves when the fake sees a response closed before it finished it (the client went away). */
  readonly cutOff: Promise<void>;
  close(): Promise<void>;
}

const fakes: Fake[] = [];
const backends: UpstreamBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function fake(script: Script): Promise<Fake> {
  const seen: Seen[] = [];
  let cut!: () => void;
  const cutOff = new Promise<void>((r) => { cut = r; });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const s: Seen = { method: req.method!, path: req.url!, headers: req.headers, body: text ? JSON.parse(text) : undefined };
      seen.push(s);
      res.on('close', () => { if (!res.writableFinished) cut(); });
      script(res, s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const f: Fake = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen, cutOff,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  fakes.push(f);
  return f;
}

function backend(opts: ConstructorParameters<typeof UpstreamBackend>[0]): UpstreamBackend {
  const b = new UpstreamBackend(opts);
  backends.push(b);
  return b;
}

const sseHead = (res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
const data = (obj: unknown) => `data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`;
const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  data({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta, logprobs: null, finish_reason: null, ...extra }], usage: null });
const usageChunk = (usage: Record<string, unknown>) => data({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [], usage });

/** A minimal complete answer: "ok", stop, usage. */
const OK_BODY = chunk({ role: 'assistant', content: 'ok' }) + chunk({}, { finish_reason: 'stop' }) + usageChunk({ prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }) + data('[DONE]');
const okAnswer: Script = (res) => { sseHead(res); res.end(OK_BODY); };

function chatJob(over: Partial<ChatJob> = {}): ChatJob {
  return {
    model: 'remote', messages: [{ role: 'user', content: 'hi' }], think: 'none', tools: [], toolChoice: 'none',
    responseFormat: 'text', stop: [], logprobs: false, topLogprobs: 0, signal: new AbortController().signal, ...over,
  };
}

function completionJob(over: Partial<CompletionJob> = {}): CompletionJob {
  return { model: 'remote', prompt: 'def f(', stop: [], logprobs: 0, echo: false, signal: new AbortController().signal, ...over };
}

async function drain(run: ChatRun): Promise<{ events: ChatEvent[]; outcome: ChatOutcome }> {
  const events: ChatEvent[] = [];
  for await (const e of run) events.push(e);
  return { events, outcome: await run.outcome };
}

/** Runs `run` to its failure; returns the events before it, the error, and how long it took. */
async function failure(run: ChatRun): Promise<{ events: ChatEvent[]; err: ApiError; ms: number }> {
  const t0 = performance.now();
  const events: ChatEvent[] = [];
  try {
    for await (const e of run) events.push(e);
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected an ApiError, got ${String(err)}`);
    await assert.rejects(run.outcome, (e) => e === err, 'the outcome fails with the same error');
    return { events, err, ms: performance.now() - t0 };
  }
  assert.fail('the run should have failed');
}

describe('the request sent upstream', () => {
  test('a ChatJob becomes the DeepSeek chat request, streamed with usage', async () => {
    const up = await fake(okAnswer);
    const b = backend({ name: 'remote', url: up.url, apiKey: 'sk-test', model: 'deepseek-flash' });
    const { events, outcome } = await drain(b.chat(chatJob({
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'weather in Oslo?' },
        { role: 'assistant', content: '', reasoning: 'use the tool', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
        { role: 'tool', content: '12C', toolCallId: 'call_1' },
        { role: 'assistant', content: 'It is 12C.', reasoning: '' },
        { role: 'user', content: 'thanks' },
      ],
      think: 'max',
      tools: [{ name: 'get_weather', description: 'weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true }],
      toolChoice: 'auto',
      responseFormat: 'json_object',
      maxTokens: 50, stop: ['END'], temperature: 0.5, topP: 0.9,
      logprobs: true, topLogprobs: 3, userId: 'user_7',
    })));
    assert.deepEqual(events, [{ type: 'content', text: 'ok' }]);
    assert.deepEqual(outcome, { finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 1, cachedTokens: 0, reasoningTokens: 0 } });
    assert.equal(up.seen.length, 1);
    const s = up.seen[0];
    assert.equal(s.method, 'POST');
    assert.equal(s.path, '/chat/completions');
    assert.equal(s.headers.authorization, 'Bearer sk-test');
    assert.match(String(s.headers['content-type']), /^application\/json/);
    assert.deepEqual(s.body, {
      model: 'deepseek-flash',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'weather in Oslo?' },
        { role: 'assistant', content: '', reasoning_content: 'use the tool', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
        { role: 'tool', content: '12C', tool_call_id: 'call_1' },
        { role: 'assistant', content: 'It is 12C.', reasoning_content: '' },
        { role: 'user', content: 'thanks' },
      ],
      stream: true,
      stream_options: { include_usage: true },
      thinking: { type: 'enabled' },
      reasoning_effort: 'max',
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true } }],
      tool_choice: 'auto',
      response_format: { type: 'json_object' },
      max_tokens: 50, stop: ['END'], temperature: 0.5, top_p: 0.9,
      logprobs: true, top_logprobs: 3, user_id: 'user_7',
    });
  });

  test('thinking off, a named tool choice, a schema; unset fields are not sent', async () => {
    const up = await fake(okAnswer);
    const b = backend({ name: 'remote', url: `${up.url}/` });
    await drain(b.chat(chatJob({
      tools: [{ name: 'f' }], toolChoice: { name: 'f' }, seed: 42,
      responseFormat: { schema: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] } },
    })));
    await drain(b.chat(chatJob({ think: 'high' })));
    assert.equal(up.seen[0].headers.authorization, undefined, 'no key, no Authorization header');
    assert.deepEqual(up.seen[0].body, {
      model: 'remote',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
      thinking: { type: 'disabled' },
      tools: [{ type: 'function', function: { name: 'f' } }],
      tool_choice: { type: 'function', function: { name: 'f' } },
      response_format: { type: 'json_schema', json_schema: { name: 'response', schema: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] }, strict: true } },
      seed: 42,
    });
    assert.deepEqual(up.seen[1].body, {
      model: 'remote', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true },
      thinking: { type: 'enabled' }, reasoning_effort: 'high',
    });
  });

  test('the beta base: /beta stays, a final /v1 becomes /beta, else /beta is added', () => {
    assert.equal(betaBase('https://api.deepseek.com'), 'https://api.deepseek.com/beta');
    assert.equal(betaBase('https://api.deepseek.com/v1'), 'https://api.deepseek.com/beta');
    assert.equal(betaBase('https://api.deepseek.com/beta'), 'https://api.deepseek.com/beta');
    assert.equal(betaBase('http://host:8000/api/v1'), 'http://host:8000/api/beta');
    assert.equal(new UpstreamBackend({ name: 'm', url: 'https://api.deepseek.com/v1/' }).betaUrl, 'https://api.deepseek.com/beta');
    assert.throws(() => new UpstreamBackend({ name: 'm', url: 'ftp://x' }), /upstream model "m": url "ftp:\/\/x" must be an http/);
    assert.throws(() => new UpstreamBackend({ name: 'm', url: 'nonsense' }), /is not a URL/);
    assert.throws(() => new UpstreamBackend({ name: 'm', url: 'http://x', timeoutMs: 0 }), /timeoutMs must be a positive number/);
  });

  test('chat prefix completion goes to the beta base', async () => {
    const up = await fake(okAnswer);
    const b = backend({ name: 'remote', url: `${up.url}/v1` });
    await drain(b.chat(chatJob({ messages: [{ role: 'user', content: 'code' }, { role: 'assistant', content: '```python\n', prefix: true }], stop: ['```'] })));
    await drain(b.chat(chatJob()));
    assert.equal(up.seen[0].path, '/beta/chat/completions');
    assert.deepEqual(up.seen[0].body.messages, [{ role: 'user', content: 'code' }, { role: 'assistant', content: '```python\n', prefix: true }]);
    assert.equal(up.seen[1].path, '/v1/chat/completions', 'without a prefix, the plain base');
  });

  test('FIM goes to the beta /completions with its fields; betaUrl overrides the rule', async () => {
    const up = await fake((res) => { sseHead(res); res.end(data({ choices: [{ index: 0, text: 'x', finish_reason: 'stop' }] }) + data('[DONE]')); });
    await drain(backend({ name: 'remote', url: up.url, model: 'coder' }).complete(completionJob({ suffix: '):\n  pass', maxTokens: 20, stop: ['\n\n'], temperature: 0, logprobs: 2 })));
    await drain(backend({ name: 'remote', url: up.url, betaUrl: `${up.url}/v1` }).complete(completionJob({ echo: true, seed: 9 })));
    assert.equal(up.seen[0].path, '/beta/completions');
    assert.deepEqual(up.seen[0].body, {
      model: 'coder', prompt: 'def f(', stream: true, stream_options: { include_usage: true },
      suffix: '):\n  pass', max_tokens: 20, stop: ['\n\n'], temperature: 0, logprobs: 2,
    });
    assert.equal(up.seen[1].path, '/v1/completions');
    assert.deepEqual(up.seen[1].body, { model: 'remote', prompt: 'def f(', stream: true, stream_options: { include_usage: true }, seed: 9, echo: true });
  });
});

describe('the answer read back', () => {
  test('SSE chunks become events: keep-alives skipped, tool-call fragments joined, usage kept', async () => {
    const lp = (token: string, logprob: number) => ({ token, logprob, bytes: [...Buffer.from(token)], top_logprobs: [{ token, logprob, bytes: [...Buffer.from(token)] }] });
    const transcript = [
      ': keep-alive\n\n', '\n', ': keep-alive\r\n\r\n',
      chunk({ role: 'assistant', content: null, reasoning_content: '' }),
      chunk({ content: null, reasoning_content: 'Think' }, { logprobs: { content: null, reasoning_content: [lp('Think', -0.5)] } }),
      chunk({ content: null, reasoning_content: 'ing… ' }),
      ': keep-alive\n\n',
      chunk({ content: 'Calling', reasoning_content: null }, { logprobs: { content: [lp('Calling', -0.25)] } }),
      chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{"tz"' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: ':"CET"}' } }] }),
      chunk({}, { finish_reason: 'tool_calls' }),
      usageChunk({ prompt_tokens: 100, completion_tokens: 30, total_tokens: 130, prompt_cache_hit_tokens: 64, prompt_cache_miss_tokens: 36, completion_tokens_details: { reasoning_tokens: 12 } }),
      data('[DONE]'),
    ].join('');
    // Sent in uneven pieces, so lines, CRLFs and UTF-8 characters straddle the reads.
    const up = await fake((res) => {
      sseHead(res);
      const bytes = Buffer.from(transcript, 'utf8');
      let at = 0, n = 1;
      const next = () => {
        if (at >= bytes.length) return res.end();
        res.write(bytes.subarray(at, at + n));
        at += n;
        n = n % 37 + 3;
        setImmediate(next);
      };
      next();
    });
    const { events, outcome } = await drain(backend({ name: 'remote', url: up.url }).chat(chatJob({ think: 'high', logprobs: true, topLogprobs: 1 })));
    const info = (token: string, logprob: number) => ({ token, logprob, bytes: [...Buffer.from(token)], top: [{ token, logprob, bytes: [...Buffer.from(token)] }] });
    assert.deepEqual(events, [
      { type: 'reasoning', text: 'Think', logprobs: [info('Think', -0.5)] },
      { type: 'reasoning', text: 'ing… ' },
      { type: 'content', text: 'Calling', logprobs: [info('Calling', -0.25)] },
      { type: 'tool_call', index: 0, call: { id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}' } },
      { type: 'tool_call', index: 1, call: { id: 'call_b', name: 'get_time', arguments: '{"tz":"CET"}' } },
    ]);
    assert.deepEqual(outcome, { finishReason: 'tool_calls', usage: { promptTokens: 100, completionTokens: 30, cachedTokens: 64, reasoningTokens: 12 } });
  });

  test('usage on the finish chunk, cache hits in OpenAI spelling, no [DONE]', async () => {
    const up = await fake((res) => {
      sseHead(res);
      res.write(chunk({ role: 'assistant', content: '' }));
      res.write(chunk({ content: 'a' }));
      res.end(data({ choices: [{ index: 0, delta: {}, finish_reason: 'length' }], usage: { prompt_tokens: 10, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 4 } } }));
    });
    const { events, outcome } = await drain(backend({ name: 'remote', url: up.url }).chat(chatJob()));
    assert.deepEqual(events, [{ type: 'content', text: 'a' }]);
    assert.deepEqual(outcome, { finishReason: 'length', usage: { promptTokens: 10, completionTokens: 2, cachedTokens: 4, reasoningTokens: 0 } });
  });

  test('FIM text chunks with legacy logprobs', async () => {
    const up = await fake((res) => {
      sseHead(res);
      res.write(data({ object: 'text_completion', choices: [{ index: 0, text: 'x)', logprobs: { tokens: ['x', ')'], token_logprobs: [-0.1, -0.2], top_logprobs: [{ x: -0.1, y: -3 }, { ')': -0.2 }], text_offset: [6, 7] }, finish_reason: null }] }));
      res.write(data({ object: 'text_completion', choices: [{ index: 0, text: '', logprobs: null, finish_reason: 'stop' }] }));
      res.end(data({ object: 'text_completion', choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } }) + data('[DONE]'));
    });
    const { events, outcome } = await drain(backend({ name: 'remote', url: up.url }).complete(completionJob({ logprobs: 2 })));
    assert.deepEqual(events, [{
      type: 'content', text: 'x)', logprobs: [
        { token: 'x', bytes: [0x78], logprob: -0.1, top: [{ token: 'x', bytes: [0x78], logprob: -0.1 }, { token: 'y', bytes: [0x79], logprob: -3 }] },
        { token: ')', bytes: [0x29], logprob: -0.2, top: [{ token: ')', bytes: [0x29], logprob: -0.2 }] },
      ],
    }]);
    assert.deepEqual(outcome, { finishReason: 'stop', usage: { promptTokens: 5, completionTokens: 2, cachedTokens: 0, reasoningTokens: 0 } });
  });

  test('a finished answer leaves its connection open for the next request', async () => {
    const sockets = new Set<unknown>();
    // The response ends a moment after [DONE], as it may over a real network.
    const up = await fake((res) => { sockets.add(res.socket); sseHead(res); res.write(OK_BODY, () => setTimeout(() => res.end(), 20)); });
    const b = backend({ name: 'remote', url: up.url });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await drain(b.chat(chatJob()))).events, [{ type: 'content', text: 'ok' }]);
      await new Promise((r) => setTimeout(r, 50)); // the response's end is read just after [DONE]
    }
    assert.equal(sockets.size, 1, 'one keep-alive connection served all three');
  });

  test('an upstream that holds the stream open after [DONE] does not delay the answer', async () => {
    const up = await fake((res) => { sseHead(res); res.write(OK_BODY); });
    const t0 = performance.now();
    const { outcome } = await drain(backend({ name: 'remote', url: up.url }).chat(chatJob()));
    assert.equal(outcome.finishReason, 'stop');
    assert.ok(performance.now() - t0 < 500, 'finished at [DONE]');
    await up.cutOff; // let go after a moment
  });

  test('ready resolves once the upstream accepted the job', async () => {
    const up = await fake(okAnswer);
    const run = backend({ name: 'remote', url: up.url }).chat(chatJob());
    await run.ready;
    assert.deepEqual((await drain(run)).events, [{ type: 'content', text: 'ok' }]);
  });
});

describe('upstream failures are documented errors', () => {
  const errorAnswer = (status: number, body: unknown, headers: Record<string, string> = {}): Script => (res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  test('a 4xx keeps its status, message (named after the model) and param', async () => {
    const up = await fake(errorAnswer(400, { error: { message: 'The reasoning_content in the thinking mode must be passed back to the API.', type: 'invalid_request_error', param: null, code: 'invalid_request_error' } }));
    const run = backend({ name: 'remote', url: up.url }).chat(chatJob());
    await assert.rejects(run.ready, (e) => e instanceof ApiError && e.status === 400);
    const { err, events } = await failure(run);
    assert.deepEqual(events, []);
    assert.equal(err.status, 400);
    assert.deepEqual(err.toJSON(), { error: { message: 'remote: The reasoning_content in the thinking mode must be passed back to the API.', type: 'invalid_request_error', param: null, code: 'invalid_request_error' } });

    const up2 = await fake(errorAnswer(422, { object: 'error', message: 'max_tokens is too large', param: 'max_tokens' }));
    const e2 = (await failure(backend({ name: 'remote', url: up2.url }).chat(chatJob()))).err;
    assert.equal(e2.status, 422);
    assert.equal(e2.message, 'remote: max_tokens is too large');
    assert.equal(e2.param, 'max_tokens');
  });

  test('a 429 keeps its Retry-After', async () => {
    const up = await fake(errorAnswer(429, { error: { message: 'Rate Limit Reached', type: 'rate_limit_error' } }, { 'retry-after': '7' }));
    const { err } = await failure(backend({ name: 'remote', url: up.url }).chat(chatJob()));
    assert.equal(err.status, 429);
    assert.equal(err.type, 'rate_limit_error');
    assert.equal(err.retryAfter, 7);
  });

  test('401/404 upstream are the server\'s settings at fault: 500 naming the upstream', async () => {
    const up = await fake(errorAnswer(401, { error: { message: 'Authentication Fails', type: 'authentication_error' } }));
    const { err } = await failure(backend({ name: 'remote', url: up.url, apiKey: 'wrong' }).chat(chatJob()));
    assert.equal(err.status, 500);
    assert.equal(err.type, 'server_error');
    assert.match(err.message, /^remote: the upstream http:\/\/127\.0\.0\.1:\d+\/chat\/completions refused this server's request \(HTTP 401: Authentication Fails\)/);
  });

  test('an upstream 500 is a 500; 502/503 are 503 with Retry-After', async () => {
    const up = await fake(errorAnswer(500, { error: { message: 'boom', type: 'server_error' } }));
    const e500 = (await failure(backend({ name: 'remote', url: up.url }).chat(chatJob()))).err;
    assert.equal(e500.status, 500);
    assert.equal(e500.type, 'server_error');
    assert.equal(e500.message, 'remote: the upstream failed: boom');

    const up2 = await fake((res) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<html>Bad Gateway</html>'); });
    const e502 = (await failure(backend({ name: 'remote', url: up2.url }).chat(chatJob()))).err;
    assert.equal(e502.status, 503);
    assert.equal(e502.type, 'overloaded_error');
    assert.equal(e502.retryAfter, 1);
    assert.equal(e502.message, `remote: the upstream ${up2.url} is unavailable: it answered HTTP 502: <html>Bad Gateway</html>`);
  });

  test('connection refused is a prompt 503 naming the upstream', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const url = `http://127.0.0.1:${port}`;
    const { err, ms } = await failure(backend({ name: 'remote', url }).chat(chatJob()));
    assert.equal(err.status, 503);
    assert.equal(err.type, 'overloaded_error');
    assert.match(err.message, new RegExp(`^remote: the upstream ${url} is unavailable: it cannot be reached: .*ECONNREFUSED`));
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  test('no response headers within timeoutMs: 503', async () => {
    const up = await fake(() => { /* never answers */ });
    const { err, ms } = await failure(backend({ name: 'remote', url: up.url, timeoutMs: 150 }).chat(chatJob()));
    assert.equal(err.status, 503);
    assert.equal(err.message, `remote: the upstream ${up.url} is unavailable: it sent no answer within 0.15 s`);
    assert.ok(ms < 2000, `took ${ms} ms`);
    await up.cutOff; // and the upstream request was given up
  });

  test('a stream that stalls fails after the read timeout and the upstream request is dropped', async () => {
    const up = await fake((res) => { sseHead(res); res.write(chunk({ role: 'assistant', content: 'Once' })); });
    const { err, events, ms } = await failure(backend({ name: 'remote', url: up.url, readTimeoutMs: 200 }).chat(chatJob()));
    assert.deepEqual(events, [{ type: 'content', text: 'Once' }]);
    assert.equal(err.status, 503);
    assert.equal(err.message, `remote: the upstream ${up.url} is unavailable: its answer stalled (nothing for 0.2 s)`);
    assert.ok(ms >= 150 && ms < 2000, `took ${ms} ms`);
    await up.cutOff;
  });

  test('keep-alive comments count as life: a slow but alive stream is not cut', async () => {
    const up = await fake((res) => {
      sseHead(res);
      let n = 0;
      const t = setInterval(() => {
        if (++n < 12) return void res.write(': keep-alive\n\n');
        clearInterval(t);
        res.end(OK_BODY);
      }, 50);
    });
    // 600 ms in all, longer than the read timeout, but never 500 ms silent.
    const { events } = await drain(backend({ name: 'remote', url: up.url, readTimeoutMs: 500 }).chat(chatJob()));
    assert.deepEqual(events, [{ type: 'content', text: 'ok' }]);
  });

  test('a stream cut midway, or ended before its finish, is a 503', async () => {
    const up = await fake((res) => { sseHead(res); res.write(chunk({ content: 'Once' }), () => setTimeout(() => res.socket?.destroy(), 20)); });
    const cut = await failure(backend({ name: 'remote', url: up.url }).chat(chatJob()));
    assert.deepEqual(cut.events, [{ type: 'content', text: 'Once' }]);
    assert.equal(cut.err.status, 503);
    assert.match(cut.err.message, /^remote: the upstream .* is unavailable: its answer broke off: /);

    const up2 = await fake((res) => { sseHead(res); res.end(chunk({ content: 'Once' })); });
    const ended = await failure(backend({ name: 'remote', url: up2.url }).chat(chatJob()));
    assert.equal(ended.err.status, 503);
    assert.equal(ended.err.message, `remote: the upstream ${up2.url} is unavailable: its answer broke off: the stream ended before the answer finished`);
  });

  test('an error event inside the stream keeps its meaning', async () => {
    const up = await fake((res) => { sseHead(res); res.end(chunk({ content: 'a' }) + data({ error: { message: 'overloaded', type: 'overloaded_error', param: null, code: 'overloaded_error' } })); });
    const { err, events } = await failure(backend({ name: 'remote', url: up.url }).chat(chatJob()));
    assert.deepEqual(events, [{ type: 'content', text: 'a' }]);
    assert.equal(err.status, 503);
    assert.equal(err.message, 'remote: overloaded');
  });

  test('a 200 that is not an event stream is a 503', async () => {
    const up = await fake((res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"choices":[]}'); });
    const { err } = await failure(backend({ name: 'remote', url: up.url }).chat(chatJob()));
    assert.equal(err.status, 503);
    assert.match(err.message, /it answered application\/json, not an event stream$/);
  });
});

describe('ending requests', () => {
  test('the client going away aborts the upstream request at once', async () => {
    const up = await fake((res) => { sseHead(res); res.write(chunk({ content: 'Once' })); });
    const client = new AbortController();
    const run = backend({ name: 'remote', url: up.url }).chat(chatJob({ signal: client.signal }));
    const it = run[Symbol.asyncIterator]();
    assert.deepEqual((await it.next()).value, { type: 'content', text: 'Once' });
    const pending = assert.rejects(it.next(), (e) => e instanceof ApiError && e.status === 499);
    const t0 = performance.now();
    client.abort();
    await up.cutOff;
    await pending;
    assert.ok(performance.now() - t0 < 1000);
  });

  test('a reader that stops early ends the upstream request', async () => {
    const up = await fake((res) => { sseHead(res); res.write(chunk({ content: 'Once' })); });
    const run = backend({ name: 'remote', url: up.url }).chat(chatJob());
    for await (const e of run) { assert.equal(e.type, 'content'); break; }
    await up.cutOff;
    await assert.rejects(run.outcome, (e) => e instanceof ApiError);
  });

  test('close() aborts what is in flight', async () => {
    const up = await fake((res) => { sseHead(res); res.write(chunk({ content: 'Once' })); });
    const b = backend({ name: 'remote', url: up.url });
    const run = b.chat(chatJob());
    const it = run[Symbol.asyncIterator]();
    await it.next();
    const pending = assert.rejects(it.next(), (e) => e instanceof ApiError && e.status === 503 && /shutting down/.test(e.message));
    await b.close();
    await up.cutOff;
    await pending;
  });
});
