/**
 * The prefix cache: a request sharing a long prefix with an earlier one restores it (reported as
 * cached tokens) and answers exactly the same; entries survive a restart (a new cache over the same
 * directory); a corrupted entry is detected, discarded and never used.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { PrefixCache } from '../../src/engine/prefix-cache.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import { rng } from '../support/rng.js';
import { sharedPath } from '../models/util.js';

interface Case { name: string; file: string; prefix: number }
const CASES: Case[] = [
  { name: 'stories260K (KV cache)', file: 'models/stories260K/stories260K.gguf', prefix: 448 },
  { name: 'tiny DeepSeek-V3 (MLA latent cache)', file: 'fixtures/deepseek-v3-tiny', prefix: 1024 },
  { name: 'tiny DeepSeek-V4 (window, compressed entries, compressor and indexer state)', file: 'fixtures/deepseek-v4-tiny', prefix: 1024 },
];

for (const c of CASES) {
  describe(`prefix cache on ${c.name}`, () => {
    let model: LanguageModel;
    let dir: string;
    before(async () => {
      model = await loadModel(sharedPath(c.file), { threads: 2 });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-prefix-'));
      const r = rng(21);
      shared = Array.from({ length: c.prefix }, () => 3 + Math.floor(r() * (model.description.vocabSize - 3)));
    });
    after(async () => {
      await model.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    let shared: number[] = [];
    let coldTokens: number[] = [];
    const ask = async (engine: Engine, tail: number[]) => engine.submit({ prompt: [...shared, ...tail], maxTokens: 16, sampling: { temperature: 0 } }).result;

    it('a second request sharing the prefix gets it from the cache, answers identically, and prefills faster', async () => {
      const cache = new PrefixCache(dir, { fingerprint: c.file });
      const engine = new Engine(model, { prefixCache: cache });
      const cold = await ask(engine, [5, 6, 7]);
      coldTokens = cold.tokens;
      assert.equal(cold.cachedTokens, 0);
      assert.ok(cache.size > 0);
      const warm = await ask(engine, [5, 6, 7]);
      assert.equal(warm.cachedTokens, c.prefix);
      assert.deepEqual(warm.tokens, cold.tokens);
      // Same prompt without a cache, for the answer and the prefill time.
      const plain = new Engine(model);
      const ref = await ask(plain, [5, 6, 7]);
      assert.deepEqual(ref.tokens, cold.tokens);
      assert.ok(warm.firstTokenSeconds < ref.firstTokenSeconds, `first token ${warm.firstTokenSeconds}s with the cache vs ${ref.firstTokenSeconds}s without`);
      await engine.close();
      await plain.close();
    });

    it('survives a restart: a new cache over the same directory hits', async () => {
      const cache = new PrefixCache(dir, { fingerprint: c.file });
      const engine = new Engine(model, { prefixCache: cache });
      const r2 = await ask(engine, [9, 10]);
      assert.equal(r2.cachedTokens, c.prefix);
      await engine.close();
      const other = new PrefixCache(dir, { fingerprint: 'another model' });
      assert.equal(other.size, 0, 'another model never sees these entries');
    });

    it('a corrupted entry is discarded and never used', async () => {
      const sub = fs.readdirSync(dir).map((d) => path.join(dir, d)).find((d) => fs.readdirSync(d).some((f) => f.startsWith(`${c.prefix}-`)))!;
      const file = path.join(sub, fs.readdirSync(sub).find((f) => f.startsWith(`${c.prefix}-`))!);
      const bytes = fs.readFileSync(file);
      bytes[Math.floor(bytes.length / 2)] ^= 0x40;
      fs.writeFileSync(file, bytes);
      const cache = new PrefixCache(dir, { fingerprint: c.file });
      const engine = new Engine(model, { prefixCache: cache });
      const got = await ask(engine, [5, 6, 7]);
      assert.ok(got.cachedTokens < c.prefix, 'the corrupted entry was not used');
      assert.equal(cache.stats.corrupt, 1);
      // Deleted, then stored afresh by this request's own prefill.
      assert.ok(!fs.existsSync(file) || !fs.readFileSync(file).equals(bytes), 'the corrupted bytes are gone');
      assert.deepEqual(got.tokens, coldTokens);
      await engine.close();
    });
  });
}
