/**
 * Quantised weights stay quantised: stories260K re-written with Q8_0 matrices (quantizeRow, the
 * llama.cpp reference rounding) loads with its matrices and embedding in q8_0 backend memory and
 * runs through the q8_0 kernels (activations quantised to q8_0, as llama.cpp does).
 * ffn_down stays F32: its rows of 172 are not a whole number of 32-element blocks (llama-quantize
 * falls back the same way).
 *
 * Tolerance, measured on the llama.cpp reference token paths (teacher forced, 301 steps): the Q8_0
 * model's logits stay within 0.42 of the F32 model's (largest |logit| 22; about 0.3 of it from the
 * weights' rounding, 0.3 from the q8_0 activations), next-token probabilities within 0.045, and
 * the top token agrees on 298 of 301 steps. Asserted: 0.6, 0.08, ≥ 95 %.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openGGUF } from '../../src/formats/gguf.js';
import { metadataEntries, writeGGUF } from '../../src/formats/gguf-writer.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import { quantizeRow } from '../../src/tensor/quant-gguf.js';
import { argmax, greedyCases, softmax, STORIES_GGUF } from './util.js';

/** Re-writes a GGUF with every 2-D F32 tensor whose rows are whole 32-blocks as Q8_0. */
function writeQ8(src: string, dst: string): string[] {
  const f = openGGUF(src);
  const quantised: string[] = [];
  try {
    const tensors = [...f.tensors.values()].map((t) => {
      const data = f.read(t.name);
      const cols = t.shape[t.shape.length - 1];
      if (t.dtype !== 'f32' || t.shape.length !== 2 || cols % 32 !== 0) return { name: t.name, dtype: t.dtype, shape: t.shape, data };
      const values = new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
      const out = new Uint8Array((values.length / 32) * 34);
      quantizeRow('q8_0', values, out, values.length);
      quantised.push(t.name);
      return { name: t.name, dtype: 'q8_0' as const, shape: t.shape, data: out };
    });
    writeGGUF(dst, { metadata: metadataEntries(f), tensors });
  } finally {
    f.close();
  }
  return quantised;
}

describe('stories260K with Q8_0 weights', () => {
  let dir: string;
  let q8: LanguageModel, f32: LanguageModel;
  let quantised: string[];
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-q8-'));
    const p = path.join(dir, 'stories260K-q8_0.gguf');
    quantised = writeQ8(STORIES_GGUF, p);
    q8 = await loadModel(p, { threads: 2 });
    f32 = await loadModel(STORIES_GGUF, { threads: 2 });
  });
  after(async () => {
    await q8?.close();
    await f32?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the matrices in q8_0 backend memory', () => {
    // token_embd, output, and per layer q, k, v, o, gate, up: 2 + 5 × 6.
    assert.equal(quantised.length, 32);
    const bytes = q8.description.weightBytes;
    const q8Elements = 2 * 512 * 64 + 5 * (2 * 64 * 64 + 2 * 32 * 64 + 2 * 172 * 64);
    assert.equal(bytes.q8_0, (q8Elements / 32) * 34);
    assert.equal(bytes.f32, 4 * (5 * 64 * 172 + 11 * 64)); // ffn_down and the norms
  });

  it('gives logits close to the F32 model on the reference token paths', async () => {
    let worstLogit = 0, worstProb = 0, agree = 0, steps = 0;
    for (const c of greedyCases()) {
      const ids = [...c.input_ids, ...c.generated_ids];
      const a = q8.newSequence(), b = f32.newSequence();
      for (const t of ids) {
        const la = await a.forward([t]), lb = await b.forward([t]);
        const pa = softmax(la), pb = softmax(lb);
        for (let i = 0; i < la.length; i++) {
          worstLogit = Math.max(worstLogit, Math.abs(la[i] - lb[i]));
          worstProb = Math.max(worstProb, Math.abs(pa[i] - pb[i]));
        }
        if (argmax(la) === argmax(lb)) agree++;
        steps++;
      }
      a.free(); b.free();
    }
    assert.ok(worstLogit <= 0.6, `logits differ by up to ${worstLogit}`);
    assert.ok(worstProb <= 0.08, `probabilities differ by up to ${worstProb}`);
    assert.ok(agree >= 0.95 * steps, `top token agrees on ${agree} of ${steps} steps`);
  });
});
