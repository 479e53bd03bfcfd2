// `pull` against the fake hub (fake-hub.ts): whole safetensors repos and GGUF quants downloaded,
// resumed, verified and described by a manifest written last; the pulled models load.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../../src/models/index.js';
import { modelPathOf } from '../../src/models/shipped.js';
import { describeStored, listStore, removeFromStore } from '../../src/store/catalog.js';
import { HubClient } from '../../src/store/hub.js';
import { manifestPath, readManifest, repoDir } from '../../src/store/names.js';
import { pull, type PullOptions } from '../../src/store/pull.js';
import { FakeHub, sha256 } from './fake-hub.js';
import { ggufRepo, shared, SHARDS, STORIES_GGUF, tinyV4Repo } from './repos.js';

let hub: FakeHub;
let home: string;
const opts = (extra: Partial<PullOptions> = {}): PullOptions => ({ hub: new HubClient({ endpoint: hub.url, token: 'secret' }), home, retries: 0, ...extra });
const tiny = tinyV4Repo();

before(async () => {
  hub = await new FakeHub().start();
  hub.repos.set('deepseek-ai/tiny-v4', tiny);
  hub.repos.set('someone/stories-GGUF', ggufRepo());
  hub.repos.set('big/model', { commit: 'c'.repeat(40), files: new Map([['config.json', new Uint8Array(2)], ['model.safetensors', new Uint8Array(8)]]), listedSize: new Map([['model.safetensors', 2 ** 50]]) });
});
const homes: string[] = [];
after(async () => {
  await hub.close();
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
});
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-store-'));
  homes.push(home);
  hub.requests.length = 0;
  hub.faults.clear();
});

/** The logits of one short prefill. */
async function logitsOf(p: string): Promise<Float32Array> {
  const model = await loadModel(p, { threads: 1 });
  try {
    return await model.newSequence({ contextLength: 16 }).forward([0, 5, 9, 3]);
  } finally {
    await model.close();
  }
}

describe('a safetensors repo', () => {
  test('pulls config, generation config, index and every shard, verified, with the manifest last; the model loads', async () => {
    const progress: number[] = [];
    const r = await pull('deepseek-ai/tiny-v4', opts({ onProgress: (p) => progress.push(p.done / p.total) }));
    const dir = repoDir('deepseek-ai/tiny-v4', home);
    assert.equal(r.path, path.join(dir, '.'));
    assert.equal(r.downloaded, true);
    const wanted = ['config.json', 'generation_config.json', 'model.safetensors.index.json', ...SHARDS];
    assert.deepEqual(fs.readdirSync(dir).sort(), [...wanted, 'minke-model.json'].sort());
    for (const f of wanted) assert.deepEqual(fs.readFileSync(path.join(dir, f)), Buffer.from(tiny.files.get(f)!), f);
    const m = readManifest(manifestPath({ repo: 'deepseek-ai/tiny-v4' }, home));
    assert.equal(m.commit, tiny.commit);
    assert.equal(m.format, 'safetensors');
    assert.deepEqual(m.files.map((f) => f.path).sort(), wanted.sort());
    for (const s of SHARDS) assert.equal(m.files.find((f) => f.path === s)!.sha256, sha256(tiny.files.get(s)!));
    assert.equal(progress.at(-1), 1);

    // Shards come from the CDN after a redirect; the token goes to the hub only.
    for (const s of SHARDS) assert.equal(hub.cdnRequests(tiny.files.get(s)!).length, 1, s);
    assert.ok(hub.requests.filter((q) => q.server === 'hub').every((q) => q.auth === 'Bearer secret'));
    assert.ok(hub.requests.filter((q) => q.server === 'cdn').every((q) => q.auth === undefined));

    // The store name resolves to the folder, and the pulled shards compute what the fixture does.
    process.env.MINKE_HOME = home;
    try {
      assert.equal(modelPathOf('deepseek-ai/tiny-v4'), r.path);
    } finally {
      delete process.env.MINKE_HOME;
    }
    assert.deepEqual(await logitsOf(r.path), await logitsOf(shared('fixtures/deepseek-v4-tiny')));

    // A second pull of the same commit downloads nothing.
    hub.requests.length = 0;
    const again = await pull('deepseek-ai/tiny-v4', opts());
    assert.equal(again.downloaded, false);
    assert.equal(hub.requests.filter((q) => q.server === 'cdn').length, 0);
  });

  test('a dropped connection leaves the .part and no manifest; the next pull asks for the rest with Range', async () => {
    const shard = tiny.files.get(SHARDS[1])!;
    hub.faults.set(SHARDS[1], { dropAfter: 300_000 });
    await assert.rejects(pull('deepseek-ai/tiny-v4', opts()), new RegExp(`deepseek-ai/tiny-v4/${SHARDS[1]}: connection (lost|closed)`));
    const dir = repoDir('deepseek-ai/tiny-v4', home);
    const part = path.join(dir, `${SHARDS[1]}.part`);
    const have = fs.statSync(part).size;
    assert.ok(have >= 300_000 && have < shard.length, `${have}`);
    assert.ok(!fs.existsSync(manifestPath({ repo: 'deepseek-ai/tiny-v4' }, home)));
    assert.ok(!listStore(home).some((e) => e.manifest));
    assert.throws(() => modelPathOfIn('deepseek-ai/tiny-v4'), /download is incomplete.*minke pull deepseek-ai\/tiny-v4/);

    // The other shard may have finished before the drop, or been stopped with it.
    const other = path.join(dir, SHARDS[0]);
    const otherPart = fs.existsSync(`${other}.part`) ? fs.statSync(`${other}.part`).size : undefined;
    const otherDone = fs.existsSync(other);
    hub.faults.clear();
    hub.requests.length = 0;
    const r = await pull('deepseek-ai/tiny-v4', opts());
    const asked = hub.cdnRequests(shard);
    assert.equal(asked.length, 1);
    assert.equal(asked[0].range, `bytes=${have}-`);
    assert.equal(sha256(fs.readFileSync(path.join(dir, SHARDS[1]))), sha256(shard));
    assert.equal(r.manifest.files.find((f) => f.path === SHARDS[1])!.sha256, sha256(shard));
    assert.ok(!fs.existsSync(part));
    // A finished shard is not fetched again, a stopped one resumes.
    const otherAsked = hub.cdnRequests(tiny.files.get(SHARDS[0])!).map((q) => q.range);
    assert.deepEqual(otherAsked, otherDone ? [] : [otherPart ? `bytes=${otherPart}-` : undefined]);
  });

  test('retries resume within one pull', async () => {
    const shard = tiny.files.get(SHARDS[0])!;
    hub.faults.set(SHARDS[0], { dropAfter: 100_000 });
    // Each try gets 100 000 more bytes; the fault is lifted after the second.
    let tries = 0;
    const r = pull('deepseek-ai/tiny-v4', opts({ retries: 5, retryDelayMs: 10, onProgress: () => { if (hub.cdnRequests(shard).length >= 2 && tries++ === 0) hub.faults.clear(); } }));
    await r;
    const ranges = hub.cdnRequests(shard).map((q) => q.range);
    assert.equal(ranges[0], undefined);
    assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
    assert.equal(sha256(fs.readFileSync(path.join(repoDir('deepseek-ai/tiny-v4', home), SHARDS[0]))), sha256(shard));
  });

  test('a connection that goes silent is dropped after stallMs and resumed', async () => {
    const shard = tiny.files.get(SHARDS[1])!;
    hub.faults.set(SHARDS[1], { stallAfter: 100_000 });
    const r = await pull('deepseek-ai/tiny-v4', opts({
      retries: 1, retryDelayMs: 10, stallMs: 300,
      onProgress: () => { if (hub.cdnRequests(shard).length === 1) hub.faults.clear(); },
    }));
    assert.deepEqual(hub.cdnRequests(shard).map((q) => q.range), [undefined, 'bytes=100000-']);
    assert.equal(r.manifest.files.find((f) => f.path === SHARDS[1])!.sha256, sha256(shard));
    assert.equal(sha256(fs.readFileSync(path.join(repoDir('deepseek-ai/tiny-v4', home), SHARDS[1]))), sha256(shard));
  });

  test('a corrupted shard is caught by its sha256: named in the error, deleted, no manifest', async () => {
    hub.faults.set(SHARDS[0], { corrupt: true });
    await assert.rejects(pull('deepseek-ai/tiny-v4', opts()), new RegExp(`^Error: ${SHARDS[0]}: the download is corrupt \\(sha256 [0-9a-f]{64} where the hub lists ${sha256(tiny.files.get(SHARDS[0])!)}\\)`));
    const dir = repoDir('deepseek-ai/tiny-v4', home);
    assert.ok(!fs.existsSync(path.join(dir, SHARDS[0])));
    assert.ok(!fs.existsSync(path.join(dir, `${SHARDS[0]}.part`)));
    assert.ok(!fs.existsSync(manifestPath({ repo: 'deepseek-ai/tiny-v4' }, home)));
  });

  test('the disk is checked before anything is downloaded', async () => {
    await assert.rejects(pull('big/model', opts()), /^Error: not enough disk space in .*big.model: the pull needs 1048576\.00 GiB more/);
    assert.equal(hub.requests.filter((q) => q.path.includes('/resolve/')).length, 0);
  });
});

describe('a GGUF repo', () => {
  test('pulls the one file whose name holds the quant (any case), named owner/repo:QUANT; it loads', async () => {
    const r = await pull('someone/stories-GGUF:q4_k_m', opts());
    const dir = repoDir('someone/stories-GGUF', home);
    assert.equal(r.path, path.join(dir, 'stories260K-Q4_K_M.gguf'));
    assert.equal(r.manifest.name, 'someone/stories-GGUF:Q4_K_M');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['minke-model@Q4_K_M.json', 'stories260K-Q4_K_M.gguf']);
    assert.equal(sha256(fs.readFileSync(r.path)), sha256(STORIES_GGUF()));
    assert.ok(!hub.requests.some((q) => q.path.includes('Q8_0')));
    const logits = await logitsOf(r.path);
    assert.equal(logits.length, 512);
    assert.ok(logits.every(Number.isFinite));
  });

  test('no matching quant, or several, is an error listing the quants', async () => {
    await assert.rejects(pull('someone/stories-GGUF:Q5_K_S', opts()), /^Error: someone\/stories-GGUF: no file or quant 'Q5_K_S' \(available quants: Q4_K_M, Q8_0\)$/);
    await assert.rejects(pull('someone/stories-GGUF:stories', opts()), /several \.gguf files match 'stories' \(stories260K-Q4_K_M\.gguf, stories260K-Q8_0\.gguf\)/);
    await assert.rejects(pull('someone/stories-GGUF', opts()), /several GGUF files; pick one with someone\/stories-GGUF:QUANT \(available quants: Q4_K_M, Q8_0\)/);
  });

  test('a file named exactly is pulled under that name', async () => {
    const r = await pull('someone/stories-GGUF:stories260K-Q8_0.gguf', opts());
    assert.equal(r.manifest.name, 'someone/stories-GGUF:stories260K-Q8_0.gguf');
    assert.equal(r.manifest.format, 'gguf');
  });
});

describe('list and rm', () => {
  test('list shows finished pulls with architecture and formats, and interrupted ones as incomplete; rm removes them', async () => {
    await pull('deepseek-ai/tiny-v4', opts());
    await pull('someone/stories-GGUF:Q4_K_M', opts());
    await pull('someone/stories-GGUF:Q8_0', opts());
    hub.faults.set(SHARDS[0], { dropAfter: 1000 });
    hub.repos.set('other/tiny', tiny);
    await assert.rejects(pull('other/tiny', opts()));

    const entries = listStore(home);
    assert.deepEqual(entries.map((e) => [e.name, !!e.manifest]), [
      ['deepseek-ai/tiny-v4', true], ['someone/stories-GGUF:Q4_K_M', true], ['someone/stories-GGUF:Q8_0', true], ['other/tiny', false],
    ]);
    const v4 = describeStored(entries[0]);
    assert.equal(v4.architecture, 'deepseek_v4');
    assert.match(v4.formats, /^safetensors /);
    const gguf = describeStored(entries[1]);
    assert.equal(gguf.architecture, 'llama');
    assert.match(gguf.formats, /^gguf /);
    assert.equal(entries[1].bytes, STORIES_GGUF().length);
    assert.ok(entries[3].bytes > 0);

    // Two quants of one repo: the bare repo name is ambiguous, each tagged name resolves.
    assert.throws(() => modelPathOfIn('someone/stories-GGUF'), /several models are pulled from this repo \(someone\/stories-GGUF:Q4_K_M, someone\/stories-GGUF:Q8_0\)/);
    assert.equal(modelPathOfIn('someone/stories-GGUF:Q8_0'), path.join(repoDir('someone/stories-GGUF', home), 'stories260K-Q8_0.gguf'));

    removeFromStore('someone/stories-GGUF:Q4_K_M', home);
    assert.deepEqual(fs.readdirSync(repoDir('someone/stories-GGUF', home)).sort(), ['minke-model@Q8_0.json', 'stories260K-Q8_0.gguf']);
    assert.equal(modelPathOfIn('someone/stories-GGUF'), path.join(repoDir('someone/stories-GGUF', home), 'stories260K-Q8_0.gguf'));
    removeFromStore('someone/stories-GGUF:Q8_0', home);
    assert.ok(!fs.existsSync(path.join(home, 'models', 'someone')));
    removeFromStore('other/tiny', home);
    removeFromStore('deepseek-ai/tiny-v4', home);
    assert.deepEqual(listStore(home), []);
    assert.throws(() => removeFromStore('deepseek-ai/tiny-v4', home), /^Error: no model 'deepseek-ai\/tiny-v4' in the store .*; the store is empty$/);
  });
});

/** modelPathOf with this test's store as MINKE_HOME. */
function modelPathOfIn(name: string): string {
  process.env.MINKE_HOME = home;
  try {
    return modelPathOf(name);
  } finally {
    delete process.env.MINKE_HOME;
  }
}
