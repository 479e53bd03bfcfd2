/**
 * The quality cost of a quantisation: the KL divergence KL(P ‖ Q) of the next-token distributions
 * of the original model (P) and the quantised one (Q), in nats, at every position of one fixed
 * token sequence (seeded ids drawn uniformly from the model's vocabulary, so no tokenizer is
 * needed and the measurement is the same on every machine).
 */
import { describeModel, loadModel, type LoadOptions } from '../models/index.js';

export interface KLReport {
  readonly positions: number;
  readonly seed: number;
  /** Mean and largest KL(P ‖ Q) over the positions, in nats. */
  readonly mean: number;
  readonly max: number;
  /** Fraction of positions where both models' most likely next token is the same. */
  readonly top1Agreement: number;
}

/** `n` ids in [0, vocab) from a mulberry32 stream seeded with `seed`. */
export function fixedTokens(vocab: number, n: number, seed: number): number[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return Array.from({ length: n }, () => Math.floor(next() * vocab));
}

/** log-softmax of one row, in f64. */
function logSoftmax(x: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  let z = 0;
  for (const v of x) z += Math.exp(v - m);
  const lz = m + Math.log(z);
  return Float64Array.from(x, (v) => v - lz);
}

/** KL(P ‖ Q) of two logit rows, in nats. */
export function klOfLogits(p: Float32Array, q: Float32Array): number {
  const lp = logSoftmax(p), lq = logSoftmax(q);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
  return Math.max(0, kl);
}

const argmax = (x: Float32Array): number => x.reduce((b, v, i) => (v > x[b] ? i : b), 0);

/** Every position's logits [n × vocab] of one prefill over `tokens`. */
export async function allLogits(modelPath: string, tokens: readonly number[], opts: LoadOptions = {}): Promise<{ logits: Float32Array; vocab: number }> {
  const model = await loadModel(modelPath, { ...opts, contextLength: tokens.length });
  try {
    const vocab = model.description.vocabSize;
    const bad = tokens.find((t) => t >= vocab);
    if (bad !== undefined) throw new Error(`${modelPath}: token ${bad} is outside the vocabulary [0, ${vocab})`);
    const seq = model.newSequence({ contextLength: tokens.length });
    try {
      return { logits: await seq.forward(tokens, { allLogits: true }), vocab };
    } finally {
      seq.free();
    }
  } finally {
    await model.close();
  }
}

/** Runs both models over the same `n` seeded tokens and compares their next-token distributions. */
export async function nextTokenKL(original: string, quantised: string, opts: LoadOptions & { tokens?: number; seed?: number } = {}): Promise<KLReport> {
  const { tokens: n = 64, seed = 1234, ...load } = opts;
  const tokens = fixedTokens(describeModel(original).vocabSize, n, seed);
  const a = await allLogits(original, tokens, load);
  const b = await allLogits(quantised, tokens, load);
  if (a.vocab !== b.vocab) throw new Error(`the models' vocabularies differ (${a.vocab} vs ${b.vocab})`);
  let sum = 0, max = 0, agree = 0;
  for (let t = 0; t < n; t++) {
    const p = a.logits.subarray(t * a.vocab, (t + 1) * a.vocab), q = b.logits.subarray(t * a.vocab, (t + 1) * a.vocab);
    const kl = klOfLogits(p, q);
    sum += kl;
    max = Math.max(max, kl);
    if (argmax(p) === argmax(q)) agree++;
  }
  return { positions: n, seed, mean: sum / n, max, top1Agreement: agree / n };
}
