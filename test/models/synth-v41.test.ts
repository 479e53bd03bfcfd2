/**
 * bench/synth-v41.ts: the synthetic DeepSeek-V4.1 configs against spec §2 (Flash's Engram row
 * counts, the fixture's flat key set, every CSA2 layer role in the small presets), and the 'tiny'
 * checkpoint written to disk: it loads (the loader checks the tensor set against v41Tensors), a
 * 10-token prefill gives finite, non-trivial logits, decoding token by token gives the prefill's
 * logits, a DSpark round drafts a whole block, and describeModel sees a DeepSeek-V4.1.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { v41SynthConfig, writeSyntheticV41 } from '../../bench/synth-v41.js';
import { describeModel, loadModel } from '../../src/models/index.js';
import type { DeepseekV41Model } from '../../src/models/deepseek-v41.js';
import { indexSourceOf, kvSourceOf, v41ConfigFromJson } from '../../src/models/deepseek-v41-config.js';
import { sharedPath } from './util.js';

const FIXTURE_CONFIG = JSON.parse(fs.readFileSync(sharedPath('fixtures/deepseek-v41-tiny/config.json'), 'utf8')) as Record<string, unknown>;

describe('v41SynthConfig', () => {
  it("'flash' holds spec §2's Flash numbers, engram_num_embeddings included (computed from the prime search)", () => {
    const j = v41SynthConfig('flash');
    assert.deepEqual(j.engram_num_embeddings, [384006168, 384016682]);
    const c = v41ConfigFromJson(j, 'flash');
    assert.deepEqual([c.dim, c.layers, c.stages, c.heads, c.headDim, c.qLoraRank, c.experts, c.topK, c.moeInter], [5120, 40, 3, 64, 512, 1280, 384, 6, 2304]);
    assert.deepEqual(c.compressRatios.filter((r) => r === 2).length, 18);
    assert.deepEqual(c.compressRatios.filter((r) => r === 1).length, 20);
    assert.deepEqual([c.dspark.blockSize, c.dspark.noiseToken, c.dspark.experts, c.dspark.topK], [5, 128799, 128, 3]);
  });

  for (const preset of ['flash', 'bench', 'tiny'] as const) {
    it(`'${preset}' is in the flat inference/config.json form: the fixture's keys`, () => {
      assert.deepEqual(Object.keys(v41SynthConfig(preset)).sort(), Object.keys(FIXTURE_CONFIG).sort());
    });
  }

  for (const preset of ['bench', 'tiny'] as const) {
    it(`'${preset}' has every layer role of §6.3 and 3 DSpark stages`, () => {
      const c = v41ConfigFromJson(v41SynthConfig(preset), preset);
      const roles = new Set<string>();
      for (let l = 0; l < c.layers; l++) {
        const r = c.compressRatios[l], kv = kvSourceOf(c, l) === l, idx = indexSourceOf(c, l) === l;
        if (r === 0) roles.add('window');
        else if (kv && idx) roles.add(l === c.candidate.layer ? `ratio-${r} candidate source` : `ratio-${r} source`);
        else if (idx) roles.add(`ratio-${r} re-indexer`);
        else roles.add(`ratio-${r} reuser`);
      }
      assert.deepEqual([...roles].sort(), ['ratio-1 candidate source', 'ratio-1 re-indexer', 'ratio-1 reuser', 'ratio-2 reuser', 'ratio-2 source', 'window']);
      assert.equal(c.stages, 3);
      assert.equal(c.engram.layerIds.length, 2);
    });
  }

  it('rejects an unknown preset', () => {
    assert.throws(() => v41SynthConfig('huge' as 'tiny'), /unknown synthetic V4.1 preset "huge"/);
  });
});

describe("the synthetic 'tiny' DeepSeek-V4.1 checkpoint", () => {
  let tmp: string, dir: string, model: DeepseekV41Model;
  const config = v41SynthConfig('tiny');
  const vocab = config.vocab_size as number;
  const tokens = [0, 17, 300, 41, 8, 499, 123, 77, 256, 5];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-synth-v41-'));
    dir = path.join(tmp, 'tiny');
    writeSyntheticV41(dir, config, { seed: 3, shardBytes: 2 ** 20 });
    model = await loadModel(dir, { threads: 2 }) as DeepseekV41Model;
    // No tokenizer.json: any map into the compressed vocabulary drives the Engram hashes.
    model.setEngramTokenMap(Int32Array.from({ length: vocab }, (_, i) => i % (config.engram_compressed_vocab_size as number)));
  });
  after(async () => {
    await model?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('describes itself as deepseek_v41 with its 8 layers and 3 DSpark stages', () => {
    const d = describeModel(dir);
    assert.equal(d.architecture, 'deepseek_v41');
    assert.equal(d.layers, 8);
    assert.equal(d.dsparkStages, 3);
    assert.equal(d.vocabSize, vocab);
  });

  it('prefill of 10 tokens: finite logits that differ between positions; decoding token by token gives the same logits (1e-4)', async () => {
    const prefill = model.newSequence({ contextLength: 32 });
    const all = await prefill.forward(tokens, { allLogits: true });
    prefill.free();
    assert.equal(all.length, tokens.length * vocab);
    assert.ok(all.every(Number.isFinite), 'finite logits');
    const row = (a: Float32Array, t: number) => a.subarray(t * vocab, (t + 1) * vocab);
    const std = (v: Float32Array) => {
      const m = v.reduce((s, x) => s + x, 0) / v.length;
      return Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / v.length);
    };
    for (let t = 0; t < tokens.length; t++) assert.ok(std(row(all, t)) > 0.1, `position ${t}: logits spread ${std(row(all, t))}`);
    assert.ok(row(all, 0).some((x, i) => Math.abs(x - row(all, 9)[i]) > 0.1), 'positions 0 and 9 differ');

    const decode = model.newSequence({ contextLength: 32 });
    let worst = 0;
    for (let t = 0; t < tokens.length; t++) {
      const logits = await decode.forward([tokens[t]]);
      const want = row(all, t);
      for (let i = 0; i < vocab; i++) worst = Math.max(worst, Math.abs(logits[i] - want[i]));
    }
    decode.free();
    assert.ok(worst <= 1e-4, `decode differs from prefill by ${worst}`);
  });

  it('a DSpark round drafts dspark_block_size ids after the anchor, with finite logits and confidences; the state is unchanged', async () => {
    const seq = model.newSequence({ contextLength: 32 });
    await seq.forward(tokens);
    const gamma = config.dspark_block_size as number;
    const draft = await seq.dspark(42);
    assert.equal(draft.ids.length, gamma + 1);
    assert.equal(draft.ids[0], 42);
    for (const id of draft.ids) assert.ok(Number.isInteger(id) && id >= 0 && id < vocab, `id ${id}`);
    assert.equal(draft.logits.length, gamma * vocab);
    assert.ok(draft.logits.every(Number.isFinite) && draft.confidence.every(Number.isFinite));
    assert.equal(seq.length, tokens.length);
    seq.free();
  });
});
