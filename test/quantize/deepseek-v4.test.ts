/**
 * minke quantize on the official tiny DeepSeek-V4 checkpoint (FP8 attention/shared expert, FP4
 * routed experts, BF16 embedding/head): the stored sizes follow from the block sizes, the result
 * loads and runs, the MXFP4 experts are the shipped FP4 numbers exactly, and the KL costs order
 * as the bit widths do.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { describeModel } from '../../src/models/index.js';
import { v4ConfigFromHF } from '../../src/models/deepseek-v4-config.js';
import { quantizeModel, type QuantizeReport } from '../../src/quantize/index.js';
import { tensorBytes } from './helpers.js';
import { allLogits, fixedTokens, klOfLogits } from '../../src/quantize/kl.js';
import { dequantize } from '../../src/tensor/dequantize.js';
import { FP4_E8M0_32 } from '../../src/tensor/dtype.js';

const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/deepseek-v4-tiny', import.meta.url));

// Tiny config: hidden 128, moe_intermediate 128, vocab 512, 4 layers + 1 MTP, 8 experts.
// Routed expert matrices: 5 blocks × 8 experts × (w1, w2, w3) = 120, each 128 × 128 = 512 blocks of 32.
const EXPERT_MATRICES = 120, BLOCKS_PER_EXPERT = (128 * 128) / 32;
// As shipped: FP4 codes 8192 B + E8M0 scales 512 B per expert matrix; BF16 embed + head 2 × 512 × 128 × 2 B.
const FP4_EXPERT_BYTES = EXPERT_MATRICES * (8192 + 512);
const BF16_EMBED_HEAD_BYTES = 2 * 512 * 128 * 2;
// Q8_0 embed + head: 2 × (512 × 128 / 32) blocks × 34 B.
const Q8_EMBED_HEAD_BYTES = 2 * ((512 * 128) / 32) * 34;
// Bytes per 32-element block: MXFP4 17 (= the shipped FP4 16 + 1), q2_0 10, Q8_0 34.
const EXPECTED_EXPERT_BYTES: Record<string, number> = {
  'experts-q4': EXPERT_MATRICES * BLOCKS_PER_EXPERT * 17, // 1,044,480 B: the same as FP4
  'experts-q2': EXPERT_MATRICES * BLOCKS_PER_EXPERT * 10, //   614,400 B
  q8: EXPERT_MATRICES * BLOCKS_PER_EXPERT * 34, //           2,088,960 B
};


let dir: string;
const reports: Record<string, QuantizeReport> = {};

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-quantize-v4-'));
  for (const type of ['experts-q4', 'experts-q2', 'q8']) {
    reports[type] = await quantizeModel(FIXTURE, path.join(dir, type), type, { load: { threads: 1 } });
  }
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('minke quantize: DeepSeek-V4 tiny', () => {
  it('stores exactly the bytes the block sizes give', () => {
    const shipped = tensorBytes(FIXTURE);
    for (const [type, experts] of Object.entries(EXPECTED_EXPERT_BYTES)) {
      const want = shipped - FP4_EXPERT_BYTES - BF16_EMBED_HEAD_BYTES + experts + Q8_EMBED_HEAD_BYTES;
      assert.equal(tensorBytes(path.join(dir, type)), want, type);
      const r = reports[type];
      assert.equal(r.bytesBefore, fs.statSync(path.join(FIXTURE, 'model.safetensors')).size);
      assert.equal(r.bytesAfter, fs.statSync(path.join(dir, type, 'model.safetensors')).size);
    }
    // 4-bit: the experts keep their size, the 8-bit embedding/head save 122,880 B; 2-bit saves 430,080 B more.
    assert.ok(reports['experts-q4'].bytesAfter < reports['experts-q4'].bytesBefore);
    assert.ok(reports['experts-q2'].bytesAfter < reports['experts-q4'].bytesAfter - 400_000);
    assert.deepEqual(reports['experts-q2'].formats, { q8_0: 2, q2_0: 120 }); // rows of 128: no Q2_K blocks of 256
    assert.deepEqual(reports['experts-q4'].formats, { q8_0: 2, mxfp4: 120 });
  });

  it('writes the MXFP4 experts as exactly the shipped FP4 values', () => {
    const src = openSafetensors(FIXTURE), out = openSafetensors(path.join(dir, 'experts-q4'));
    try {
      for (const name of ['layers.0.ffn.experts.3.w2', 'mtp.0.ffn.experts.7.w1']) {
        const want = dequantize(FP4_E8M0_32, src.read(`${name}.weight`), 128, 128, src.read(`${name}.scale`));
        const got = dequantize({ dtype: 'mxfp4' }, out.read(`${name}.weight`), 128, 128);
        assert.deepEqual(got, want, name);
        assert.equal(out.tensors.has(`${name}.scale`), false);
      }
    } finally {
      src.close();
      out.close();
    }
  });

  it('minke info shows the new formats and their memory', () => {
    const d = describeModel(path.join(dir, 'experts-q2'));
    assert.equal(d.weightBytes['q2_0 (held as q4_0)'], EXPERT_MATRICES * BLOCKS_PER_EXPERT * 18); // widened in memory
    assert.equal(d.weightBytes.q8_0, Q8_EMBED_HEAD_BYTES);
    assert.equal(d.weightBytes.fp4_e2m1, undefined);
    assert.equal(describeModel(path.join(dir, 'experts-q4')).weightBytes.mxfp4, EXPECTED_EXPERT_BYTES['experts-q4']);
    assert.equal(d.parameters, describeModel(FIXTURE).parameters);
  });

  it('loads, runs, and reports a KL divergence that grows as the bits shrink', () => {
    for (const r of Object.values(reports)) {
      assert.ok(r.kl && r.kl.positions === 64 && Number.isFinite(r.kl.mean) && r.kl.mean > 0, r.type);
    }
    assert.ok(reports['experts-q4'].kl!.mean < reports['experts-q2'].kl!.mean);
    assert.ok(reports.q8.kl!.mean < reports['experts-q2'].kl!.mean);
  });

  it('the 8-bit variant stays within the stated bound of the original', async () => {
    // This random model's routing amplifies any perturbation: switching only the FP8 activation
    // rounding off (a numerics change, no weight changed) moves it by ~0.06 nats and up to ~3.5 in
    // a logit. Bound for Q8_0 experts + Q8_0 embedding/head: mean KL ≤ 0.15 nats over 64
    // positions, and max |Δ logit| ≤ 6 over all 64 × 512 logits (logits span about ±9).
    const tokens = fixedTokens(512, 64, 99);
    const a = await allLogits(FIXTURE, tokens, { threads: 1 });
    const b = await allLogits(path.join(dir, 'q8'), tokens, { threads: 1 });
    let kl = 0, maxDiff = 0;
    for (let t = 0; t < 64; t++) kl += klOfLogits(a.logits.subarray(t * 512, (t + 1) * 512), b.logits.subarray(t * 512, (t + 1) * 512));
    for (let i = 0; i < a.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.logits[i] - b.logits[i]));
    assert.ok(kl / 64 <= 0.15, `mean KL ${kl / 64}`);
    assert.ok(maxDiff <= 6, `max |Δ logit| ${maxDiff}`);
  });

  it('names an expert_dtype or embed_dtype the loader does not know', () => {
    const json = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8'));
    assert.throws(() => v4ConfigFromHF({ ...json, expert_dtype: 'q3' }, 'config.json'), /expert_dtype "q3" is not supported \(fp4 as the official checkpoints, or minke quantize's mxfp4, q8_0, q4, q2_k\)/);
    assert.throws(() => v4ConfigFromHF({ ...json, embed_dtype: 'q4_0' }, 'config.json'), /embed_dtype "q4_0" is not supported \(bf16, q8_0\)/);
    assert.equal(v4ConfigFromHF({ ...json, expert_dtype: 'fp4' }, 'config.json').expertDtype, undefined);
  });

  it('refuses a checkpoint that is already quantised, and dense types', async () => {
    await assert.rejects(quantizeModel(path.join(dir, 'q8'), path.join(dir, 'again'), 'experts-q2', { kl: false }), /already quantised/);
    await assert.rejects(quantizeModel(FIXTURE, path.join(dir, 'x'), 'q4_k', { kl: false }), /does not apply to a DeepSeek-V4 checkpoint/);
  });
});
