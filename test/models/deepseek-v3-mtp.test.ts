/**
 * The DeepSeek-V3 MTP layer (spec §2.5) on the tiny fixture, whose layer 4 is an MTP layer. The
 * reference implements no MTP, so there are no goldens: the checks are its input recomputed here
 * straight from the safetensors bytes, prefill against row-by-row decode, the safetensors model
 * against its llama.cpp GGUF export, and the bookkeeping of truncate and saveState / loadState
 * against sequences that never went past the point they rewind to.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeGGUF } from '../../src/formats/gguf-writer.js';
import { describeModel, loadModel } from '../../src/models/index.js';
import type { DeepseekV3Model, DeepseekV3Sequence } from '../../src/models/deepseek-v3.js';
import { argmax, sharedPath } from './util.js';
import { v3GGUFSpec } from './v3-gguf-export.js';

const FIXTURE = sharedPath('fixtures/deepseek-v3-tiny');
const golden = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'golden.json'), 'utf8')) as { cases: { name: string; tokens: number[] }[] };
const P40 = golden.cases.find((c) => c.name === 'p40')!.tokens;
const VOCAB = 512, D = 128;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const rows = (x: Float32Array, from: number, to: number, width = VOCAB) => x.subarray(from * width, to * width);

/** Trunk logits of every token and MTP logits of every row but the last (its next token is unknown). */
async function prefillBoth(model: DeepseekV3Model, tokens: readonly number[]): Promise<{ trunk: Float32Array; mtp: Float32Array }> {
  const seq = model.newSequence();
  try {
    const trunk = await seq.forward(tokens, { allLogits: true });
    return { trunk, mtp: await seq.mtp(tokens.slice(1)) };
  } finally {
    seq.free();
  }
}

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** The fixture's model.safetensors, its header parsed here by hand. */
function fixtureFile(): { header: Header; data: Buffer } {
  const file = fs.readFileSync(path.join(FIXTURE, 'model.safetensors'));
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8')) as Header;
  delete header.__metadata__;
  return { header, data: file.subarray(8 + n) };
}

/** A tensor of the fixture: dtype, shape and bytes. */
function fixtureTensor(name: string): { dtype: string; shape: number[]; bytes: Buffer } {
  const { header, data } = fixtureFile();
  const t = header[name];
  return { dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.data_offsets[0], t.data_offsets[1]) };
}

/** BF16 values: the top half of an f32. */
function bf16(bytes: Buffer): Float64Array {
  const out = new Float64Array(bytes.length / 2), u = new Uint32Array(1), f = new Float32Array(u.buffer);
  for (let i = 0; i < out.length; i++) {
    u[0] = bytes.readUInt16LE(2 * i) << 16;
    out[i] = f[0];
  }
  return out;
}

function rmsnorm(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from({ length: x.length }, (_, i) => w[i] * x[i] * inv);
}

describe('DeepSeek-V3 MTP layer (tiny fixture)', () => {
  let dir: string;
  let hf: DeepseekV3Model, gguf: DeepseekV3Model, plain: DeepseekV3Model;
  const progress: Record<string, [number, number]> = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v3-mtp-'));
    const withMtp = path.join(dir, 'mtp.gguf'), without = path.join(dir, 'plain.gguf');
    writeGGUF(withMtp, v3GGUFSpec(FIXTURE, { kvB: 'split', experts: 'f32', mtp: true }));
    writeGGUF(without, v3GGUFSpec(FIXTURE, { kvB: 'split', experts: 'f32' }));
    const track = (key: string) => (done: number, total: number) => { progress[key] = [done, total]; };
    hf = await loadModel(FIXTURE, { threads: 1, onProgress: track('hf') }) as DeepseekV3Model;
    gguf = await loadModel(withMtp, { threads: 1, onProgress: track('gguf') }) as DeepseekV3Model;
    plain = await loadModel(without, { threads: 1 }) as DeepseekV3Model;
  });
  after(async () => {
    for (const m of [hf, gguf, plain]) await m?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads the MTP layer from both layouts (and reports every byte it reads); a file without one refuses mtp()', async () => {
    for (const m of [hf, gguf]) {
      const w = m.weights.mtp!;
      assert.ok(w, 'no MTP weights');
      assert.deepEqual(w.ehProj.shape, [D, 2 * D]);
      assert.notEqual(w.embed, m.weights.embed); // the checkpoint's own copies are used
      assert.notEqual(w.head, m.weights.head);
      assert.ok(w.layer.moe, 'the MTP decoder layer is an MoE layer');
    }
    for (const key of ['hf', 'gguf']) assert.equal(progress[key][0], progress[key][1], `${key}: progress ends at its total`);
    assert.equal(plain.weights.mtp, undefined);
    const seq = plain.newSequence();
    await seq.forward([5, 6]);
    await assert.rejects(seq.mtp([6]), /mtp: this checkpoint has no MTP layer/);
    seq.free();
    // The description: parameters stay the main model's; the MTP layer's are counted apart.
    const ref = describeModel(FIXTURE);
    let mtpParams = 0;
    for (const [name, t] of Object.entries(fixtureFile().header)) if (name.startsWith('model.layers.4.') && !name.endsWith('_scale_inv')) mtpParams += t.shape.reduce((a, b) => a * b, 1);
    assert.equal(ref.details.mtpParameters, mtpParams);
    assert.equal(describeModel(path.join(dir, 'plain.gguf')).details.mtpParameters, 0);
  });

  it('MTP logits: [n − 1, vocab], finite, not the trunk logits', async () => {
    const { trunk, mtp } = await prefillBoth(hf, P40);
    assert.equal(mtp.length, (P40.length - 1) * VOCAB);
    assert.ok(mtp.every(Number.isFinite), 'non-finite MTP logit');
    const d = maxAbsDiff(mtp, rows(trunk, 0, P40.length - 1));
    assert.ok(d > 0.5, `MTP logits within ${d} of the trunk's`);
    let same = 0;
    for (let t = 0; t < P40.length - 1; t++) if (argmax(rows(mtp, t, t + 1)) === argmax(rows(trunk, t, t + 1))) same++;
    assert.ok(same < P40.length - 1, 'the MTP drafts the trunk\'s own next token at every row');
  });

  it('the MTP input u of a row, recomputed from the safetensors bytes, is what the layer takes', async () => {
    const seq = hf.newSequence() as DeepseekV3Sequence;
    const taps = new Map<string, Float32Array>();
    seq.probe = { tap: (name, d) => { if (name === 'layer3.out' || name === 'mtp0.input') taps.set(name, d.slice() as Float32Array); } };
    const row = 17, eps = hf.config.eps;
    try {
      await seq.forward(P40);
      const h = taps.get('layer3.out')!.subarray(row * D, (row + 1) * D); // trunk hidden before the final norm
      await seq.mtp(P40.slice(1, row + 2));
      const got = taps.get('mtp0.input')!.subarray(row * D, (row + 1) * D);

      const embed = fixtureTensor('model.layers.4.embed_tokens.weight');
      const eh = fixtureTensor('model.layers.4.eh_proj.weight');
      assert.deepEqual([embed.dtype, eh.dtype, eh.shape], ['BF16', 'BF16', [D, 2 * D]]);
      const next = P40[row + 1];
      const e = rmsnorm(bf16(embed.bytes.subarray(next * D * 2, (next + 1) * D * 2)), bf16(fixtureTensor('model.layers.4.enorm.weight').bytes), eps);
      const hn = rmsnorm(h, bf16(fixtureTensor('model.layers.4.hnorm.weight').bytes), eps);
      const W = bf16(eh.bytes);
      const want = Float64Array.from({ length: D }, (_, o) => {
        let s = 0;
        for (let i = 0; i < D; i++) s += W[o * 2 * D + i] * e[i] + W[o * 2 * D + D + i] * hn[i];
        return s;
      });
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(maxAbsDiff(got, want) <= 1e-5 * Math.max(1, scale), `u differs by ${maxAbsDiff(got, want)} (largest ${scale})`);
      // Swapping the halves (hidden state first) would give something else.
      const swapped = Float64Array.from({ length: D }, (_, o) => {
        let s = 0;
        for (let i = 0; i < D; i++) s += W[o * 2 * D + i] * hn[i] + W[o * 2 * D + D + i] * e[i];
        return s;
      });
      assert.ok(maxAbsDiff(got, swapped) > 0.1);
    } finally {
      seq.free();
    }
  });

  it('prefill of the MTP rows = the rows one at a time alongside decoding (≤ 1e-4), and any chunking between', async () => {
    const want = (await prefillBoth(hf, P40)).mtp;
    const one = hf.newSequence();
    const got = new Float32Array(want.length);
    try {
      await one.forward(P40.slice(0, 1));
      for (let t = 1; t < P40.length; t++) {
        await one.forward([P40[t]]);
        got.set(await one.mtp([P40[t]]), (t - 1) * VOCAB); // row t − 1 pairs h_{t−1} with token t
        assert.equal(one.mtpLength, t);
      }
    } finally {
      one.free();
    }
    assert.ok(maxAbsDiff(got, want) <= 1e-4, `row-by-row MTP differs from its prefill by ${maxAbsDiff(got, want)}`);

    const mixed = hf.newSequence();
    try {
      const parts: Float32Array[] = [];
      await mixed.forward(P40.slice(0, 13));
      parts.push(await mixed.mtp(P40.slice(1, 6)));
      await mixed.forward(P40.slice(13));
      parts.push(await mixed.mtp(P40.slice(6, 30)), await mixed.mtp(P40.slice(30)));
      const all = new Float32Array(want.length);
      let o = 0;
      for (const p of parts) { all.set(p, o); o += p.length; }
      assert.ok(maxAbsDiff(all, want) <= 1e-4, `chunked MTP differs from its prefill by ${maxAbsDiff(all, want)}`);
    } finally {
      mixed.free();
    }
  });

  it('the GGUF export (nextn tensors) gives the safetensors model\'s MTP logits (≤ 1e-4)', async () => {
    const a = await prefillBoth(gguf, P40), b = await prefillBoth(hf, P40);
    assert.ok(maxAbsDiff(a.trunk, b.trunk) <= 1e-4);
    assert.ok(maxAbsDiff(a.mtp, b.mtp) <= 1e-4, `MTP logits differ by ${maxAbsDiff(a.mtp, b.mtp)}`);
  });

  it('without nextn.embed_tokens / shared_head_norm / shared_head_head the main embedding, norm and head stand in', async () => {
    const spec = v3GGUFSpec(FIXTURE, { kvB: 'split', experts: 'f32', mtp: true });
    const copies: Record<string, string> = {
      'blk.4.nextn.embed_tokens.weight': 'token_embd.weight', 'blk.4.nextn.shared_head_norm.weight': 'output_norm.weight', 'blk.4.nextn.shared_head_head.weight': 'output.weight',
    };
    const byName = new Map(spec.tensors!.map((t) => [t.name, t]));
    // The same file with the copies holding the main tensors' values, and one without them.
    const same = spec.tensors!.map((t) => copies[t.name] ? { ...t, data: byName.get(copies[t.name])!.data } : t);
    const [f1, f2] = [path.join(dir, 'copies.gguf'), path.join(dir, 'nocopies.gguf')];
    writeGGUF(f1, { metadata: spec.metadata, tensors: same });
    writeGGUF(f2, { metadata: spec.metadata, tensors: spec.tensors!.filter((t) => !copies[t.name]) });
    const [m1, m2] = [await loadModel(f1, { threads: 1 }), await loadModel(f2, { threads: 1 })] as DeepseekV3Model[];
    try {
      const w = m2.weights;
      assert.ok(w.mtp!.embed === w.embed && w.mtp!.head === w.head && w.mtp!.norm === w.norm);
      assert.equal(maxAbsDiff((await prefillBoth(m2, P40)).mtp, (await prefillBoth(m1, P40)).mtp), 0);
    } finally {
      await m1.close();
      await m2.close();
    }
  });

  it('truncate after a rejected draft keeps the MTP rows: as a sequence that never took the draft', async () => {
    const prompt = P40.slice(0, 20), x = P40[20], draft = 300, y = P40[21];
    const seq = hf.newSequence();
    try {
      await seq.forward(prompt);
      await seq.mtp([...prompt.slice(1), x]); // rows 0 … 19, drafting position 21
      await seq.forward([x, draft]); // verify: the draft is rejected
      seq.truncate(21);
      assert.equal(seq.mtpLength, 20);
      await seq.forward([y]);
      const got = await seq.mtp([y]); // row 20: h_20 with y
      const want = (await prefillBoth(hf, [...prompt, x, y])).mtp;
      assert.ok(maxAbsDiff(got, rows(want, 20, 21)) <= 1e-4, `row 20 differs by ${maxAbsDiff(got, rows(want, 20, 21))}`);
    } finally {
      seq.free();
    }
  });

  it('truncate below the MTP rows forgets those that saw a dropped token, recomputing h_{n−1}', async () => {
    const seq = hf.newSequence();
    const other = [9, 99, 199, 299, 399, 499];
    try {
      await seq.forward(P40);
      await seq.mtp(P40.slice(1)); // rows 0 … 38
      seq.truncate(25);
      assert.equal(seq.mtpLength, 24); // row 24 used token 25, now forgotten
      await assert.rejects(seq.mtp([1, 2]), /mtp: 2 rows asked, but only 1 trunk outputs are waiting/);
      const trunk = await seq.forward(other, { allLogits: true });
      const got = await seq.mtp([...other]); // rows 24 … 29
      const stream = [...P40.slice(0, 25), ...other];
      const want = await prefillBoth(hf, stream);
      assert.ok(maxAbsDiff(trunk, rows(want.trunk, 25, 31)) <= 1e-4, 'trunk after truncate');
      assert.ok(maxAbsDiff(got, rows(want.mtp, 24, 30)) <= 1e-4, `MTP rows after truncate differ by ${maxAbsDiff(got, rows(want.mtp, 24, 30))}`);
      // Down to nothing: a fresh start.
      seq.truncate(0);
      assert.equal(seq.mtpLength, 0);
      await seq.forward(P40.slice(0, 5));
      assert.ok(maxAbsDiff(await seq.mtp(P40.slice(1, 5)), rows((await prefillBoth(hf, P40.slice(0, 5))).mtp, 0, 4)) <= 1e-4);
    } finally {
      seq.free();
    }
  });

  it('saveState / loadState carry the MTP state: the restored sequence continues as the saved one', async () => {
    const a = hf.newSequence(), b = hf.newSequence(), c = hf.newSequence();
    try {
      await a.forward(P40.slice(0, 30));
      await a.mtp(P40.slice(1, 12)); // rows 0 … 10 taken, 11 … 29 waiting
      const state = await a.saveState();
      b.loadState(state, 30);
      assert.deepEqual([b.length, b.mtpLength], [30, 11]);
      for (const s of [a, b]) await s.forward(P40.slice(30));
      const [ma, mb] = [await a.mtp(P40.slice(12)), await b.mtp(P40.slice(12))];
      assert.equal(maxAbsDiff(mb, ma), 0);
      // A state saved while h_{n−1} awaits recomputation (after truncate below the MTP rows).
      a.truncate(20);
      c.loadState(await a.saveState(), 20);
      assert.equal(c.mtpLength, 19);
      assert.equal(maxAbsDiff(await c.mtp([P40[20]]), await a.mtp([P40[20]])), 0);
      // The trunk part alone is not this model's state.
      const d = hf.newSequence();
      assert.throws(() => d.loadState(state.subarray(0, 4 * 4 * 30 * 160), 30), /loadState: 76800 bytes are not the state of 30 tokens of this model/);
      d.free();
    } finally {
      for (const s of [a, b, c]) s.free();
    }
  });

  it('says what is wrong with a bad mtp() call', async () => {
    const seq = hf.newSequence();
    try {
      await seq.forward([3, 4, 5]);
      await assert.rejects(seq.mtp([]), /mtp: no tokens/);
      await assert.rejects(seq.mtp([4, 5, 6, 7]), /mtp: 4 rows asked, but only 3 trunk outputs are waiting/);
      await assert.rejects(seq.mtp([512]), /mtp: token id 512 is outside the vocabulary/);
      await assert.rejects(seq.mtp([4], new Float32Array(3)), /mtp: hidden has 3 values, expected 1 rows of 128/);
    } finally {
      seq.free();
    }
  });
});
