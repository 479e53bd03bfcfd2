// Hostile input: 5,000 malformed requests (wrong types, huge numbers, bad UTF-8, deep JSON, unknown
// and path-like model names, truncated bodies, random paths) against a real server. Every answer
// must be a documented status with the documented error body — never a 5xx, a hang or a crash —
// and the server must still answer a good request afterwards. Seeded: every run sends the same.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { rng } from '../support/rng.js';
import { serve, STORIES, type Running } from './helpers.js';

const N = Number(process.env.MINKE_FUZZ_REQUESTS ?? 5000);

let srv: Running;
before(async () => { srv = await serve({ models: [{ path: STORIES }], maxBodyBytes: 1 << 20, maxTokens: 64, parallel: 4 }); });
after(async () => { await srv?.close(); });

const ENDPOINTS = ['/chat/completions', '/v1/chat/completions', '/beta/chat/completions', '/beta/completions', '/anthropic/v1/messages', '/responses'];
const FIELDS = ['model', 'messages', 'max_tokens', 'temperature', 'top_p', 'stream', 'stop', 'tools', 'tool_choice', 'thinking', 'reasoning_effort',
  'response_format', 'logprobs', 'top_logprobs', 'stream_options', 'prompt', 'suffix', 'system', 'input', 'max_output_tokens', 'user_id', 'seed', 'n'];
const MODELS = ['stories260K', '', '../../etc/passwd', '/dev/zero', 'C:\\Windows\\win.ini', '%2e%2e%2f', 'stories260K\u0000', 'a'.repeat(5000), 'claude-3', 'STORIES260K'];

function valid(path: string): Record<string, unknown> {
  if (path.endsWith('/messages')) return { model: 'stories260K', max_tokens: 4, messages: [{ role: 'user', content: 'Hi' }] };
  if (path === '/responses') return { model: 'stories260K', input: 'Hi', max_output_tokens: 4 };
  if (path === '/beta/completions') return { model: 'stories260K', prompt: 'Once', max_tokens: 4 };
  return { model: 'stories260K', max_tokens: 4, messages: [{ role: 'user', content: 'Hi' }] };
}

function hostileValue(r: () => number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  return pick<() => unknown>([
    () => null, () => true, () => -1, () => 0, () => 1e308, () => -1e308, () => 2 ** 53 + 1, () => 0.5, () => 'x', () => '',
    () => '\ud800', () => 'a'.repeat(100_000), () => [], () => [null], () => ({}), () => ({ type: 'enabled' }), () => ({ type: 'function' }),
    () => [{ role: 'user' }], () => [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }],
    () => Array.from({ length: 200 }, () => ({ role: 'user', content: 'x' })), () => [{ role: 'assistant', content: null, prefix: true }],
    () => [{ type: 'function', function: { name: 'f'.repeat(65) } }], () => Array(200).fill({ type: 'function', function: { name: 'f' } }),
    () => pick(MODELS), () => ({ include_usage: 'yes' }), () => ({ type: 'json_schema', json_schema: { schema: { type: 'nope' } } }),
  ])();
}

/** One hostile request: [path, body bytes, content-type]. */
function hostile(r: () => number): [string, Buffer | string, string] {
  const path = ENDPOINTS[Math.floor(r() * ENDPOINTS.length)];
  const body = valid(path);
  const kind = Math.floor(r() * 10);
  switch (kind) {
    case 0: return [path, JSON.stringify(body).slice(0, Math.floor(r() * 40)), 'application/json']; // truncated
    case 1: return [path, Buffer.concat([Buffer.from('{"model":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]), 'application/json']; // bad UTF-8
    case 2: { const d = 50 + Math.floor(r() * 5000); return [path, `{"messages":${'['.repeat(d)}${']'.repeat(d)}}`, 'application/json']; } // deep JSON
    case 3: return [`/${Math.floor(r() * 1e6).toString(36)}/../chat/completions`, JSON.stringify(body), 'application/json']; // path games
    case 4: { body.model = MODELS[Math.floor(r() * MODELS.length)]; return [path, JSON.stringify(body), 'application/json']; }
    case 5: return [path, JSON.stringify(hostileValue(r)), 'text/plain'];
    default: {
      // Replace or add one to three fields with values of the wrong type or range.
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) body[FIELDS[Math.floor(r() * FIELDS.length)]] = hostileValue(r);
      return [path, JSON.stringify(body), 'application/json'];
    }
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function send(url: string, path: string, body: Buffer | string, type: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', agent, headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in 30 s to ${path}`)));
    req.on('error', reject);
    req.end(body);
  });
}

test(`${N} hostile requests get only documented answers, and the server keeps serving`, { timeout: 600_000 }, async () => {
  const r = rng(20261130);
  const statuses = new Map<number, number>();
  const queue = Array.from({ length: N }, () => hostile(r));
  const worker = async () => {
    for (let job = queue.pop(); job; job = queue.pop()) {
      const [path, body, type] = job;
      const res = await send(srv.url, path, body, type);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok([200, 400, 404, 422, 429].includes(res.status), `${res.status} for ${path} ${String(body).slice(0, 200)}: ${res.text.slice(0, 300)}`);
      if (res.status === 200) continue; // a mutation that happened to be valid (or a stream, which ends in [DONE])
      const err = JSON.parse(res.text);
      if (path.startsWith('/anthropic')) {
        assert.equal(err.type, 'error');
        assert.equal(typeof err.error.message, 'string');
      } else {
        assert.equal(typeof err.error.message, 'string', res.text.slice(0, 300));
        assert.equal(typeof err.error.type, 'string');
        assert.ok('param' in err.error && 'code' in err.error);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const c400 = statuses.get(400) ?? 0;
  assert.ok(c400 > N / 2, `most hostile requests are 400s: ${JSON.stringify([...statuses])}`);
  const good = await send(srv.url, '/chat/completions', JSON.stringify(valid('/chat/completions')), 'application/json');
  assert.equal(good.status, 200);
  assert.equal(JSON.parse(good.text).object, 'chat.completion');
});
