/**
 * minke quantize on the official tiny DeepSeek-V3 checkpoint (FP8 + f32 128×128 tile scales
 * everywhere, BF16 embedding/head): expert sizes from the block sizes, the result loads and runs,
 * and the KL costs order as the bit widths do.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeModel } from '../../src/models/index.js';
import { quantizeModel, type QuantizeReport } from '../../src/quantize/index.js';
import { tensorBytes } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/deepseek-v3-tiny', import.meta.url));

// Tiny config: hidden 128, moe_intermediate 128, 4 layers (the first dense) + 1 MTP, 8 experts:
// (3 + 1) × 8 × 3 = 96 routed expert matrices of 128 × 128 = 512 blocks of 32. As shipped each is
// 16,384 B of FP8 + one f32 tile scale (4 B).
const MATRICES = 96, BLOCKS = 512, SHIPPED = MATRICES * (16384 + 4);
// Rows of 128 are not multiples of 256: Q4_0 (18 B per 32) and minke's q2_0 (10 B); Q8_0 34 B.
const EXPECTED: Record<string, [string, number]> = {
  'experts-q4': ['q4_0', MATRICES * BLOCKS * 18],
  'experts-q2': ['q2_0', MATRICES * BLOCKS * 10],
  q8: ['q8_0', MATRICES * BLOCKS * 34],
};


let dir: string;
const reports: Record<string, QuantizeReport> = {};
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-quantize-v3-'));
  for (const type of Object.keys(EXPECTED)) reports[type] = await quantizeModel(FIXTURE, path.join(dir, type), type, { klTokens: 32, load: { threads: 1 } });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('minke quantize: DeepSeek-V3 tiny', () => {
  it('stores the expert bytes the block sizes give, everything else unchanged', () => {
    const shipped = tensorBytes(FIXTURE);
    for (const [type, [block, bytes]] of Object.entries(EXPECTED)) {
      assert.equal(tensorBytes(path.join(dir, type)), shipped - SHIPPED + bytes, type);
      assert.deepEqual(reports[type].formats, { [block]: MATRICES });
      const d = describeModel(path.join(dir, type));
      assert.equal(d.parameters, describeModel(FIXTURE).parameters);
    }
    assert.ok(reports['experts-q2'].bytesAfter < reports['experts-q4'].bytesAfter && reports['experts-q4'].bytesAfter < reports.q8.bytesBefore);
  });

  it('loads and runs; KL grows as the bits shrink', () => {
    const kl = (t: string) => reports[t].kl!.mean;
    assert.ok(kl('q8') > 0 && kl('q8') < kl('experts-q4') && kl('experts-q4') < kl('experts-q2'), JSON.stringify(Object.values(reports).map((r) => r.kl)));
    // FP8 → Q8_0 experts: within 0.005 nats mean of the original (measured ≈ 0.0004).
    assert.ok(kl('q8') < 0.005);
  });
});
