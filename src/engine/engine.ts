/**
 * The serving engine: many requests over one loaded model, with continuous batching.
 *
 * Every step runs one batched forward (model.forwardBatch: one pass over the weights for all rows)
 * made of one token for each request that is decoding, plus a chunk of prompt for requests that are
 * still prefilling — so a long prompt never stalls the streams already running. Requests join
 * between steps as soon as a slot and enough state memory are free, and leave the moment they
 * finish or are cancelled (their state is freed at once). Requests that cannot start wait in a
 * bounded queue; past it, or when one request alone could never fit, submit() refuses with a reason.
 *
 * A prefix cache (prefix-cache.ts), when given, restores the state of the longest cached prompt
 * prefix instead of recomputing it, and records prompt prefixes as they are computed.
 */
import type { BatchItem, DsparkSequence, LanguageModel, MtpSequence, Sequence } from '../models/model.js';
import { Sampler, type SamplingOptions, type TokenDistribution } from './sampler.js';
import { StopMatcher } from './stop.js';
import type { FinishReason } from './generate.js';
import type { StreamDecoder } from '../tokenizer/index.js';

/** Restricts the tokens that may come next (constrained decoding); immutable states. */
export interface TokenConstraint {
  /** Sets the logits of tokens that may not come next to −Infinity. */
  maskLogits(logits: Float32Array): void;
  /** The state after `token`. */
  accept(token: number): TokenConstraint;
  /** The output is complete: generation ends here (the constraint allows nothing more). */
  readonly done: boolean;
}

export interface EngineRequest {
  readonly prompt: readonly number[];
  readonly sampling?: SamplingOptions;
  /** Most tokens to generate (default: until the context is full). */
  readonly maxTokens?: number;
  readonly stop?: readonly string[];
  readonly signal?: AbortSignal;
  /** Report each token's log-probability, with this many best alternatives (0 = none). */
  readonly logprobs?: boolean;
  readonly topLogprobs?: number;
  /** Render control tokens as nothing (default true). */
  readonly skipSpecial?: boolean;
  readonly constraint?: TokenConstraint;
  /** Context of this request's sequence (default: the engine's). */
  readonly contextLength?: number;
  /** Prefix-cache partition: requests only reuse cached prefixes of their own partition (DeepSeek's user_id). */
  readonly cachePartition?: string;
}

export interface TokenLogprob {
  readonly token: number;
  readonly logprob: number;
}

export interface TokenEvent {
  /** The sampled token; −1 for the held-back text released when the request ends. */
  readonly token: number;
  /** Text that became final with this token (may be empty: part of a character or a stop string). */
  readonly text: string;
  readonly logprob?: number;
  readonly top?: readonly TokenLogprob[];
}

export interface EngineResult {
  readonly tokens: number[];
  readonly text: string;
  readonly finishReason: FinishReason;
  /** The stop string that ended the output (finishReason 'stop'). */
  readonly stopSequence?: string;
  readonly promptTokens: number;
  /** Prompt tokens restored from the prefix cache instead of computed. */
  readonly cachedTokens: number;
  /** Drafts (MTP or DSpark) verified and accepted, and the verifying forward passes (speculative decoding). */
  readonly drafts: number;
  readonly draftsAccepted: number;
  readonly verifySteps: number;
  /** Seconds from submit to the first token, and from there to the end. */
  readonly firstTokenSeconds: number;
  readonly decodeSeconds: number;
}

export interface EngineOptions {
  /** Requests running at once (default 16). */
  readonly maxSequences?: number;
  /** Requests waiting to start before submit() refuses (default 64). */
  readonly maxQueue?: number;
  /** Bytes of inference state all running sequences may hold together (default 4 GiB). */
  readonly maxStateBytes?: number;
  /** Prompt tokens computed per step, over all prefilling requests (default 256). */
  readonly prefillChunk?: number;
  /** Context of each sequence (default the model's default). */
  readonly contextLength?: number;
  readonly prefixCache?: PrefixStore;
  /**
   * Speculative decoding with the model's own draft head (default on when the model has one): the
   * MTP block of DeepSeek-V3/V4 drafts the token after next, DSpark (V4.1) a block of tokens; each
   * step verifies the drafts along with the next token in one forward pass.
   */
  readonly speculative?: boolean;
  /**
   * DSpark: verify the longest draft prefix whose predicted survival (the product of the
   * confidences' sigmoids) is at least this (default 0.25; 0 verifies the whole block). At least
   * one draft is always verified.
   */
  readonly draftThreshold?: number;
}

/** What the engine needs from a prefix cache (prefix-cache.ts implements it). */
export interface PrefixStore {
  /** The longest stored prefix of `prompt` shorter than it (at least one token is left to compute), restored into `seq`. */
  restore(prompt: readonly number[], seq: Sequence, partition?: string): Promise<number>;
  /** The length up to which `prompt` should be stored, or 0. */
  storeLength(prompt: readonly number[]): number;
  /** Saves `seq`, which holds exactly `prompt[0:length]`. */
  store(prompt: readonly number[], length: number, seq: Sequence, partition?: string): Promise<void>;
}

/** A refused request: the queue is full or the request can never fit. */
export class EngineBusyError extends Error {
  constructor(message: string, readonly retryable: boolean) {
    super(message);
    this.name = 'EngineBusyError';
  }
}

/** A running or waiting request: its events as an async iterable, its result as a promise. */
export class RequestHandle implements AsyncIterable<TokenEvent> {
  readonly result: Promise<EngineResult>;
  private readonly events: TokenEvent[] = [];
  private wake?: () => void;
  private ended = false;
  private settle!: { resolve: (r: EngineResult) => void; reject: (e: unknown) => void };

  constructor() {
    this.result = new Promise((resolve, reject) => { this.settle = { resolve, reject }; });
    this.result.catch(() => undefined); // a consumer of the stream alone sees the error there
  }

  push(e: TokenEvent): void {
    this.events.push(e);
    this.wake?.();
  }

  end(result: EngineResult | Error): void {
    this.ended = true;
    if (result instanceof Error) this.settle.reject(result);
    else this.settle.resolve(result);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TokenEvent> {
    for (;;) {
      while (this.events.length) yield this.events.shift()!;
      if (this.ended) {
        await this.result; // rethrows the request's error
        return;
      }
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = undefined;
    }
  }
}

class Job {
  seq?: Sequence;
  /** Prompt tokens in the sequence (restored or computed). */
  pos = 0;
  cachedTokens = 0;
  /** Token sampled but not yet fed to the model. */
  pending?: number;
  /** Drafts for the tokens after `pending`, each with the distribution it was drawn from. */
  draft?: { token: number; q: TokenDistribution }[];
  stopSequence?: string;
  drafts = 0;
  draftsAccepted = 0;
  verifySteps = 0;
  readonly tokens: number[] = [];
  readonly history: number[];
  text = '';
  constraint?: TokenConstraint;
  firstTokenAt = 0;
  readonly submittedAt = performance.now();
  readonly sampler: Sampler;
  readonly stops: StopMatcher;
  readonly decoder: StreamDecoder;
  readonly maxTokens: number;
  readonly capacity: number;
  stateBytes = 0;

  constructor(readonly req: EngineRequest, readonly handle: RequestHandle, engine: Engine) {
    this.sampler = new Sampler(req.sampling);
    this.stops = new StopMatcher(req.stop ?? []);
    this.decoder = engine.model.tokenizer.decoder({ skipSpecial: req.skipSpecial ?? true });
    this.history = [...req.prompt];
    this.constraint = req.constraint;
    this.maxTokens = req.maxTokens ?? Infinity;
    const ctx = req.contextLength ?? engine.contextLength;
    this.capacity = Math.min(ctx, req.prompt.length + (Number.isFinite(this.maxTokens) ? this.maxTokens : ctx));
  }

  get prefilling(): boolean { return this.pos < this.req.prompt.length; }
}

export class Engine {
  readonly contextLength: number;
  private readonly maxSequences: number;
  private readonly maxQueue: number;
  private readonly maxStateBytes: number;
  private readonly prefillChunk: number;
  private readonly waiting: Job[] = [];
  private readonly running: Job[] = [];
  private usedStateBytes = 0;
  private loop?: Promise<void>;
  private closed = false;
  /** Steps run and tokens computed, for metrics. */
  readonly stats = { steps: 0, promptTokens: 0, cachedTokens: 0, generatedTokens: 0, drafts: 0, draftsAccepted: 0, verifySteps: 0 };
  private readonly speculative: 'mtp' | 'dspark' | undefined;

  constructor(readonly model: LanguageModel, private readonly opts: EngineOptions = {}) {
    this.maxSequences = opts.maxSequences ?? 16;
    this.maxQueue = opts.maxQueue ?? 64;
    this.maxStateBytes = opts.maxStateBytes ?? 4 * 2 ** 30;
    this.prefillChunk = opts.prefillChunk ?? 256;
    const d = model.description;
    this.speculative = opts.speculative === false ? undefined : (d.dsparkStages ?? 0) > 0 ? 'dspark' : (d.mtpLayers ?? 0) > 0 ? 'mtp' : undefined;
    this.contextLength = opts.contextLength ?? (model.description.details.defaultContext as number | undefined) ?? model.description.contextLength;
    for (const [k, v] of Object.entries({ maxSequences: this.maxSequences, maxQueue: this.maxQueue, prefillChunk: this.prefillChunk })) {
      if (!(Number.isInteger(v) && v >= 1)) throw new Error(`engine: ${k} must be a positive integer, got ${v}`);
    }
  }

  /** Requests waiting, and running. */
  get load(): { waiting: number; running: number; stateBytes: number } {
    return { waiting: this.waiting.length, running: this.running.length, stateBytes: this.usedStateBytes };
  }

  submit(req: EngineRequest): RequestHandle {
    if (this.closed) throw new Error('engine: closed');
    if (req.prompt.length === 0) throw new Error('engine: the prompt has no tokens');
    const handle = new RequestHandle();
    const job = new Job(req, handle, this);
    if (req.prompt.length >= job.capacity && !(job.maxTokens === 0)) {
      throw new EngineBusyError(`the prompt is ${req.prompt.length} tokens but the context holds ${job.capacity}`, false);
    }
    job.stateBytes = this.model.description.stateBytesPerToken * job.capacity;
    if (job.stateBytes > this.maxStateBytes) {
      throw new EngineBusyError(`this request needs ${job.stateBytes} bytes of state, more than the engine's budget of ${this.maxStateBytes}`, false);
    }
    // The queue is what cannot start yet: requests waiting beyond the free slots.
    const queued = this.waiting.length - Math.max(0, this.maxSequences - this.running.length);
    if (queued >= this.maxQueue) throw new EngineBusyError(`too many requests waiting (${queued})`, true);
    this.waiting.push(job);
    req.signal?.addEventListener('abort', () => this.kick(), { once: true });
    this.kick();
    return handle;
  }

  /** Finishes the running requests' current step, cancels everything, and stops. */
  async close(): Promise<void> {
    this.closed = true;
    for (const j of [...this.waiting, ...this.running]) this.finish(j, 'aborted');
    await this.loop;
  }

  private kick(): void {
    this.loop ??= this.run().finally(() => { this.loop = undefined; if (this.waiting.length || this.running.length) this.kick(); });
  }

  private async run(): Promise<void> {
    // Requests submitted in the same tick as the first one share its first step.
    await Promise.resolve();
    while (this.waiting.length || this.running.length) {
      await this.admit();
      for (const j of [...this.running, ...this.waiting]) if (j.req.signal?.aborted) this.finish(j, 'aborted');
      if (!this.running.length) {
        if (this.waiting.length) throw new Error('engine: a waiting request can never be admitted'); // guarded by submit()
        break;
      }
      await this.step();
      // Let I/O (new requests, cancellations, HTTP writes) in between steps.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Starts waiting requests while slots and state memory allow, restoring cached prefixes. */
  private async admit(): Promise<void> {
    while (this.waiting.length && this.running.length < this.maxSequences) {
      const job = this.waiting[0];
      if (job.req.signal?.aborted) { this.waiting.shift(); this.finish(job, 'aborted'); continue; }
      if (this.usedStateBytes + job.stateBytes > this.maxStateBytes) break;
      this.waiting.shift();
      try {
        job.seq = this.model.newSequence({ contextLength: job.capacity });
        this.usedStateBytes += job.stateBytes;
        this.running.push(job);
        if (job.req.maxTokens === 0) { this.finish(job, 'length'); continue; }
        const cache = this.opts.prefixCache;
        if (cache) job.pos = job.cachedTokens = await cache.restore(job.req.prompt, job.seq, job.req.cachePartition);
      } catch (err) {
        this.fail(job, err);
      }
    }
  }

  private async step(): Promise<void> {
    const items: BatchItem[] = [], jobs: Job[] = [];
    for (const j of this.running) {
      if (!j.prefilling && j.pending !== undefined) {
        items.push(j.draft ? { seq: j.seq!, tokens: [j.pending, ...j.draft.map((d) => d.token)], allLogits: true } : { seq: j.seq!, tokens: [j.pending] });
        jobs.push(j);
      }
    }
    let budget = this.prefillChunk;
    for (const j of this.running) {
      if (!j.prefilling || budget === 0) continue;
      const prompt = j.req.prompt;
      // Stop a chunk where the prefix cache wants a snapshot, so the state there can be saved.
      const snap = this.opts.prefixCache?.storeLength(prompt) ?? 0;
      const end = Math.min(prompt.length, j.pos + budget, j.pos < snap ? snap : Infinity);
      items.push({ seq: j.seq!, tokens: prompt.slice(j.pos, end) });
      jobs.push(j);
      budget -= end - j.pos;
    }
    if (!items.length) return;
    let logits: Float32Array[];
    try {
      logits = await forwardBatch(this.model, items);
    } catch (err) {
      for (const j of jobs) this.fail(j, err);
      return;
    }
    this.stats.steps++;
    for (let i = 0; i < jobs.length; i++) {
      const j = jobs[i];
      if (!this.running.includes(j)) continue; // cancelled meanwhile
      if (j.prefilling) {
        j.pos += items[i].tokens.length;
        this.stats.promptTokens += items[i].tokens.length;
        const cache = this.opts.prefixCache;
        if (cache && j.pos === cache.storeLength(j.req.prompt)) {
          try { await cache.store(j.req.prompt, j.pos, j.seq!, j.req.cachePartition); } catch { /* a cache that cannot write never fails a request */ }
        }
        if (j.prefilling) continue;
      }
      try {
        if (j.draft) await this.verify(j, logits[i]);
        else if (this.sampleNext(j, logits[i])) await this.propose(j);
      } catch (err) {
        this.fail(j, err);
      }
    }
  }

  /**
   * The step fed [pending, d_1 … d_ℓ]: each draft in turn is accepted with probability min(1, p/q)
   * (always, when greedy and it is the argmax) and emitted; the first rejected one is replaced by a
   * sample of the residual max(0, p − q) and the rest dropped from the sequence; when all are
   * accepted the last row gives one more token.
   */
  private async verify(j: Job, rows: Float32Array): Promise<void> {
    const drafts = j.draft!, vocab = rows.length / (drafts.length + 1), seq = j.seq!;
    const start = seq.length - drafts.length - 1; // position of `pending`
    j.draft = undefined;
    j.verifySteps++;
    this.stats.verifySteps++;
    for (let k = 0; k < drafts.length; k++) {
      const d = drafts[k], row = rows.slice(k * vocab, (k + 1) * vocab);
      j.drafts++;
      this.stats.drafts++;
      const p = j.sampler.distribution(row.slice(), j.history);
      const pd = probOf(p, d.token), qd = probOf(d.q, d.token);
      if (pd > 0 && j.sampler.uniform() < Math.min(1, pd / qd)) {
        j.draftsAccepted++;
        this.stats.draftsAccepted++;
        if (!this.emit(j, d.token, row)) return;
        continue;
      }
      seq.truncate(start + k + 1);
      if (this.emit(j, j.sampler.draw(residual(p, d.q)), row)) await this.propose(j);
      return;
    }
    if (this.sampleNext(j, rows.slice(drafts.length * vocab))) await this.propose(j);
  }

  /** Drafts the tokens after `pending` with the model's draft head (MTP or DSpark). */
  private async propose(j: Job): Promise<void> {
    if (!this.speculative || j.constraint || j.pending === undefined) return;
    const room = Math.min(j.maxTokens - j.tokens.length - 1, j.seq!.capacity - j.seq!.length - 1); // drafts beside pending and the bonus
    if (room < 1) return;
    if (this.speculative === 'dspark') return this.proposeDspark(j, room);
    const seq = j.seq as MtpSequence;
    const all = [...j.req.prompt, ...j.tokens]; // all[i] is the token at position i; pending is last
    if (seq.mtpLength >= seq.length) return; // nothing new for the MTP block (after a rebuild)
    const drafts = await seq.mtp(all.slice(seq.mtpLength + 1, seq.length + 1));
    const vocab = this.model.description.vocabSize;
    const q = j.sampler.distribution(drafts.slice(drafts.length - vocab), [...j.history]);
    j.draft = [{ token: j.sampler.draw(q), q }];
  }

  /** A DSpark block after `pending`, cut where its predicted survival falls below the threshold. */
  private async proposeDspark(j: Job, room: number): Promise<void> {
    const seq = j.seq as DsparkSequence, history = [...j.history], qs: TokenDistribution[] = [];
    const block = await seq.dspark(j.pending!, (logits) => {
      const q = j.sampler.distribution(logits, history);
      const t = j.sampler.draw(q);
      qs.push(q);
      history.push(t);
      return t;
    });
    const threshold = this.opts.draftThreshold ?? 0.25;
    let n = 1, survival = sigmoid(block.confidence[0]);
    while (n < Math.min(room, qs.length) && (survival *= sigmoid(block.confidence[n])) >= threshold) n++;
    j.draft = qs.slice(0, n).map((q, k) => ({ token: block.ids[k + 1], q }));
  }

  /** Samples the next token of `j` from `logits` and emits it; false when `j` has finished. */
  private sampleNext(j: Job, logits: Float32Array): boolean {
    j.constraint?.maskLogits(logits);
    const raw = j.req.logprobs ? logits.slice() : undefined;
    return this.emit(j, j.sampler.sample(logits, j.history), raw);
  }

  /** Emits token `id` (sampled from `logits`, for logprobs) and decides whether `j` goes on. */
  private emit(j: Job, id: number, logits?: Float32Array): boolean {
    const tok = this.model.tokenizer;
    const lp = j.req.logprobs && logits ? logSoftmax(logits) : undefined;
    j.firstTokenAt ||= performance.now();
    if (tok.eog.has(id) && !(j.constraint && !j.constraint.done)) return this.finish(j, 'eog');
    j.tokens.push(id);
    j.history.push(id);
    this.stats.generatedTokens++;
    j.constraint = j.constraint?.accept(id);
    const out = j.stops.push(j.decoder.push(id));
    j.text += out.text;
    j.handle.push({
      token: id, text: out.text,
      ...(lp ? { logprob: lp[id], top: topLogprobs(lp, j.req.topLogprobs ?? 0) } : {}),
    });
    if (out.stopped) {
      j.stopSequence = out.matched;
      return this.finish(j, 'stop');
    }
    if (j.constraint?.done) return this.finish(j, 'eog');
    if (j.tokens.length >= j.maxTokens) return this.finish(j, 'length');
    if (j.seq!.length + 1 > j.seq!.capacity) return this.finish(j, 'context');
    j.pending = id;
    return true;
  }

  private finish(j: Job, reason: FinishReason): false {
    if (reason !== 'stop') {
      const rest = j.stops.push(j.decoder.flush()).text + j.stops.flush();
      if (rest) {
        j.text += rest;
        j.handle.push({ token: -1, text: rest });
      }
    }
    this.release(j);
    const now = performance.now();
    this.stats.cachedTokens += j.cachedTokens;
    j.handle.end({
      tokens: j.tokens, text: j.text, finishReason: reason, stopSequence: j.stopSequence,
      promptTokens: j.req.prompt.length, cachedTokens: j.cachedTokens,
      drafts: j.drafts, draftsAccepted: j.draftsAccepted, verifySteps: j.verifySteps,
      firstTokenSeconds: j.firstTokenAt ? (j.firstTokenAt - j.submittedAt) / 1000 : 0,
      decodeSeconds: j.firstTokenAt ? (now - j.firstTokenAt) / 1000 : 0,
    });
    return false;
  }

  private fail(j: Job, err: unknown): void {
    this.release(j);
    j.handle.end(err instanceof Error ? err : new Error(String(err)));
  }

  private release(j: Job): void {
    const w = this.waiting.indexOf(j);
    if (w >= 0) this.waiting.splice(w, 1);
    const r = this.running.indexOf(j);
    if (r >= 0) {
      this.running.splice(r, 1);
      this.usedStateBytes -= j.stateBytes;
    }
    j.seq?.free();
    j.seq = undefined;
  }
}

/**
 * model.forwardBatch, or each item on its own for models without it. Items with `allLogits` get
 * every row's logits (speculative verification); those go through the sequence's own forward.
 */
export async function forwardBatch(model: LanguageModel, items: readonly BatchItem[]): Promise<Float32Array[]> {
  if (model.forwardBatch && !items.some((it) => it.allLogits)) return model.forwardBatch(items);
  const out: Float32Array[] = [];
  for (const it of items) out.push(await it.seq.forward(it.tokens, { allLogits: it.allLogits }));
  return out;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function probOf(d: TokenDistribution, id: number): number {
  const i = d.ids.indexOf(id);
  return i < 0 ? 0 : d.probs[i];
}

/** The distribution ∝ max(0, p − q) that a rejected draft is replaced from. */
function residual(p: TokenDistribution, q: TokenDistribution): TokenDistribution {
  const ids: number[] = [], probs: number[] = [];
  const qOf = new Map<number, number>(q.ids.map((id, i) => [id, q.probs[i]])); // a lookup per id would be O(V²)
  let sum = 0;
  p.ids.forEach((id, i) => {
    const r = Math.max(0, p.probs[i] - (qOf.get(id) ?? 0));
    if (r > 0) { ids.push(id); probs.push(r); sum += r; }
  });
  if (sum === 0) return p; // p ≤ q everywhere cannot happen for a rejection; keep p as a safe fallback
  return { ids, probs: probs.map((r) => r / sum) };
}

function logSoftmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return logits.map((v) => v - lse);
}

function topLogprobs(lp: Float32Array, k: number): TokenLogprob[] {
  if (k <= 0) return [];
  const best: number[] = [];
  for (let i = 0; i < lp.length; i++) {
    if (best.length === k && lp[i] <= lp[best[k - 1]]) continue;
    let p = best.length < k ? best.push(i) - 1 : k - 1;
    while (p > 0 && lp[best[p - 1]] < lp[i]) { best[p] = best[p - 1]; p--; }
    best[p] = i;
  }
  return best.map((token) => ({ token, logprob: lp[token] }));
}
