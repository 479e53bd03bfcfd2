// Context caching through the API (api-deepseek.md §12): the prefix cache on disk reports hits in
// usage as whole 64-token units, survives a server restart, and is partitioned by user_id.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { postJson, serve, STORIES } from './helpers.js';

let home: string;
const saved = process.env.MINKE_HOME;
before(() => { home = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-cache-')); process.env.MINKE_HOME = home; });
after(() => { process.env.MINKE_HOME = saved; fs.rmSync(home, { recursive: true, force: true }); });

const story = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ' +
  'One day, she saw a big, red ball. She wanted to play with it, but it was too high. Lily asked her mom for help. ';

async function ask(url: string, userId?: string) {
  const r = await postJson(`${url}/chat/completions`, { model: 'stories260K', messages: [{ role: 'user', content: story.repeat(2) }], max_tokens: 2, temperature: 0, ...(userId ? { user_id: userId } : {}) });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.usage;
}

test('a repeated prompt hits the cache in whole units, across a restart, within its user_id', async () => {
  let srv = await serve({ models: [{ path: STORIES }], prefixCache: true });
  let first;
  try {
    first = await ask(srv.url);
    assert.equal(first.prompt_cache_hit_tokens, 0);
    assert.ok(first.prompt_tokens > 128, `prompt of ${first.prompt_tokens} tokens`);
    const second = await ask(srv.url);
    const units = Math.floor((first.prompt_tokens - 1) / 64) * 64;
    assert.equal(second.prompt_cache_hit_tokens, units);
    assert.equal(second.prompt_cache_miss_tokens, first.prompt_tokens - units);
    assert.equal(second.prompt_tokens_details.cached_tokens, units);
    assert.equal((await ask(srv.url, 'alice')).prompt_cache_hit_tokens, 0, 'another user_id does not see the shared entries');
    assert.equal((await ask(srv.url, 'alice')).prompt_cache_hit_tokens, units, 'but reuses its own');
  } finally {
    await srv.close();
  }
  srv = await serve({ models: [{ path: STORIES }], prefixCache: true });
  try {
    assert.equal((await ask(srv.url)).prompt_cache_hit_tokens, Math.floor((first.prompt_tokens - 1) / 64) * 64, 'the cache survives a restart');
  } finally {
    await srv.close();
  }
});
