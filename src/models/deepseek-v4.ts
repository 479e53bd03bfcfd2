/**
 * DeepSeek-V4 (Flash / Pro): the forward pass of ../../../shared/spec/deepseek-v4.md, in its order.
 *
 *   X = [e, e, …, e]  (Hc streams of the token embedding e)                                  §4
 *   per block:  x, post, C = hc_pre(X)          mixing weights from the streams, Sinkhorn    §5.2
 *               a = Attention(RMSNorm(x))        window + compressed keys (CSA / HCA), sink   §6
 *               X = post·a + Cᵀ·X                hc_post                                      §5.3
 *               x, post, C = hc_pre(X);  f = MoE(RMSNorm(x));  X = post·f + Cᵀ·X              §7
 *   logits = head · RMSNorm(Σ_j pre_j X_j)       hc_head mixer                                §5.4
 *   MTP:   Y_j = e_proj·RMSNorm(embed(next)) + h_proj·RMSNorm(X_j);  Y = Block(Y);  head      §8
 *   or DSpark draft stages in MTP's place (V4-DSpark form, deepseek-v41.md §8.2): see dspark().
 *
 * Linear maps over stored weights (FP8 tiles, FP4 experts, BF16, F32) run on the backend's matrix
 * kernels, and sparse attention (§6.6) on its sparseAttention op over KV rows kept in backend
 * memory; the per-token pieces (mixing, normalisation, compressor pooling, indexer scoring) run
 * here on host Float32Arrays. Two numeric switches (§10.3): `actQuant` rounds the
 * input of every FP8/FP4 product to FP8 (Q8 with 1×128 blocks), `kvQuant` keeps the model's
 * quantisation round trips inside attention (FP8 of the KV, FP4 of the indexer). Both on is the
 * official behaviour ("faithful"); both off is "noquant".
 *
 * Prefill runs each block's projections for the whole chunk at once, then walks its tokens in
 * order through the per-layer state (window ring, compressor buffers, compressed entries), exactly
 * as one-token decoding would, and attends for all of them in one backend call — so prefill and
 * decode give the same logits by construction.
 */
import type { Backend, Tensor } from '../kernels/backend.js';
import { hadamard, hcSplitSinkhorn, ropeTail } from '../kernels/deepseek-ops.js';
import { moeForward, type MoeWeights } from './deepseek-moe.js';
import { DeviceBuffer, HostLinear, packState, rmsnormRows, SequenceOwner, sigmoid, topIndices } from './host-linear.js';
import { ropeFreqs, yarnFreqs } from '../kernels/rope-freqs.js';
import { qatFp4, qatFp8 } from '../tensor/dequantize.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { WeightFile } from '../formats/weight-file.js';
import { type LayerKind, layerKind, type V4Config } from './deepseek-v4-config.js';
import type { DsparkDraft, DsparkSequence, LanguageModel, ModelDescription } from './model.js';
import { argmax } from '../engine/sampler.js';
import type { MoeParams } from './deepseek-moe.js';

export interface V4Numerics {
  /** Q8(x, 128) before every FP8/FP4 matrix product (§10.3). */
  readonly actQuant: boolean;
  /** Q8(·, 64) of window and compressed KV, Q4(·, 32) of the indexer's queries and keys (§6). */
  readonly kvQuant: boolean;
}

export const FAITHFUL: V4Numerics = { actQuant: true, kvQuant: true };

// ---- weights (filled by deepseek-v4-load.ts) ---------------------------------------------------

export interface HcWeights {
  readonly fn: Tensor; // [mix, Hc·D] f32
  readonly base: Float32Array;
  readonly scale: Float32Array;
}

export interface CompressorWeights {
  readonly ratio: number;
  /** Output width d; overlap mode (ratio 4) produces 2d per token (lanes A and B). */
  readonly width: number;
  readonly overlap: boolean;
  readonly wkv: Tensor; // [c2·d, D] bf16
  readonly wgate: Tensor;
  readonly ape: Float32Array; // [ratio, c2·d]
  readonly norm: Float32Array; // [d]
}

export interface AttentionWeights {
  readonly ratio: number;
  readonly kind: LayerKind;
  /** RoPE frequencies of this layer (plain base-10000, or base-160000 with YaRN when compressed). */
  readonly freqs: Float32Array;
  readonly wqA: Tensor;
  readonly qNorm: Float32Array;
  readonly wqB: Tensor;
  readonly wkv: Tensor;
  readonly kvNorm: Float32Array;
  /** Group g's rows of wo_a (or the whole matrix when its tiles do not split by group). */
  readonly woA: readonly Tensor[];
  readonly woB: Tensor;
  readonly sink: Float32Array;
  readonly compressor?: CompressorWeights;
  readonly indexer?: { readonly wqB: Tensor; readonly weightsProj: Tensor; readonly compressor: CompressorWeights };
}

export type { ExpertWeights, MoeWeights } from './deepseek-moe.js';

export interface BlockWeights {
  readonly name: string; // 'layer3', 'mtp0'
  readonly attnNorm: Float32Array;
  readonly ffnNorm: Float32Array;
  readonly hcAttn: HcWeights;
  readonly hcFfn: HcWeights;
  readonly attn: AttentionWeights;
  readonly ffn: MoeWeights;
}

export interface HeadMixer {
  readonly fn: Tensor; // [Hc, Hc·D] f32
  readonly base: Float32Array;
  readonly scale: Float32Array;
  readonly norm: Float32Array;
}

export interface MtpWeights {
  readonly block: BlockWeights;
  readonly eProj: Tensor;
  readonly hProj: Tensor;
  readonly enorm: Float32Array;
  readonly hnorm: Float32Array;
  readonly head: HeadMixer;
}

export interface V4Weights {
  readonly embed: Tensor; // [vocab, D] bf16
  readonly head: Tensor; // [vocab, D] bf16
  readonly headMixer: HeadMixer;
  readonly blocks: readonly BlockWeights[];
  readonly mtp: readonly MtpWeights[];
  readonly dspark?: DsparkV4Weights;
}

/** DSpark draft stages of the V4-DSpark form (deepseek-v41.md §8.2), in MTP's place. */
export interface DsparkV4Weights {
  /** V4 blocks whose attention is window only (ratio 0). */
  readonly stages: readonly BlockWeights[];
  readonly mainProj: Tensor; // [D, |targets|·D] FP8
  readonly mainNorm: Float32Array;
  /** The last stage's hc_head mixer and final norm. */
  readonly head: HeadMixer;
  readonly markovEmbed: Tensor; // markov_w1 [V, r]
  readonly markovHead: Tensor; // markov_w2 [V, r], run as a linear r → V
  readonly confidence: Float32Array; // [D + r]
}

/** RoPE frequencies of a layer with compress ratio `ratio` (§3.4). */
export function v4RopeFreqs(c: Pick<V4Config, 'ropeTheta' | 'ropeDim' | 'compressRopeTheta' | 'yarn'>, ratio: number): Float32Array {
  if (ratio === 0) return ropeFreqs(c.ropeTheta, c.ropeDim);
  return yarnFreqs({
    base: c.compressRopeTheta, dim: c.ropeDim, factor: c.yarn.factor,
    originalSeqLen: c.yarn.originalContext, betaFast: c.yarn.betaFast, betaSlow: c.yarn.betaSlow,
  });
}

// ---- host primitives ---------------------------------------------------------------------------

/** Optional observers for fidelity checks: intermediate tensors out, golden block inputs in. */
export interface V4Probe {
  /** Receives `name` (as in the fixtures' debug dumps) and its rows for the chunk's tokens. */
  tap?(name: string, data: Float32Array | Int32Array): void;
  /** Replaces the input streams [n, Hc, D] of block `name` ('layer2', 'mtp0') for this chunk. */
  blockInput?(name: string): Float32Array | undefined;
}

// ---- per-sequence state ------------------------------------------------------------------------

/** The compressor's partial-block buffers (§9.3): values and gate logits of the open block(s). */
class CompressorState {
  readonly kv: Float32Array; // [c2·r, c2·d]
  readonly score: Float32Array;
  private readonly rowWidth: number;

  constructor(readonly w: CompressorWeights) {
    const c2 = w.overlap ? 2 : 1;
    this.rowWidth = c2 * w.width;
    this.kv = new Float32Array(c2 * w.ratio * this.rowWidth);
    this.score = new Float32Array(c2 * w.ratio * this.rowWidth);
    this.reset();
  }

  reset(): void {
    this.kv.fill(0);
    this.score.fill(-Infinity);
  }

  /**
   * Adds token p's values a and logits g (with ape already added) and returns the pooled entry
   * [d] when p closes a block, else undefined.
   */
  push(p: number, a: Float32Array, g: Float32Array, out: Float32Array): Float32Array | undefined {
    const { ratio: r, width: d, overlap } = this.w, rw = this.rowWidth;
    const row = (overlap ? r : 0) + (p % r);
    this.kv.set(a, row * rw);
    this.score.set(g, row * rw);
    if ((p + 1) % r !== 0) return undefined;
    for (let ch = 0; ch < d; ch++) {
      // Candidates: overlap mode pools lane A of the previous block and lane B of this one.
      let max = -Infinity;
      for (let i = 0; i < r; i++) {
        if (overlap) max = Math.max(max, this.score[i * rw + ch], this.score[(r + i) * rw + d + ch]);
        else max = Math.max(max, this.score[i * rw + ch]);
      }
      let sum = 0, acc = 0;
      for (let i = 0; i < r; i++) {
        if (overlap) {
          const ea = Math.exp(this.score[i * rw + ch] - max), eb = Math.exp(this.score[(r + i) * rw + d + ch] - max);
          sum += ea + eb;
          acc += ea * this.kv[i * rw + ch] + eb * this.kv[(r + i) * rw + d + ch];
        } else {
          const e = Math.exp(this.score[i * rw + ch] - max);
          sum += e;
          acc += e * this.kv[i * rw + ch];
        }
      }
      out[ch] = acc / sum;
    }
    if (overlap) {
      this.kv.copyWithin(0, r * rw, 2 * r * rw);
      this.score.copyWithin(0, r * rw, 2 * r * rw);
    }
    return out;
  }
}

/**
 * One attention layer's state: window ring and compressed entries (rows of the sequence's KV
 * tensor in backend memory, see SequenceKv), indexer keys and the compressors' buffers.
 */
class LayerState {
  /** Compressed entries the layer can hold: capacity/r. */
  readonly entries: number;
  readonly ratio: number;
  readonly compressor?: CompressorState;
  /** Indexer keys [capacity/4, indexHeadDim] in backend memory, where indexerScores reads them. */
  readonly indexKeys?: Tensor;
  readonly indexCompressor?: CompressorState;
  readonly bytes: number;
  private readonly window: number;

  /** `base`: the KV tensor row where this layer's W + capacity/r rows begin; `sink`: its attn_sink [H] there. */
  constructor(be: Backend, c: V4Config, a: AttentionWeights, capacity: number, readonly base: number, readonly sink: Tensor) {
    this.window = c.window;
    this.ratio = a.ratio;
    this.entries = a.ratio ? Math.floor(capacity / a.ratio) : 0;
    if (a.compressor) this.compressor = new CompressorState(a.compressor);
    if (a.indexer) {
      this.indexKeys = be.alloc('f32', [Math.max(1, this.entries), c.indexHeadDim], 'V4 indexer keys');
      this.indexCompressor = new CompressorState(a.indexer.compressor);
    }
    this.bytes = 4 * ((c.window + this.entries) * c.headDim + (this.indexKeys ? this.entries * c.indexHeadDim : 0) +
      2 * ((this.compressor?.kv.length ?? 0) + (this.indexCompressor?.kv.length ?? 0)));
  }

  /** KV row of window position p: its ring slot p mod W. */
  ringRow(p: number): number { return this.base + (p % this.window); }

  /** KV row of compressed entry e. */
  entryRow(e: number): number { return this.base + this.window + e; }

  reset(): void {
    this.compressor?.reset();
    this.indexCompressor?.reset();
  }
}

/**
 * The attention KV of a sequence in backend memory: one f32 tensor [stage + Σ_l (W + capacity/r_l),
 * headDim] with every layer's window ring and compressed entries (LayerState.base), after `stage`
 * rows that hold the KV of the tokens being attended. A prefill chunk's tokens read each other's
 * rows there: writing them into the ring first would overwrite slots its earlier tokens still see.
 * Beside it, the layers' sinks [layers, H].
 */
class SequenceKv {
  readonly kv: Tensor;
  readonly stage: number;
  readonly layers: LayerState[];
  private readonly sinks: Tensor;

  constructor(private readonly be: Backend, c: V4Config, attns: readonly AttentionWeights[], capacity: number) {
    // A DSpark draft block stages its γ keys here too.
    this.stage = Math.max(Math.min(CHUNK, capacity), c.dspark?.blockSize ?? 0);
    const bases: number[] = [];
    let rows = this.stage;
    for (const a of attns) {
      bases.push(rows);
      rows += c.window + (a.ratio ? Math.floor(capacity / a.ratio) : 0);
    }
    this.kv = be.alloc('f32', [rows, c.headDim], 'V4 attention KV');
    this.sinks = be.alloc('f32', [attns.length, c.heads], 'V4 attention sinks');
    this.layers = attns.map((a, l) => {
      const sink = be.view(this.sinks, l * c.heads, [c.heads]);
      be.upload(sink, a.sink);
      return new LayerState(be, c, a, capacity, bases[l], sink);
    });
  }

  /** Writes `data` (whole rows) into the KV tensor from `row` on. */
  write(row: number, data: Float32Array): void {
    const d = this.kv.shape[1];
    this.be.upload(this.be.view(this.kv, row * d, [data.length / d, d]), data);
  }

  free(): void {
    this.be.free(this.kv);
    this.be.free(this.sinks);
    for (const l of this.layers) if (l.indexKeys) this.be.free(l.indexKeys);
  }
}

/** State bytes one sequence of `capacity` tokens needs for a layer of ratio `ratio`. */
export function v4LayerStateBytes(c: V4Config, ratio: number, capacity: number): number {
  const entries = ratio ? Math.floor(capacity / ratio) : 0;
  const c2 = ratio === 4 ? 2 : 1;
  let floats = (c.window + entries) * c.headDim + (ratio ? 2 * c2 * ratio * c2 * c.headDim : 0);
  if (ratio === 4) floats += entries * c.indexHeadDim + 2 * 8 * 2 * c.indexHeadDim;
  return 4 * floats;
}

// ---- pieces V4.1 shares (deepseek-v41.ts) -------------------------------------------------------

type Dims = Pick<V4Config, 'dim' | 'hcMult' | 'hcIters' | 'hcEps' | 'eps' | 'heads' | 'headDim' | 'oGroups' | 'oLoraRank' | 'window'>;

/** §5.2: per token the mixing logits of the flattened streams, divided by their rms, split by Sinkhorn into pre, post and C. */
export async function hcMixes(lin: HostLinear, c: Dims, X: Float32Array, n: number, W: HcWeights) {
  const hc = c.hcMult, sw = hc * c.dim, mix = (2 + hc) * hc;
  const m = await lin.run(W.fn, X, n);
  const pre = new Float32Array(n * hc), post = new Float32Array(n * hc), comb = new Float32Array(n * hc * hc);
  for (let t = 0; t < n; t++) {
    let ss = 0;
    for (let i = t * sw; i < (t + 1) * sw; i++) ss += X[i] * X[i];
    const inv = 1 / Math.sqrt(ss / sw + c.eps);
    for (let i = t * mix; i < (t + 1) * mix; i++) m[i] *= inv;
    hcSplitSinkhorn(m, t * mix, W.scale, W.base, hc, c.hcIters, c.hcEps,
      pre.subarray(t * hc, (t + 1) * hc), post.subarray(t * hc, (t + 1) * hc), comb.subarray(t * hc * hc, (t + 1) * hc * hc));
  }
  return { pre, post, comb };
}

/** Σ_j pre_j X_j per token: streams [n, hc, D] → [n, D]. */
export function collapseStreams(X: Float32Array, pre: Float32Array, n: number, hc: number, D: number): Float32Array {
  const x = new Float32Array(n * D);
  for (let t = 0; t < n; t++) {
    for (let j = 0; j < hc; j++) {
      const p = pre[t * hc + j], src = (t * hc + j) * D;
      for (let i = 0; i < D; i++) x[t * D + i] += p * X[src + i];
    }
  }
  return x;
}

/** hc_post (§5.3): X'[k] = post[k]·f + Σ_j C[j][k]·R[j]. */
export function hcPost(f: Float32Array, R: Float32Array, n: number, post: Float32Array, comb: Float32Array, hc: number, D: number): Float32Array {
  const out = new Float32Array(n * hc * D);
  for (let t = 0; t < n; t++) {
    for (let k = 0; k < hc; k++) {
      const o = (t * hc + k) * D, pk = post[t * hc + k];
      for (let i = 0; i < D; i++) out[o + i] = pk * f[t * D + i];
      for (let j = 0; j < hc; j++) {
        const cjk = comb[(t * hc + j) * hc + k], r = (t * hc + j) * D;
        for (let i = 0; i < D; i++) out[o + i] += cjk * R[r + i];
      }
    }
  }
  return out;
}

/** §6.7 grouped low-rank output of o [n, H·headDim]: group g's heads → its slice of wo_a, then wo_b. */
export async function groupedOutput(lin: HostLinear, c: Dims, A: { woA: readonly Tensor[]; woB: Tensor }, o: Float32Array, n: number,
  fp8In: ((x: Float32Array) => void) | undefined): Promise<Float32Array> {
  const H = c.heads, Dh = c.headDim, G = c.oGroups, Ro = c.oLoraRank, gw = (H / G) * Dh;
  const z = new Float32Array(n * G * Ro);
  if (A.woA.length === G) {
    for (let g = 0; g < G; g++) {
      const u = new Float32Array(n * gw);
      for (let t = 0; t < n; t++) u.set(o.subarray(t * H * Dh + g * gw, t * H * Dh + (g + 1) * gw), t * gw);
      const zg = await lin.run(A.woA[g], u, n);
      for (let t = 0; t < n; t++) z.set(zg.subarray(t * Ro, (t + 1) * Ro), t * G * Ro + g * Ro);
    }
  } else {
    // wo_a's scale blocks straddle groups (tiny models): run every group's input through the whole
    // matrix and keep each group's own slice.
    const all = await lin.run(A.woA[0], o, n * G); // [n·G, G·Ro]
    for (let t = 0; t < n; t++) {
      for (let g = 0; g < G; g++) z.set(all.subarray((t * G + g) * G * Ro + g * Ro, (t * G + g) * G * Ro + (g + 1) * Ro), t * G * Ro + g * Ro);
    }
  }
  return lin.run(A.woB, z, n, fp8In);
}

/**
 * §6.6 on the backend for a chunk's tokens: token t at position p = start + t attends to the
 * window positions max(0, p − W + 1) … p (`ringRow(p)` in `kvT` for positions before the chunk),
 * then the KV rows `seen[t]`. The tokens go in groups of up to `stage`: a group's own KV rows are
 * staged at rows 0…, its earlier positions read from the ring, and the ring takes the group's
 * last `ringSize` rows afterwards (a slot may still be needed by an earlier token of the group).
 * Returns o [n, H·headDim].
 */
export async function attendChunk(be: Backend, c: Dims, kvT: Tensor, stage: number, ringRow: (p: number) => number, ringSize: number,
  sink: Tensor, qBuf: DeviceBuffer, oBuf: DeviceBuffer, q: Float32Array, kv: Float32Array, seen: readonly (readonly number[])[], start: number): Promise<Float32Array> {
  const HD = c.heads * c.headDim, Dh = c.headDim, W = c.window, n = seen.length;
  const windowOf = (p: number) => Math.min(W, p + 1);
  const write = (row: number, data: Float32Array) => be.upload(be.view(kvT, row * Dh, [data.length / Dh, Dh]), data);
  const qT = qBuf.view([n, HD]), oT = oBuf.view([n, HD]);
  be.upload(qT, q);
  for (let a = 0; a < n; a += stage) {
    const b = Math.min(n, a + stage), first = start + a;
    write(0, kv.subarray(a * Dh, b * Dh)); // position s ≥ first is staged at row s − first
    let count = 0;
    for (let t = a; t < b; t++) count = Math.max(count, windowOf(start + t) + seen[t].length);
    const rows = new Int32Array((b - a) * count).fill(-1); // [b − a, count], −1 pads
    for (let t = a; t < b; t++) {
      const p = start + t;
      let i = (t - a) * count;
      for (let s = p - windowOf(p) + 1; s <= p; s++) rows[i++] = s >= first ? s - first : ringRow(s);
      for (const row of seen[t]) rows[i++] = row;
    }
    be.sparseAttention(be.view(qT, a * HD, [b - a, HD]), kvT, rows, count, sink, be.view(oT, a * HD, [b - a, HD]), 1 / Math.sqrt(Dh));
    for (let p = Math.max(first, start + b - ringSize); p < start + b; p++) write(ringRow(p), kv.subarray((p - start) * Dh, (p - start + 1) * Dh));
  }
  return be.download(oT);
}

/**
 * DSpark's draft attention (deepseek-v41.md §8.1 step 3): every row of the block sees the stage
 * ring's positions ≤ `last` (at most W) and all block rows (staged at rows 0 …); writes no state.
 */
export async function attendDraft(be: Backend, c: Dims, kvT: Tensor, ringRow: (p: number) => number, sink: Tensor,
  qBuf: DeviceBuffer, oBuf: DeviceBuffer, q: Float32Array, kv: Float32Array, last: number): Promise<Float32Array> {
  const Dh = c.headDim, n = kv.length / Dh, HD = c.heads * Dh;
  const qT = qBuf.view([n, HD]), oT = oBuf.view([n, HD]);
  be.upload(qT, q);
  be.upload(be.view(kvT, 0, [n, Dh]), kv);
  const ring: number[] = [];
  for (let p = Math.max(0, last - c.window + 1); p <= last; p++) ring.push(ringRow(p));
  const count = ring.length + n, rows = new Int32Array(n * count);
  for (let t = 0; t < n; t++) {
    rows.set(ring, t * count);
    for (let b = 0; b < n; b++) rows[t * count + ring.length + b] = b;
  }
  be.sparseAttention(qT, kvT, rows, count, sink, oT, 1 / Math.sqrt(Dh));
  return be.download(oT);
}

/**
 * DSpark's head after the stages (deepseek-v41.md §8.1 steps 5–6): from the block's base logits
 * [γ, V] and hidden rows h [γ, D], the Markov loop (x_0 = anchor; U_k += head·embed[x_k];
 * x_{k+1} = pick(U_k)) and the confidence logits c_k = proj·[h_k ; embed[x_k]].
 */
export async function markovDraft(lin: HostLinear, be: Backend,
  w: { readonly markovEmbed: Tensor; readonly markovHead: Tensor; readonly confidence: Float32Array },
  anchor: number, logits: Float32Array, h: Float32Array, pick: (logits: Float32Array, k: number) => number): Promise<DsparkDraft> {
  const r = w.markovEmbed.shape[1], D = w.confidence.length - r, gamma = h.length / D, V = logits.length / gamma;
  const ids = [anchor], confidence = new Float32Array(gamma);
  for (let k = 0; k < gamma; k++) {
    const e = await embedRows(be, w.markovEmbed, [ids[k]]); // [r]
    const bias = await lin.run(w.markovHead, e, 1); // [V]
    const U = logits.subarray(k * V, (k + 1) * V);
    for (let v = 0; v < V; v++) U[v] += bias[v];
    ids.push(pick(U.slice(), k));
    let z = 0;
    for (let i = 0; i < D; i++) z += w.confidence[i] * h[k * D + i];
    for (let i = 0; i < r; i++) z += w.confidence[D + i] * e[i];
    confidence[k] = z;
  }
  return { ids, logits, confidence };
}

/** Rows `ids` of an embedding table (any dtype the backend's embedding reads) as f32 [n, width]. */
export async function embedRows(be: Backend, table: Tensor, ids: readonly number[]): Promise<Float32Array> {
  const y = be.alloc('f32', [ids.length, table.shape[1]], 'embedding rows');
  try {
    be.embedding(table, ids, y);
    return await be.download(y);
  } finally {
    be.free(y);
  }
}

// ---- the model ---------------------------------------------------------------------------------

export class DeepseekV4Model extends SequenceOwner<DeepseekV4Sequence> implements LanguageModel {
  constructor(
    readonly config: V4Config,
    readonly weights: V4Weights,
    readonly tokenizer: Tokenizer,
    readonly backend: Backend,
    readonly numerics: V4Numerics,
    readonly description: ModelDescription,
    release: () => Promise<void>,
    file: WeightFile,
  ) {
    super(description, config.contextLength, release, file);
  }

  protected makeSequence(capacity: number, onFree: () => void): DeepseekV4Sequence {
    return new DeepseekV4Sequence(this, capacity, onFree);
  }
}

/** Rows of at most this many tokens go through the blocks together. */
const CHUNK = 256;

export class DeepseekV4Sequence implements DsparkSequence {
  length = 0;
  readonly capacity: number;
  private readonly c: V4Config;
  private readonly w: V4Weights;
  private readonly q: V4Numerics;
  private readonly lin: HostLinear;
  /** Q8(x, 128) before FP8/FP4 products when actQuant is on (§10.3). */
  private readonly fp8In?: (x: Float32Array) => void;
  private readonly kv: SequenceKv;
  /** The chunk's queries and attention outputs [n, H·headDim] on the backend. */
  private readonly attnQ: DeviceBuffer;
  private readonly attnO: DeviceBuffer;
  /** The indexers' queries, head weights and scores on the backend. */
  private readonly idx: { q: DeviceBuffer; w: DeviceBuffer; scores: DeviceBuffer };
  private readonly layers: LayerState[];
  private readonly mtpLayers: LayerState[];
  /** The DSpark stages' window rings (V4-DSpark form): main_x keys, written by every trunk pass. */
  private readonly stageLayers: LayerState[];
  /** Routing of the DSpark stages' MoE (their own top-k). */
  private readonly stageMoe?: MoeParams;
  /** Every token in the state, so truncate() can rebuild it. */
  private readonly tokens: number[] = [];
  /** Trunk outputs [Hc·D] of positions mtpLength … length−1, waiting for the MTP block. */
  private pendingHidden: Float32Array[] = [];
  private mtpRows = 0;
  /** Tokens to replay before the next forward (after truncate). */
  private replay = 0;
  private freed = false;
  probe?: V4Probe;

  constructor(private readonly model: DeepseekV4Model, capacity: number, private readonly onFree: () => void) {
    this.capacity = capacity;
    this.c = model.config;
    this.w = model.weights;
    this.q = model.numerics;
    if (this.q.actQuant) this.fp8In = (x) => qatFp8(x, 128);
    const be = model.backend;
    this.lin = new HostLinear(be, true); // batch-invariant: see HostLinear
    this.attnQ = new DeviceBuffer(be, 'V4 attention queries');
    this.attnO = new DeviceBuffer(be, 'V4 attention outputs');
    this.idx = { q: new DeviceBuffer(be, 'V4 indexer queries'), w: new DeviceBuffer(be, 'V4 indexer weights'), scores: new DeviceBuffer(be, 'V4 indexer scores') };
    const blocks = this.w.blocks.length;
    const stages = this.w.dspark?.stages ?? [];
    this.kv = new SequenceKv(be, this.c, [...this.w.blocks, ...this.w.mtp.map((m) => m.block), ...stages].map((b) => b.attn), capacity);
    this.layers = this.kv.layers.slice(0, blocks);
    this.mtpLayers = this.kv.layers.slice(blocks, blocks + this.w.mtp.length);
    this.stageLayers = this.kv.layers.slice(blocks + this.w.mtp.length);
    const d = this.c.dspark;
    if (d) this.stageMoe = { dim: this.c.dim, topK: d.topK, routeScale: this.c.routeScale, swigluLimit: this.c.swigluLimit };
  }

  /** Weight bytes read by the matrix products so far (embedding rows not counted). */
  get weightBytesRead(): number { return this.lin.weightBytes; }

  /** Rows the MTP block has taken: the next mtp() row pairs the trunk output at mtpLength with the token after it. */
  get mtpLength(): number { return this.mtpRows; }

  /** Bytes of inference state this sequence holds. */
  get stateBytes(): number {
    return [...this.layers, ...this.mtpLayers, ...this.stageLayers].reduce((s, l) => s + l.bytes, 0);
  }

  async forward(tokens: readonly number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    if (this.freed) throw new Error('forward: this sequence has been freed');
    if (tokens.length === 0) throw new Error('forward: no tokens');
    if (this.length + tokens.length > this.capacity) {
      throw new Error(`context full: ${this.length} tokens + ${tokens.length} new is more than this sequence's capacity of ${this.capacity}`);
    }
    for (const t of tokens) {
      if (!(Number.isInteger(t) && t >= 0 && t < this.c.vocab)) throw new Error(`forward: token id ${t} is outside the vocabulary (0 … ${this.c.vocab - 1})`);
    }
    if (this.replay) await this.rebuild();
    const vocab = this.c.vocab;
    const all = opts.allLogits ? new Float32Array(tokens.length * vocab) : undefined;
    let last!: Float32Array;
    for (let i = 0; i < tokens.length; i += CHUNK) {
      const ids = tokens.slice(i, i + CHUNK);
      const X = await this.trunk(ids);
      const n = ids.length;
      if (all) all.set(await this.head(X, n, this.w.headMixer), i * vocab);
      else if (i + n === tokens.length) last = await this.head(X.subarray((n - 1) * this.streamWidth), 1, this.w.headMixer);
    }
    return all ?? last;
  }

  /**
   * The MTP block's draft logits [n, vocab] (§8.1): row t pairs the trunk output at position
   * mtpLength + t with `next[t]`, the token at the following position, and drafts the one after.
   * `hidden` replaces the stored trunk outputs (fidelity checks feed golden ones).
   */
  async mtp(next: readonly number[], hidden?: Float32Array): Promise<Float32Array> {
    if (this.freed) throw new Error('mtp: this sequence has been freed');
    const m = this.w.mtp[0];
    if (!m) throw new Error('mtp: this checkpoint has no MTP block');
    const n = next.length, sw = this.streamWidth, D = this.c.dim;
    if (n === 0) throw new Error('mtp: no tokens');
    if (!hidden && n > this.pendingHidden.length) throw new Error(`mtp: ${n} rows asked, but only ${this.pendingHidden.length} trunk outputs are waiting`);
    const H = hidden ?? new Float32Array(n * sw);
    if (!hidden) for (let t = 0; t < n; t++) H.set(this.pendingHidden[t], t * sw);
    this.pendingHidden = this.pendingHidden.slice(n);

    const e = rmsnormRows(await this.embed(next), D, m.enorm, this.c.eps);
    const eProj = await this.lin.run(m.eProj, e, n, this.fp8In);
    const Y = rmsnormRows(H, D, m.hnorm, this.c.eps, new Float32Array(H.length));
    const hProj = await this.lin.run(m.hProj, Y, n * this.c.hcMult, this.fp8In);
    for (let t = 0; t < n; t++) {
      for (let j = 0; j < this.c.hcMult; j++) {
        const o = (t * this.c.hcMult + j) * D;
        for (let i = 0; i < D; i++) Y[o + i] = eProj[t * D + i] + hProj[o + i];
      }
    }
    const out = await this.block(m.block, this.mtpLayers[0], Y, next, this.mtpRows);
    this.mtpRows += n;
    return this.head(out, n, m.head);
  }

  /**
   * One DSpark draft round (V4-DSpark form, deepseek-v41.md §8.2 with the maths of §8.1) after the
   * last token in the state (position p = length − 1), whose next token is `anchor`: the block
   * [anchor, noise × (γ−1)] at positions p+1 … p+γ through the stages (V4 blocks attending their
   * ring of main_x keys ≤ p and every block row), the last stage's head mixer → h, logits =
   * head(RMSNorm(h)), then the Markov loop (`pick` draws each token from its biased row; argmax by
   * default) and the confidences proj·[h_k; e_k]. Changes no state. Written from the spec and a
   * public port's notes, not verified against the official DSpark-head code.
   */
  async dspark(anchor: number, pick: (logits: Float32Array, k: number) => number = argmax): Promise<DsparkDraft> {
    if (this.freed) throw new Error('dspark: this sequence has been freed');
    const c = this.c, d = c.dspark, S = this.w.dspark;
    if (!d || !S) throw new Error('dspark: this checkpoint has no DSpark draft stages (not the V4-DSpark form)');
    if (!(Number.isInteger(anchor) && anchor >= 0 && anchor < c.vocab)) throw new Error(`dspark: token id ${anchor} is outside the vocabulary (0 … ${c.vocab - 1})`);
    if (this.replay) await this.rebuild();
    if (this.length === 0) throw new Error('dspark: the sequence is empty (prefill first)');
    const gamma = d.blockSize, D = c.dim, hc = c.hcMult, start = this.length;
    const ids = [anchor, ...new Array<number>(gamma - 1).fill(d.noiseToken)];
    const e0 = await this.embed(ids);
    let X: Float32Array = new Float32Array(gamma * hc * D);
    for (let t = 0; t < gamma; t++) for (let j = 0; j < hc; j++) X.set(e0.subarray(t * D, (t + 1) * D), (t * hc + j) * D);
    for (let s = 0; s < S.stages.length; s++) X = await this.block(S.stages[s], this.stageLayers[s], X, ids, start, { last: start - 1 });
    const h = await this.mixHead(X, gamma, S.head);
    this.probe?.tap?.('dspark.hc_head_out', h);
    const logits = await this.lin.run(this.w.head, rmsnormRows(h, D, S.head.norm, c.eps, new Float32Array(h.length)), gamma);
    return markovDraft(this.lin, this.model.backend, S, anchor, logits, h, pick);
  }

  truncate(n: number): void {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.length)) throw new Error(`truncate: ${n} is not from 0 to the sequence's length ${this.length}`);
    if (n === this.length) return;
    // The window ring and compressor buffers cannot be rewound: rebuild from the kept tokens.
    this.tokens.length = n;
    this.length = n;
    this.replay = n;
    this.resetState();
    // The MTP block restarts after the kept tokens (its window is rebuilt from there on).
    this.mtpRows = n;
  }

  /**
   * The trunk's state (spec §9.2): per layer the window ring, the compressed entries so far, the
   * compressor buffers and the indexer keys and buffers (then each DSpark stage's ring, V4-DSpark
   * form), then the token ids. The MTP block's state is not saved: a restored sequence starts its MTP
   * rows at the restored length (as after truncate).
   */
  async saveState(): Promise<Uint8Array> {
    const be = this.model.backend, Dh = this.c.headDim, n = this.length;
    const parts: Float32Array[] = [];
    for (const S of [...this.layers, ...this.stageLayers]) {
      const ratio = S.ratio;
      parts.push(await be.download(be.view(this.kv.kv, S.ringRow(0) * Dh, [this.c.window, Dh])));
      const entries = ratio ? Math.floor(n / ratio) : 0;
      if (entries) parts.push(await be.download(be.view(this.kv.kv, S.entryRow(0) * Dh, [entries, Dh])));
      for (const cs of [S.compressor, S.indexCompressor]) if (cs) parts.push(cs.kv, cs.score);
      if (S.indexKeys && entries) parts.push(await be.download(be.view(S.indexKeys, 0, [entries, this.c.indexHeadDim])));
    }
    return packState(parts, this.tokens);
  }

  loadState(state: Uint8Array, length: number): void {
    if (this.length !== 0 || this.replay) throw new Error('loadState: the sequence is not empty');
    if (length > this.capacity) throw new Error(`loadState: ${length} tokens do not fit this sequence's capacity of ${this.capacity}`);
    const Dh = this.c.headDim, Di = this.c.indexHeadDim;
    let need = length;
    for (const S of [...this.layers, ...this.stageLayers]) {
      const entries = S.ratio ? Math.floor(length / S.ratio) : 0;
      need += (this.c.window + entries) * Dh + entries * (S.indexKeys ? Di : 0);
      for (const cs of [S.compressor, S.indexCompressor]) if (cs) need += 2 * cs.kv.length;
    }
    if (state.length !== 4 * need) throw new Error(`loadState: ${state.length} bytes are not the state of ${length} tokens of this model`);
    const f = new Float32Array(state.slice().buffer);
    let o = 0;
    const take = (n: number) => f.subarray(o, (o += n));
    for (const S of [...this.layers, ...this.stageLayers]) {
      const entries = S.ratio ? Math.floor(length / S.ratio) : 0;
      this.kv.write(S.ringRow(0), take(this.c.window * Dh));
      if (entries) this.kv.write(S.entryRow(0), take(entries * Dh));
      for (const cs of [S.compressor, S.indexCompressor]) {
        if (!cs) continue;
        cs.kv.set(take(cs.kv.length));
        cs.score.set(take(cs.score.length));
      }
      if (S.indexKeys && entries) this.model.backend.upload(this.model.backend.view(S.indexKeys, 0, [entries, Di]), take(entries * Di));
    }
    this.tokens.push(...new Int32Array(f.slice(o, o + length).buffer));
    this.length = length;
    this.mtpRows = length;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.lin.free();
    this.kv.free();
    this.attnQ.free();
    this.attnO.free();
    for (const b of Object.values(this.idx)) b.free();
    this.onFree();
  }

  private get streamWidth(): number { return this.c.hcMult * this.c.dim; }

  private resetState(): void {
    for (const l of [...this.layers, ...this.mtpLayers, ...this.stageLayers]) l.reset();
    this.pendingHidden = [];
    this.mtpRows = 0;
  }

  private async rebuild(): Promise<void> {
    const kept = this.tokens.splice(0, this.replay);
    this.replay = 0;
    this.length = 0;
    this.resetState();
    for (let i = 0; i < kept.length; i += CHUNK) await this.trunk(kept.slice(i, i + CHUNK));
    this.pendingHidden = [];
    this.mtpRows = this.length;
  }

  private embed(ids: readonly number[]): Promise<Float32Array> {
    return embedRows(this.model.backend, this.w.embed, ids);
  }

  /** Runs `ids` through every main block; returns the streams [n, Hc, D] leaving the last one. */
  private async trunk(ids: readonly number[]): Promise<Float32Array> {
    const n = ids.length, D = this.c.dim, hc = this.c.hcMult;
    const e = await this.embed(ids);
    this.probe?.tap?.('embed', e);
    let X: Float32Array = new Float32Array(n * hc * D);
    for (let t = 0; t < n; t++) for (let j = 0; j < hc; j++) X.set(e.subarray(t * D, (t + 1) * D), (t * hc + j) * D);
    const targets = this.c.dspark?.targetLayers ?? [], taps: Float32Array[] = [];
    for (let l = 0; l < this.w.blocks.length; l++) {
      X = await this.block(this.w.blocks[l], this.layers[l], X, ids, this.length);
      // V4-DSpark taps block outputs (§8.2; V4.1 taps inputs): the mean over the streams.
      if (targets.includes(l)) taps[targets.indexOf(l)] = streamMean(X, n, hc, D);
    }
    if (this.w.dspark) await this.seedStages(taps, n, this.length);
    if (this.w.mtp.length) for (let t = 0; t < n; t++) this.pendingHidden.push(X.slice(t * hc * D, (t + 1) * hc * D));
    this.tokens.push(...ids);
    this.length += n;
    return X;
  }

  // ---- block (§4) ------------------------------------------------------------------------------

  /** A V4 block; a DSpark stage (`draft`) attends its ring and the draft block's own keys, and routes with its own top-k. */
  private async block(B: BlockWeights, state: LayerState, X: Float32Array, ids: readonly number[], start: number, draft?: DraftQuery): Promise<Float32Array> {
    const n = ids.length, D = this.c.dim;
    X = this.probe?.blockInput?.(B.name) ?? X;
    const tap = (what: string, data: Float32Array | Int32Array) => this.probe?.tap?.(`${B.name}.${what}`, data);

    const a = await this.hcPre(X, n, B.hcAttn, 'hc_attn', tap);
    const attnOut = await this.attention(B, state, rmsnormRows(a.x, D, B.attnNorm, this.c.eps), n, start, tap, draft);
    tap('attn_out', attnOut);
    X = hcPost(attnOut, X, n, a.post, a.comb, this.c.hcMult, D);

    const f = await this.hcPre(X, n, B.hcFfn, 'hc_ffn', tap);
    const ffnOut = await moeForward(this.lin, draft ? this.stageMoe! : this.c, B.ffn, rmsnormRows(f.x, D, B.ffnNorm, this.c.eps), ids, this.fp8In, tap);
    tap('ffn_out', ffnOut);
    X = hcPost(ffnOut, X, n, f.post, f.comb, this.c.hcMult, D);
    tap('out', X);
    return X;
  }

  // ---- mHC (§5) --------------------------------------------------------------------------------

  /** hc_pre: per token, 24 mixing logits from the flattened streams → pre, post, Sinkhorn C; x = Σ pre_j X_j. */
  private async hcPre(X: Float32Array, n: number, W: HcWeights, name: string, tap: (w: string, d: Float32Array) => void) {
    const m = await hcMixes(this.lin, this.c, X, n, W);
    const x = collapseStreams(X, m.pre, n, this.c.hcMult, this.c.dim);
    tap(`${name}.y`, x);
    tap(`${name}.post`, m.post);
    tap(`${name}.comb`, m.comb);
    return { x, post: m.post, comb: m.comb };
  }

  /** The head mixer (§5.4): pre weights without Sinkhorn, final norm, logits. */
  private async head(X: Float32Array, n: number, M: HeadMixer): Promise<Float32Array> {
    const c = this.c, D = c.dim;
    const h = await this.mixHead(X, n, M);
    this.probe?.tap?.('head.hc_head_out', h.slice());
    rmsnormRows(h, D, M.norm, c.eps);
    this.probe?.tap?.('head.norm_out', h);
    return this.lin.run(this.w.head, h, n);
  }

  /** h [n, D] = Σ_j (sigmoid(scale·m_j/rms(X) + base_j) + eps)·X_j with m = fn·X (§5.4): before the final norm. */
  private async mixHead(X: Float32Array, n: number, M: HeadMixer): Promise<Float32Array> {
    const c = this.c, hc = c.hcMult, D = c.dim, sw = hc * D;
    const m = await this.lin.run(M.fn, X, n);
    const h = new Float32Array(n * D);
    for (let t = 0; t < n; t++) {
      let ss = 0;
      for (let i = t * sw; i < (t + 1) * sw; i++) ss += X[i] * X[i];
      const inv = 1 / Math.sqrt(ss / sw + c.eps);
      for (let j = 0; j < hc; j++) {
        const pre = sigmoid(m[t * hc + j] * inv * M.scale[0] + M.base[j]) + c.hcEps;
        for (let i = 0; i < D; i++) h[t * D + i] += pre * X[(t * hc + j) * D + i];
      }
    }
    return h;
  }

  // ---- attention (§6) --------------------------------------------------------------------------

  private async attention(B: BlockWeights, S: LayerState, x: Float32Array, n: number, start: number,
    tap: (w: string, d: Float32Array | Int32Array) => void, draft?: DraftQuery): Promise<Float32Array> {
    const c = this.c, A = B.attn, H = c.heads, Dh = c.headDim, R = c.ropeDim;
    const kq = this.q.kvQuant;

    // §6.2 per-token projections
    const qr = rmsnormRows(await this.lin.run(A.wqA, x, n, this.fp8In), c.qLoraRank, A.qNorm, c.eps);
    const q = rmsnormRows(await this.lin.run(A.wqB, qr, n, this.fp8In), Dh, null, c.eps);
    const kv = rmsnormRows(await this.lin.run(A.wkv, x, n, this.fp8In), Dh, A.kvNorm, c.eps);
    for (let t = 0; t < n; t++) {
      ropeTail(q, t * H * Dh, H, Dh, R, A.freqs, start + t, false);
      ropeTail(kv, t * Dh, 1, Dh, R, A.freqs, start + t, false);
      if (kq) qatFp8(kv.subarray(t * Dh, t * Dh + Dh - R), 64);
    }

    // Compressor and indexer inputs for the whole chunk (§6.4, §6.5).
    const comp = A.compressor && await this.compressorInputs(A.compressor, x, n, start);
    let idx: { q: Float32Array; w: Float32Array; comp: { a: Float32Array; g: Float32Array } } | undefined;
    if (A.indexer) {
      const Hi = c.indexHeads, Di = c.indexHeadDim;
      const qi = await this.lin.run(A.indexer.wqB, qr, n, this.fp8In);
      for (let t = 0; t < n; t++) {
        ropeTail(qi, t * Hi * Di, Hi, Di, R, A.freqs, start + t, false);
        for (let h = 0; h < Hi; h++) hadamard(qi, (t * Hi + h) * Di, Di);
      }
      if (kq) qatFp4(qi, 32);
      const w = await this.lin.run(A.indexer.weightsProj, x, n);
      const ws = 1 / Math.sqrt(Di) / Math.sqrt(Hi);
      for (let i = 0; i < w.length; i++) w[i] *= ws;
      idx = { q: qi, w, comp: await this.compressorInputs(A.indexer.compressor, x, n, start) };
    }

    // Per token in order: the compressors' new entries (§6.4) …
    const be = this.model.backend, Di = c.indexHeadDim;
    const entry = new Float32Array(Dh), ientry = new Float32Array(Di);
    for (let t = 0; t < n; t++) {
      const p = start + t;
      if (idx && S.indexCompressor) {
        const d2 = 2 * Di;
        const k = S.indexCompressor.push(p, idx.comp.a.subarray(t * d2, (t + 1) * d2), idx.comp.g.subarray(t * d2, (t + 1) * d2), ientry);
        if (k) be.upload(be.view(S.indexKeys!, Math.floor(p / A.ratio) * Di, [1, Di]), this.finishIndexKey(A, k, p));
      }
      if (comp && S.compressor) {
        const cw = (A.compressor!.overlap ? 2 : 1) * Dh;
        const k = S.compressor.push(p, comp.a.subarray(t * cw, (t + 1) * cw), comp.g.subarray(t * cw, (t + 1) * cw), entry);
        if (k) this.kv.write(S.entryRow(Math.floor(p / A.ratio)), this.finishKey(A, k, p));
      }
    }
    // … then the compressed entries each token sees (§6.3): the indexer's choice on CSA layers (an
    // entry is visible once its block is complete, so it exists by then), all of them on HCA layers.
    const visibleOf = Int32Array.from({ length: n }, (_, t) => A.ratio ? Math.floor((start + t + 1) / A.ratio) : 0);
    let seen: number[][];
    if (idx) {
      seen = await this.indexerSelect(S, idx.q, idx.w, visibleOf);
      const topk = new Int32Array(n * c.indexTopk).fill(-1);
      seen.forEach((chosen, t) => chosen.forEach((e, i) => { topk[t * c.indexTopk + i] = n + e; }));
      tap('indexer_topk', topk);
    } else {
      seen = Array.from(visibleOf, (visible) => Array.from({ length: visible }, (_, e) => e));
    }

    const o = draft ? await attendDraft(this.model.backend, c, this.kv.kv, (p) => S.ringRow(p), S.sink, this.attnQ, this.attnO, q, kv, draft.last)
      : await attendChunk(this.model.backend, this.c, this.kv.kv, this.kv.stage, (p) => S.ringRow(p), this.c.window,
      S.sink, this.attnQ, this.attnO, q, kv, seen.map((list) => list.map((e) => S.entryRow(e))), start);
    for (let t = 0; t < n; t++) ropeTail(o, t * H * Dh, H, Dh, R, A.freqs, start + t, true); // o_h ← RoPE⁻¹(o_h, p)

    return groupedOutput(this.lin, c, A, o, n, this.fp8In);
  }

  // ---- DSpark stages (V4-DSpark form, deepseek-v41.md §8.2) -------------------------------------

  /**
   * main_x = RMSNorm(main_proj · [taps]; main_norm) of the chunk's positions, and each stage's window
   * key of it — RMSNorm(wkv·main_x; kv_norm), RoPE at the position, Q8(·, 64) of the non-rotated
   * part as V4 window keys — into the stage's ring.
   */
  private async seedStages(taps: readonly Float32Array[], n: number, start: number): Promise<void> {
    const c = this.c, D = c.dim, Dh = c.headDim, R = c.ropeDim, S = this.w.dspark!, k = taps.length;
    const cat = new Float32Array(n * k * D);
    for (let t = 0; t < n; t++) taps.forEach((m, i) => cat.set(m.subarray(t * D, (t + 1) * D), (t * k + i) * D));
    const mainX = rmsnormRows(await this.lin.run(S.mainProj, cat, n, this.fp8In), D, S.mainNorm, c.eps);
    this.probe?.tap?.('dspark.main_x', mainX);
    for (let s = 0; s < S.stages.length; s++) {
      const A = S.stages[s].attn, L = this.stageLayers[s];
      const kv = rmsnormRows(await this.lin.run(A.wkv, mainX, n, this.fp8In), Dh, A.kvNorm, c.eps);
      for (let t = 0; t < n; t++) {
        ropeTail(kv, t * Dh, 1, Dh, R, A.freqs, start + t, false);
        if (this.q.kvQuant) qatFp8(kv.subarray(t * Dh, t * Dh + Dh - R), 64);
      }
      this.probe?.tap?.(`${S.stages[s].name}.ring_kv`, kv);
      for (let p = Math.max(start, start + n - c.window); p < start + n; p++) this.kv.write(L.ringRow(p), kv.subarray((p - start) * Dh, (p - start + 1) * Dh));
    }
  }

  /** The compressor's per-token values a = wkv·x and logits g = wgate·x + ape[p mod r]. */
  private async compressorInputs(C: CompressorWeights, x: Float32Array, n: number, start: number) {
    const a = await this.lin.run(C.wkv, x, n);
    const g = await this.lin.run(C.wgate, x, n);
    const cw = g.length / n;
    for (let t = 0; t < n; t++) {
      const ape = ((start + t) % C.ratio) * cw;
      for (let i = 0; i < cw; i++) g[t * cw + i] += C.ape[ape + i];
    }
    return { a, g };
  }

  /** A pooled attention entry → its key: norm, RoPE at its block's first position, FP8 of the non-rotated part. */
  private finishKey(A: AttentionWeights, k: Float32Array, p: number): Float32Array {
    const c = this.c, Dh = c.headDim;
    rmsnormRows(k, Dh, A.compressor!.norm, c.eps);
    ropeTail(k, 0, 1, Dh, c.ropeDim, A.freqs, p - (p % A.ratio), false);
    if (this.q.kvQuant) qatFp8(k.subarray(0, Dh - c.ropeDim), 64);
    return k;
  }

  /** A pooled indexer entry → its key: norm, RoPE, Hadamard, FP4. */
  private finishIndexKey(A: AttentionWeights, k: Float32Array, p: number): Float32Array {
    const c = this.c, Di = c.indexHeadDim;
    rmsnormRows(k, Di, A.indexer!.compressor.norm, c.eps);
    ropeTail(k, 0, 1, Di, c.ropeDim, A.freqs, p - (p % A.ratio), false);
    hadamard(k, 0, Di);
    if (this.q.kvQuant) qatFp4(k, 32);
    return k;
  }

  /**
   * §6.5 for every token of the chunk: the min(topk, visible) entries with the largest
   * I(c) = Σ_h w_h·relu(q_h·k_c), scored on the backend (indexerScores).
   */
  private async indexerSelect(S: LayerState, qi: Float32Array, w: Float32Array, visibleOf: Int32Array): Promise<number[][]> {
    const c = this.c, Hi = c.indexHeads, Di = c.indexHeadDim, be = this.model.backend, n = visibleOf.length;
    const all = (v: number) => Array.from({ length: v }, (_, i) => i);
    if (visibleOf[n - 1] <= c.indexTopk) return Array.from(visibleOf, all);
    const cols = visibleOf[n - 1], qT = this.idx.q.view([n, Hi * Di]), wT = this.idx.w.view([n, Hi]), sT = this.idx.scores.view([n, cols]);
    be.upload(qT, qi);
    be.upload(wT, w);
    be.indexerScores(qT, wT, S.indexKeys!, visibleOf, Hi, sT);
    const scores = await be.download(sT);
    return Array.from(visibleOf, (v, t) => v <= c.indexTopk ? all(v) : topIndices(scores.subarray(t * cols, t * cols + v), v, c.indexTopk));
  }
}

/** A DSpark draft block's attention: the stage ring's keys up to position `last`. */
interface DraftQuery {
  readonly last: number;
}

/** mean_j X_j per token: streams [n, hc, D] → [n, D]. */
function streamMean(X: Float32Array, n: number, hc: number, D: number): Float32Array {
  const m = new Float32Array(n * D);
  for (let t = 0; t < n; t++) for (let j = 0; j < hc; j++) for (let i = 0; i < D; i++) m[t * D + i] += X[(t * hc + j) * D + i] / hc;
  return m;
}

