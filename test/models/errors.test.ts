/** Clear errors for models minke cannot run and for misuse of a sequence. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openGGUF } from '../../src/formats/gguf.js';
import { type GGUFEntry, metadataEntries, writeGGUF } from '../../src/formats/gguf-writer.js';
import { loadModel } from '../../src/models/index.js';
import { STORIES_BIN, STORIES_GGUF } from './util.js';
import { synthWeights, type SynthSpec, writeHF } from './synth.js';

/** A copy of a GGUF with some metadata replaced and some tensors left out. */
function rewrite(src: string, dst: string, change: { meta?: Record<string, GGUFEntry>; drop?: string[] }): void {
  const f = openGGUF(src);
  try {
    const meta = metadataEntries(f).map(([k, e]): [string, GGUFEntry] => [k, change.meta?.[k] ?? e]);
    for (const [k, e] of Object.entries(change.meta ?? {})) if (!f.metadata.has(k)) meta.push([k, e]);
    const tensors = [...f.tensors.values()].filter((t) => !change.drop?.includes(t.name))
      .map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: f.read(t.name) }));
    writeGGUF(dst, { metadata: meta, tensors });
  } finally {
    f.close();
  }
}

describe('load errors', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-errors-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('unknown architecture (GGUF and Hugging Face)', async () => {
    const p = path.join(dir, 'mamba.gguf');
    rewrite(STORIES_GGUF, p, { meta: { 'general.architecture': { type: 'string', value: 'mamba' } } });
    await assert.rejects(loadModel(p), /mamba\.gguf: unknown architecture 'mamba' \(minke runs llama, qwen2, qwen3, deepseek2\)/);
    const hf = path.join(dir, 'bert');
    fs.mkdirSync(hf);
    fs.writeFileSync(path.join(hf, 'config.json'), JSON.stringify({ model_type: 'bert' }));
    await assert.rejects(loadModel(hf), /config\.json: unknown architecture 'bert'/);
  });

  it('missing tensors and tensors of the wrong shape', async () => {
    const p = path.join(dir, 'no-up.gguf');
    rewrite(STORIES_GGUF, p, { drop: ['blk.3.ffn_up.weight'] });
    await assert.rejects(loadModel(p), /no-up\.gguf: missing tensor 'blk\.3\.ffn_up\.weight' \(layer 3 FFN up\)/);
    const q = path.join(dir, 'wide.gguf');
    rewrite(STORIES_GGUF, q, { meta: { 'llama.feed_forward_length': { type: 'u32', value: 200 } } });
    await assert.rejects(loadModel(q), /tensor 'blk\.0\.ffn_gate\.weight' \(layer 0 FFN gate\) has shape \[172, 64\], expected \[200, 64\]/);
    // qwen2 needs its q/k/v biases.
    const spec: SynthSpec = { arch: 'qwen2', dim: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, ffn: 32, eps: 1e-6, ropeTheta: 1e6, tied: true, dtype: 'f32', contextLength: 32, seed: 9 };
    const w = synthWeights(spec);
    const hf = path.join(dir, 'qwen2-no-bias');
    writeHF(hf, spec, { ...w, layers: w.layers.map((L) => ({ ...L, kBias: undefined })) });
    await assert.rejects(loadModel(hf), /missing tensor 'model\.layers\.0\.self_attn\.k_proj\.bias' \(qwen2 layer 0 kBias\)/);
  });

  it('unsupported RoPE scaling and malformed llama2.c files', async () => {
    const p = path.join(dir, 'yarn.gguf');
    rewrite(STORIES_GGUF, p, { meta: { 'llama.rope.scaling.type': { type: 'string', value: 'yarn' } } });
    await assert.rejects(loadModel(p), /RoPE scaling 'yarn' is not supported/);
    const bin = path.join(dir, 'cut.bin');
    fs.writeFileSync(bin, fs.readFileSync(STORIES_BIN).subarray(0, 100000));
    await assert.rejects(loadModel(bin), /cut\.bin: the header \(dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512\) implies 1056540 bytes, but the file has 100000/);
    const lone = path.join(dir, 'lone', 'model.bin');
    fs.mkdirSync(path.dirname(lone));
    fs.copyFileSync(STORIES_BIN, lone);
    await assert.rejects(loadModel(lone), /no llama2\.c tokenizer beside it .*tokenizerPath/);
    await assert.rejects(loadModel(path.join(dir, 'nothing.gguf')), /nothing\.gguf: no such file or directory/);
  });
});

describe('sequence errors', () => {
  it('context too long, token ids outside the vocabulary, bad truncation', async () => {
    const model = await loadModel(STORIES_GGUF, { threads: 1, contextLength: 8 });
    try {
      assert.equal(model.description.contextLength, 2048);
      assert.throws(() => model.newSequence({ contextLength: 4096 }), /context length 4096 is longer than the model's context of 2048 tokens/);
      const seq = model.newSequence();
      assert.equal(seq.capacity, 8); // the load option's cap
      await seq.forward([1, 2, 3, 4, 5, 6]);
      await assert.rejects(seq.forward([7, 8, 9]), /context full: 6 tokens \+ 3 new is more than this sequence's capacity of 8/);
      assert.equal(seq.length, 6); // nothing was appended
      await assert.rejects(seq.forward([512]), /token id 512 is outside the vocabulary \(0 … 511\)/);
      await assert.rejects(seq.forward([]), /no tokens/);
      assert.throws(() => seq.truncate(7), /truncate: 7 is not from 0 to the sequence's length 6/);
      seq.free();
      await assert.rejects(seq.forward([1]), /freed/);
    } finally {
      await model.close();
    }
  });
});
