/**
 * The DeepSeek-V4 forward pass for training, built from the autograd ops: the same function as the
 * inference forward of src/models/deepseek-v4.ts in its noquant mode (no activation or KV
 * quantisation round trips), over a whole sequence starting at position 0, every position's
 * logits at once.
 *
 *   X = [e]×Hc;  per block: X = hc_post(Attention(norm(hc_pre(X))));  X = hc_post(MoE(norm(hc_pre(X))))
 *   logits = head·norm(Σ_j pre_j X_j);   MTP: Y_j = e_proj·norm(embed(next)) + h_proj·norm(X_j), Block, head
 *
 * Loss (§8): next-token cross-entropy + λ·MTP cross-entropy (row t pairs the trunk output at t with
 * token t+1 and predicts token t+2) + μ·indexer KL (ops-attention.ts: trains the indexer only).
 * What the choices of the forward are not differentiable through: expert selection (top-k of
 * score + bias, or the hash table) and the indexer's top-k; the chosen experts' weights and every
 * selected entry's attention are.
 */
import { v4RopeFreqs } from '../models/deepseek-v4.js';
import { topIndices } from '../models/host-linear.js';
import type { V4Config } from '../models/deepseek-v4-config.js';
import type { Tape, Tensor } from './autograd.js';
import { add, concatRows, crossEntropy, detach, embedding, hadamardRows, klDivergence, linear, rmsnorm, rope, scale, softmax } from './ops-basic.js';
import { addPositionBias, compressPool, groupedLinear, indexerScores, indexerTarget, sparseAttention } from './ops-attention.js';
import { divideByRms, hcCollapse, hcExpand, hcHeadWeights, hcSinkhorn, repeatStreams } from './ops-mhc.js';
import { gatherRows, hashExperts, type RowsPart, routeWeights, scaleRows, scatterAddRows, selectTopK, sqrtSoftplus, swiglu } from './ops-moe.js';
import type { V4TrainParams } from './v4-train-params.js';

export interface V4LossOptions {
  /** λ of the MTP loss. The spec fixes none; DeepSeek-V3 trained with 0.3, later 0.1. Default 0.3. */
  readonly mtpWeight?: number;
  /** μ of the indexer KL loss (mean over CSA layers). Default 1. */
  readonly indexerWeight?: number;
}

export interface V4Forward {
  /** [n, vocab]: row t predicts the token at t + 1. */
  readonly logits: Tensor;
  /** [n, Hc, D]: the streams leaving the last main block. */
  readonly hidden: Tensor;
  /** [n, vocab] when MTP ids were given: row t (trunk at t, token ids[t]) predicts the token at t + 2. */
  readonly mtpLogits?: Tensor;
  /** One KL loss per CSA layer (main and MTP) that had a query seeing ≥ 2 compressed entries. */
  readonly indexerLosses: readonly Tensor[];
  /** Per score-routed block ('layers.3', 'mtp.0'): how many tokens chose each expert (for the bias update). */
  readonly expertLoad: ReadonlyMap<string, Int32Array>;
}

export interface V4Loss {
  /** The scalar to back-propagate. */
  readonly loss: Tensor;
  readonly ce: number;
  readonly mtp: number;
  readonly indexer: number;
  readonly forward: V4Forward;
}

export class V4TrainModel {
  readonly config: V4Config;
  private readonly freqs = new Map<number, Float32Array>();

  constructor(readonly params: V4TrainParams) {
    this.config = params.config;
    if (this.config.mtpLayers > 1) throw new Error(`V4TrainModel: ${this.config.mtpLayers} MTP blocks; training supports at most one (spec §8)`);
  }

  /** The parameter named as in the checkpoint. */
  p(name: string): Tensor {
    const t = this.params.tensors.get(name);
    if (!t) throw new Error(`V4TrainModel: no parameter '${name}'`);
    return t;
  }

  /**
   * Logits of every position of `tokens` (positions 0 … n−1). With `mtpIds` (n ids: the token
   * after each position) also the MTP block's logits; with `indexerLoss` the CSA layers' indexer
   * KL losses.
   */
  forward(tp: Tape, tokens: readonly number[], opts: { mtpIds?: readonly number[]; indexerLoss?: boolean } = {}): V4Forward {
    const c = this.config, n = tokens.length, mtpIds = opts.mtpIds;
    if (n === 0) throw new Error('V4TrainModel.forward: no tokens');
    if (mtpIds && mtpIds.length !== n) throw new Error(`V4TrainModel.forward: ${mtpIds.length} MTP ids for ${n} tokens`);
    if (mtpIds && c.mtpLayers === 0) throw new Error('V4TrainModel.forward: this config has no MTP block');
    const run: Run = { indexerLoss: opts.indexerLoss ?? false, indexerLosses: [], expertLoad: new Map() };
    let X = repeatStreams(tp, embedding(tp, this.p('embed.weight'), tokens), c.hcMult, c.dim);
    for (let l = 0; l < c.layers; l++) X = this.block(tp, `layers.${l}`, l, X, tokens, run);
    const logits = this.head(tp, X, '', 'norm.weight');
    const mtpLogits = mtpIds ? this.mtp(tp, X, mtpIds, run) : undefined;
    return { logits, hidden: X, mtpLogits, indexerLosses: run.indexerLosses, expertLoad: run.expertLoad };
  }

  /**
   * Training loss of one sequence (≥ 2 tokens): the model reads tokens 0 … L−2 and predicts
   * 1 … L−1; MTP rows predict 2 … L−1. With `mask` (L entries) only the tokens t with mask[t] ≠ 0
   * are targets, of the next-token and the MTP loss alike; each loss is the mean over its targets.
   */
  loss(tp: Tape, sequence: readonly number[], opts: V4LossOptions = {}, mask?: ArrayLike<number>): V4Loss {
    const L = sequence.length, lambda = opts.mtpWeight ?? 0.3, mu = opts.indexerWeight ?? 1;
    if (L < 2) throw new Error(`V4TrainModel.loss: a sequence needs at least 2 tokens, got ${L}`);
    if (mask && mask.length !== L) throw new Error(`V4TrainModel.loss: a mask of ${mask.length} entries for ${L} tokens`);
    const target = (t: number): number => (!mask || mask[t] ? sequence[t] : -1); // −1: not a target
    const inputs = sequence.slice(0, L - 1);
    const useMtp = this.config.mtpLayers > 0 && lambda > 0 && L >= 3;
    const fw = this.forward(tp, inputs, { mtpIds: useMtp ? sequence.slice(1) : undefined, indexerLoss: mu > 0 });
    const ce = crossEntropy(tp, fw.logits, Array.from({ length: L - 1 }, (_, t) => target(t + 1)));
    let loss = ce, mtp = 0, indexer = 0;
    if (fw.mtpLogits) {
      const m = crossEntropy(tp, fw.mtpLogits, Array.from({ length: L - 1 }, (_, t) => (t + 2 < L ? target(t + 2) : -1)));
      mtp = m.data[0];
      loss = add(tp, loss, scale(tp, m, lambda));
    }
    if (fw.indexerLosses.length) {
      for (const kl of fw.indexerLosses) {
        indexer += kl.data[0] / fw.indexerLosses.length;
        loss = add(tp, loss, scale(tp, kl, mu / fw.indexerLosses.length));
      }
    }
    return { loss, ce: ce.data[0], mtp, indexer, forward: fw };
  }

  // ---- blocks ----------------------------------------------------------------------------------

  private block(tp: Tape, p: string, index: number, X: Tensor, ids: readonly number[], run: Run): Tensor {
    const c = this.config, D = c.dim;
    const a = this.hcPre(tp, X, `${p}.hc_attn`);
    const att = this.attention(tp, p, c.compressRatios[index], rmsnorm(tp, a.x, this.p(`${p}.attn_norm.weight`), D, c.eps), run);
    X = hcExpand(tp, att, X, a.post, a.comb);
    const f = this.hcPre(tp, X, `${p}.hc_ffn`);
    const ffn = this.moe(tp, p, index, rmsnorm(tp, f.x, this.p(`${p}.ffn_norm.weight`), D, c.eps), ids, run);
    return hcExpand(tp, ffn, X, f.post, f.comb);
  }

  /** §5.2: mixing logits from the flattened streams, Sinkhorn split, x = Σ pre_j X_j. */
  private hcPre(tp: Tape, X: Tensor, p: string) {
    const c = this.config;
    const m = divideByRms(tp, linear(tp, X, this.p(`${p}_fn`)), X, c.eps);
    const s = hcSinkhorn(tp, m, this.p(`${p}_scale`), this.p(`${p}_base`), c.hcMult, c.hcIters, c.hcEps);
    return { x: hcCollapse(tp, s.pre, X, c.dim), post: s.post, comb: s.comb };
  }

  /** §5.4: head mixer, final norm, logits. `p` is '' or 'mtp.0.'. */
  private head(tp: Tape, X: Tensor, p: string, norm: string): Tensor {
    const c = this.config;
    const m = divideByRms(tp, linear(tp, X, this.p(`${p}hc_head_fn`)), X, c.eps);
    const pre = hcHeadWeights(tp, m, this.p(`${p}hc_head_scale`), this.p(`${p}hc_head_base`), c.hcEps);
    const h = rmsnorm(tp, hcCollapse(tp, pre, X, c.dim), this.p(norm), c.dim, c.eps);
    return linear(tp, h, this.p('head.weight'));
  }

  /** §8: Y_j = e_proj·enorm(embed(ids)) + h_proj·hnorm(X_j), the MTP block, its head mixer. */
  private mtp(tp: Tape, X: Tensor, ids: readonly number[], run: Run): Tensor {
    const c = this.config, D = c.dim, p = 'mtp.0';
    const e = rmsnorm(tp, embedding(tp, this.p('embed.weight'), ids), this.p(`${p}.enorm.weight`), D, c.eps);
    const eProj = linear(tp, e, this.p(`${p}.e_proj.weight`));
    const hProj = linear(tp, rmsnorm(tp, X, this.p(`${p}.hnorm.weight`), D, c.eps), this.p(`${p}.h_proj.weight`));
    const Y = add(tp, repeatStreams(tp, eProj, c.hcMult, D), hProj);
    const out = this.block(tp, p, c.layers, Y, ids, run);
    return this.head(tp, out, `${p}.`, `${p}.norm.weight`);
  }

  // ---- attention (§6) --------------------------------------------------------------------------

  private ropeFreqs(ratio: number): Float32Array {
    let f = this.freqs.get(ratio);
    if (!f) this.freqs.set(ratio, (f = v4RopeFreqs(this.config, ratio)));
    return f;
  }

  private attention(tp: Tape, p: string, ratio: number, x: Tensor, run: Run): Tensor {
    const c = this.config, H = c.heads, Dh = c.headDim, R = c.ropeDim, W = c.window;
    const n = x.shape[0], freqs = this.ropeFreqs(ratio), positions = Int32Array.from({ length: n }, (_, t) => t);
    const a = `${p}.attn`;

    // §6.2 projections.
    const qr = rmsnorm(tp, linear(tp, x, this.p(`${a}.wq_a.weight`)), this.p(`${a}.q_norm.weight`), c.qLoraRank, c.eps);
    const q = rope(tp, rmsnorm(tp, linear(tp, qr, this.p(`${a}.wq_b.weight`)), null, Dh, c.eps), { heads: H, width: Dh, ropeDim: R, freqs, positions });
    const kv = rope(tp, rmsnorm(tp, linear(tp, x, this.p(`${a}.wkv.weight`)), this.p(`${a}.kv_norm.weight`), Dh, c.eps), { heads: 1, width: Dh, ropeDim: R, freqs, positions });

    // §6.3–6.5 compressed entries and which of them each query sees.
    let table = kv;
    const visible = new Int32Array(n);
    let lists: ArrayLike<number>[] = Array.from({ length: n }, () => []);
    if (ratio > 0) {
      const k = this.compress(tp, `${a}.compressor`, x, ratio, Dh, freqs);
      table = concatRows(tp, kv, k, Dh);
      for (let t = 0; t < n; t++) visible[t] = Math.floor((t + 1) / ratio);
      lists = Array.from(visible, (vis) => Int32Array.from({ length: vis }, (_, e) => e));
      if (ratio === 4 && k.shape[0] > 0) lists = this.indexer(tp, a, x, qr, q, table, visible, k.shape[0], freqs, run);
    }

    // §6.6 candidates per query: the causal window, then its compressed entries (table rows n + e).
    let count = 0;
    for (let t = 0; t < n; t++) count = Math.max(count, Math.min(W, t + 1) + lists[t].length);
    const rows = new Int32Array(n * count).fill(-1);
    for (let t = 0; t < n; t++) {
      let i = t * count;
      for (let s = Math.max(0, t - W + 1); s <= t; s++) rows[i++] = s;
      for (let e = 0; e < lists[t].length; e++) rows[i++] = n + lists[t][e];
    }
    let o = sparseAttention(tp, q, table, rows, count, this.p(`${a}.attn_sink`), 1 / Math.sqrt(Dh));
    o = rope(tp, o, { heads: H, width: Dh, ropeDim: R, freqs, positions, inverse: true });

    // §6.7 grouped low-rank output.
    const z = groupedLinear(tp, o, this.p(`${a}.wo_a.weight`), c.oGroups);
    return linear(tp, z, this.p(`${a}.wo_b.weight`));
  }

  /** §6.4: a compressor's keys [floor(n/r), d]: pooled, normed, RoPE at each block's first position. */
  private compress(tp: Tape, p: string, x: Tensor, ratio: number, d: number, freqs: Float32Array): Tensor {
    const c = this.config, overlap = ratio === 4;
    const values = linear(tp, x, this.p(`${p}.wkv.weight`));
    const logits = addPositionBias(tp, linear(tp, x, this.p(`${p}.wgate.weight`)), this.p(`${p}.ape`));
    const pooled = compressPool(tp, values, logits, ratio, d, overlap);
    const E = pooled.shape[0];
    const normed = rmsnorm(tp, pooled, this.p(`${p}.norm.weight`), d, c.eps);
    return rope(tp, normed, { heads: 1, width: d, ropeDim: c.ropeDim, freqs, positions: Int32Array.from({ length: E }, (_, e) => e * ratio) });
  }

  /**
   * §6.5: the indexer's choice of compressed entries per query (all of them when they fit in
   * index_topk, else the top-k scores, ties to the lower entry), and its KL loss (pushed to run).
   * Its inputs are detached: only the indexer's own weights learn from that loss.
   */
  private indexer(tp: Tape, a: string, x: Tensor, qr: Tensor, q: Tensor, table: Tensor, visible: Int32Array,
    entries: number, freqs: Float32Array, run: Run): ArrayLike<number>[] {
    const c = this.config, Hi = c.indexHeads, Di = c.indexHeadDim, n = visible.length, p = `${a}.indexer`;
    const xd = detach(x);
    const qi = hadamardRows(tp, rope(tp, linear(tp, detach(qr), this.p(`${p}.wq_b.weight`)),
      { heads: Hi, width: Di, ropeDim: c.ropeDim, freqs, positions: Int32Array.from({ length: n }, (_, t) => t) }), Di);
    const w = scale(tp, linear(tp, xd, this.p(`${p}.weights_proj.weight`)), 1 / Math.sqrt(Di) / Math.sqrt(Hi));
    const keys = hadamardRows(tp, this.compress(tp, `${p}.compressor`, xd, 4, Di, freqs), Di);
    const scores = indexerScores(tp, qi, keys, w, visible);

    const picks: ArrayLike<number>[] = [];
    for (let t = 0; t < n; t++) {
      const vis = visible[t];
      picks.push(vis <= c.indexTopk ? Int32Array.from({ length: vis }, (_, e) => e) : topIndices(scores.data.subarray(t * entries, (t + 1) * entries), vis, c.indexTopk));
    }
    const rows: number[] = [];
    for (let t = 0; t < n; t++) if (visible[t] >= 2) rows.push(t);
    if (rows.length && run.indexerLoss) {
      const target = indexerTarget({
        q: q.data, table: table.data, sink: this.p(`${a}.attn_sink`).data, n, heads: c.heads, headDim: c.headDim,
        window: c.window, entries, visible, scale: 1 / Math.sqrt(c.headDim),
      });
      run.indexerLosses.push(klDivergence(tp, target, softmax(tp, scores, entries, visible), entries, rows));
    }
    return picks;
  }

  // ---- MoE (§7) --------------------------------------------------------------------------------

  private moe(tp: Tape, p: string, index: number, x: Tensor, ids: readonly number[], run: Run): Tensor {
    const c = this.config, D = c.dim, K = c.topK, E = c.experts, n = ids.length, f = `${p}.ffn`;
    const s = sqrtSoftplus(tp, linear(tp, x, this.p(`${f}.gate.weight`)));
    const hash = this.params.hashTables.get(`${f}.gate.tid2eid`);
    let chosen: Int32Array;
    if (index < c.hashLayers) {
      if (!hash) throw new Error(`V4TrainModel: no hash table '${f}.gate.tid2eid'`);
      chosen = hashExperts(hash, ids, K);
    } else {
      chosen = selectTopK(s.data, this.p(`${f}.gate.bias`).data, n, E, K);
      const load = new Int32Array(E);
      for (const e of chosen) load[e]++;
      run.expertLoad.set(p, load);
    }
    const w = routeWeights(tp, s, chosen, K, c.routeScale);

    const shared = this.expert(tp, `${f}.shared_experts`, x);
    const slotsOf: number[][] = Array.from({ length: E }, () => []);
    for (let i = 0; i < chosen.length; i++) slotsOf[chosen[i]].push(i);
    const parts: RowsPart[] = [];
    for (let e = 0; e < E; e++) {
      if (!slotsOf[e].length) continue;
      const slots = Int32Array.from(slotsOf[e]), tokens = slots.map((slot) => Math.floor(slot / K));
      const y = this.expert(tp, `${f}.experts.${e}`, gatherRows(tp, x, tokens, D), w, slots);
      parts.push({ y, rows: tokens });
    }
    return scatterAddRows(tp, shared, parts, D);
  }

  /** §7.3 clamped SwiGLU expert; routed experts weight w2's input by their routing weight. */
  private expert(tp: Tape, p: string, x: Tensor, w?: Tensor, slots?: Int32Array): Tensor {
    let h = swiglu(tp, linear(tp, x, this.p(`${p}.w1.weight`)), linear(tp, x, this.p(`${p}.w3.weight`)), this.config.swigluLimit);
    if (w && slots) h = scaleRows(tp, h, w, slots);
    return linear(tp, h, this.p(`${p}.w2.weight`));
  }
}

/** What a forward collects besides its outputs. */
interface Run {
  readonly indexerLoss: boolean;
  readonly indexerLosses: Tensor[];
  readonly expertLoad: Map<string, Int32Array>;
}
