/**
 * Choosing the next token from logits, in llama.cpp's chain order:
 * penalties → top-k → top-p → min-p → temperature → draw (greedy when temperature is 0).
 *
 * Deterministic: the same seed and the same logits give the same tokens, on every machine.
 */

export interface SamplingOptions {
  /** 0 = greedy (argmax, first index on ties). */
  readonly temperature?: number;
  /** Keep the k most likely tokens; 0 = off. */
  readonly topK?: number;
  /** Keep the smallest set whose probability reaches p; 1 = off. */
  readonly topP?: number;
  /** Drop tokens whose probability is below minP × the top probability; 0 = off. */
  readonly minP?: number;
  /** Divide positive logits (multiply negative ones) of recently seen tokens; 1 = off. */
  readonly repeatPenalty?: number;
  /** Subtract once from the logit of every recently seen token (OpenAI presence_penalty). */
  readonly presencePenalty?: number;
  /** Subtract per occurrence (OpenAI frequency_penalty). */
  readonly frequencyPenalty?: number;
  /** How many of the last tokens the penalties look at; −1 = all. */
  readonly penaltyLastN?: number;
  readonly seed?: number;
}

export const DEFAULT_SAMPLING: Required<SamplingOptions> = {
  temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05,
  repeatPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, penaltyLastN: 64, seed: 0xdeadbeef,
};

/** xoshiro128** — small, fast, and identical everywhere (Math.random is neither seedable nor portable). */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    // splitmix32 expands the seed so that nearby seeds give unrelated streams.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** Uniform in [0, 1). */
  next(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 11);
    return r / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestValue) { bestValue = logits[i]; best = i; }
  }
  return best;
}

/** Candidate tokens and their probabilities (summing to 1). */
export interface TokenDistribution {
  readonly ids: readonly number[];
  readonly probs: readonly number[];
}

export class Sampler {
  readonly options: Required<SamplingOptions>;
  private readonly rng: Rng;

  constructor(options: SamplingOptions = {}) {
    this.options = { ...DEFAULT_SAMPLING, ...stripUndefined(options) };
    const o = this.options;
    if (!(o.temperature >= 0)) throw new Error(`temperature must be ≥ 0, got ${o.temperature}`);
    if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`top_p must be in (0, 1], got ${o.topP}`);
    if (!(o.minP >= 0 && o.minP <= 1)) throw new Error(`min_p must be in [0, 1], got ${o.minP}`);
    if (!(o.topK >= 0) || !Number.isInteger(o.topK)) throw new Error(`top_k must be a whole number ≥ 0, got ${o.topK}`);
    this.rng = new Rng(o.seed);
  }

  /** The next token. `logits` may be modified (penalties are applied in place). */
  sample(logits: Float32Array, history: readonly number[] = []): number {
    return this.draw(this.distribution(logits, history));
  }

  /**
   * The distribution the next token is drawn from, after the whole chain: candidate ids and their
   * probabilities (summing to 1). Greedy is the one-hot argmax. `logits` may be modified.
   */
  distribution(logits: Float32Array, history: readonly number[] = []): TokenDistribution {
    const o = this.options;
    this.applyPenalties(logits, history);
    if (o.temperature === 0) return { ids: [argmax(logits)], probs: [1] };

    // Candidates sorted by logit, truncated by top-k first so the sort stays cheap; with no cut
    // at all (top-k, top-p and min-p off) the order does not matter and nothing is sorted.
    const cut = o.topK > 0 || o.topP < 1 || o.minP > 0;
    let ids = sortedIds(logits, o.topK > 0 ? Math.min(o.topK, logits.length) : logits.length, cut);
    let maxLogit = -Infinity;
    for (const id of ids) if (logits[id] > maxLogit) maxLogit = logits[id];
    let probs = ids.map((id) => Math.exp(logits[id] - maxLogit));
    let sum = probs.reduce((a, b) => a + b, 0);

    if (o.topP < 1) {
      let cum = 0;
      let keep = ids.length;
      for (let i = 0; i < ids.length; i++) {
        cum += probs[i] / sum;
        if (cum >= o.topP) { keep = i + 1; break; }
      }
      ids = ids.slice(0, keep);
      probs = probs.slice(0, keep);
    }
    if (o.minP > 0) {
      // probs[0] is the top probability (unnormalised, like the rest).
      const floor = o.minP * probs[0];
      const firstBelow = probs.findIndex((p) => p < floor);
      const keep = firstBelow === -1 ? probs.length : Math.max(1, firstBelow);
      ids = ids.slice(0, keep);
    }
    // Temperature rescales the surviving logits before the draw.
    probs = ids.map((id) => Math.exp((logits[id] - maxLogit) / o.temperature));
    sum = probs.reduce((a, b) => a + b, 0);
    return { ids, probs: probs.map((p) => p / sum) };
  }

  /** One token drawn from `d`. */
  draw(d: TokenDistribution): number {
    if (d.ids.length === 1) return d.ids[0];
    let r = this.rng.next();
    for (let i = 0; i < d.ids.length; i++) {
      r -= d.probs[i];
      if (r < 0) return d.ids[i];
    }
    return d.ids[d.ids.length - 1];
  }

  /** Uniform in [0, 1) from this sampler's stream (speculative sampling's acceptance test). */
  uniform(): number {
    return this.rng.next();
  }

  private applyPenalties(logits: Float32Array, history: readonly number[]): void {
    const o = this.options;
    if (o.repeatPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0) return;
    const window = o.penaltyLastN < 0 ? history : history.slice(Math.max(0, history.length - o.penaltyLastN));
    const counts = new Map<number, number>();
    for (const id of window) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, count] of counts) {
      if (id < 0 || id >= logits.length) continue;
      let l = logits[id];
      if (o.repeatPenalty !== 1) l = l > 0 ? l / o.repeatPenalty : l * o.repeatPenalty;
      l -= count * o.frequencyPenalty + o.presencePenalty;
      logits[id] = l;
    }
  }
}

/**
 * Indices of the `k` largest logits, largest first (earlier index first on ties). Without a top-k
 * (k = all) the whole vocabulary would be sorted; tokens whose logit is so far below the best that
 * their softmax share is negligible (< 2^-40 each, even counting all of them) cannot change any
 * top-p/min-p cut or draw, so they are dropped before the sort (or, `sort` false, kept in id order).
 */
function sortedIds(logits: Float32Array, k: number, sort = true): number[] {
  if (k >= logits.length) {
    let max = -Infinity;
    for (const v of logits) if (v > max) max = v;
    const floor = max - (40 * Math.LN2 + Math.log(logits.length));
    const ids: number[] = [];
    for (let i = 0; i < logits.length; i++) if (logits[i] >= floor) ids.push(i);
    return sort ? ids.sort((a, b) => logits[b] - logits[a] || a - b) : ids;
  }
  // Partial selection: keep a sorted window of the best k seen so far.
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (best.length === k && v <= logits[best[k - 1]]) continue;
    let j = best.length === k ? k - 1 : best.length;
    if (best.length < k) best.push(i);
    while (j > 0 && logits[best[j - 1]] < v) { best[j] = best[j - 1]; j--; }
    best[j] = i;
  }
  return best;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
