/**
 * Training's all-f32 attention ops (src/train/ops-attention.ts sparseAttention and indexerScores)
 * on the WASM SIMD kernels of wasm/train_attention.ts. As in train-gemm.ts, each call copies its
 * operands into a kernel memory of its own and the results back: O(n·H·Dh + T·Dh) copying against
 * O(n·H·count·Dh) work. Single-threaded (the backwards scatter into table rows shared by many
 * tokens); one instance per process, made on first use.
 */
import { WasmHeap } from './heap.js';
import { Slot } from './train-gemm.js';
import { kernelImports, kernelModule } from './wasm-module.js';

type Kernel = (...a: number[]) => void;

/** One sparse-attention call: n queries × `heads` heads of width d over `count` candidates each in a T-row table. */
export interface SparseAttentionShape {
  readonly n: number;
  readonly heads: number;
  readonly d: number;
  readonly T: number;
  readonly count: number;
  readonly scale: number;
}

/** One indexer-scores call: n tokens × `heads` heads of width d against E keys. */
export interface IndexerShape {
  readonly n: number;
  readonly heads: number;
  readonly d: number;
  readonly E: number;
}

/** Gradients to add into, in the inputs' order (null: that input needs none). */
export type Grads = readonly [Float32Array | null, Float32Array | null, Float32Array | null];

type Operand = Float32Array | Int32Array;

export class F32Attention {
  private static instance: F32Attention | undefined;
  private readonly heap: WasmHeap;
  private readonly kernels: Record<'sparseFwd' | 'sparseBwd' | 'indexerFwd' | 'indexerBwd', Kernel>;
  private readonly slots: Slot[] = [];

  private constructor() {
    // The module's static data ends at __heap_base: ask a throwaway instance where that is.
    const probe = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    this.heap = new WasmHeap((new WebAssembly.Instance(kernelModule(), kernelImports(probe)).exports.heap_base as () => number)());
    const ex = new WebAssembly.Instance(kernelModule(), kernelImports(this.heap.memory)).exports;
    this.kernels = {
      sparseFwd: ex.train_sparse_attn_fwd_f32 as Kernel, sparseBwd: ex.train_sparse_attn_bwd_f32 as Kernel,
      indexerFwd: ex.train_indexer_fwd_f32 as Kernel, indexerBwd: ex.train_indexer_bwd_f32 as Kernel,
    };
  }

  /** The process's instance. */
  static get(): F32Attention {
    F32Attention.instance ??= new F32Attention();
    return F32Attention.instance;
  }

  /** Throws unless every array has its length (null arrays are absent gradients). */
  private static check(what: string, shape: object, arrays: [string, ArrayLike<number> | null, number][]): void {
    for (const [name, a, len] of arrays) {
      if (a && a.length !== len) throw new Error(`F32Attention.${what}: ${name} has ${a.length} values, want ${len} (${JSON.stringify(shape)})`);
    }
  }

  /** Slot `i`'s offset, grown to `n` values. */
  private slot(i: number, n: number): number {
    while (this.slots.length <= i) this.slots.push(new Slot(this.heap, `training attention operand ${this.slots.length}`));
    return this.slots[i].fit(n);
  }

  /** Copies `src` into slot `i` (null: none, offset 0 — the kernels skip that gradient); returns its offset. */
  private put(i: number, src: Operand | null): number {
    if (!src) return 0;
    const p = this.slot(i, src.length);
    if (src instanceof Int32Array) new Int32Array(this.heap.buffer, p, src.length).set(src);
    else new Float32Array(this.heap.buffer, p, src.length).set(src);
    return p;
  }

  /** Copies the kernel memory at `p` into `dst` (nothing for null). */
  private take(p: number, dst: Float32Array | null): void {
    if (dst) dst.set(new Float32Array(this.heap.buffer, p, dst.length));
  }

  /**
   * out[t·H + h] = Σ_c p_c·table[rows[t·count + c]] and prob [n·H, count + 1] (the sink's last):
   * q [n, H·d], table [T, d], rows [n, count] (−1 = padding; the rest < T, checked by the caller),
   * sink [H] → out [n, H·d], prob (both overwritten).
   */
  sparseForward(s: SparseAttentionShape, q: Float32Array, table: Float32Array, rows: Int32Array, sink: Float32Array, out: Float32Array, prob: Float32Array): void {
    const R = s.n * s.heads;
    F32Attention.check('sparseForward', s, [['q', q, R * s.d], ['table', table, s.T * s.d], ['rows', rows, s.n * s.count], ['sink', sink, s.heads],
      ['out', out, R * s.d], ['prob', prob, R * (s.count + 1)]]);
    const po = this.slot(4, out.length), pp = this.slot(5, prob.length);
    this.kernels.sparseFwd(this.put(0, q), this.put(1, table), this.put(2, rows), s.count, this.put(3, sink), po, pp, s.heads, s.d, s.scale, 0, R);
    this.take(po, out);
    this.take(pp, prob);
  }

  /** Adds the gradients of q, table and sink (`grads`), given sparseForward()'s `out`, `prob` and g = dL/dout. */
  sparseBackward(s: SparseAttentionShape, g: Float32Array, out: Float32Array, prob: Float32Array, q: Float32Array, table: Float32Array,
    rows: Int32Array, grads: Grads): void {
    const R = s.n * s.heads, [dq, dtable, dsink] = grads;
    F32Attention.check('sparseBackward', s, [['g', g, R * s.d], ['out', out, R * s.d], ['prob', prob, R * (s.count + 1)], ['q', q, R * s.d],
      ['table', table, s.T * s.d], ['rows', rows, s.n * s.count], ['dq', dq, R * s.d], ['dtable', dtable, s.T * s.d], ['dsink', dsink, s.heads]]);
    const pdq = this.put(7, dq), pdt = this.put(8, dtable), pds = this.put(9, dsink);
    this.kernels.sparseBwd(this.put(0, g), this.put(1, out), this.put(2, prob), this.put(3, q), this.put(4, table), this.put(5, rows), s.count,
      pdq, pdt, pds, s.heads, s.d, s.scale, 0, R);
    this.take(pdq, dq);
    this.take(pdt, dtable);
    this.take(pds, dsink);
  }

  /**
   * I[t, c] = Σ_h w[t, h]·relu(q[t, h]·keys[c]) for c < visible[t] (each ≤ E, checked by the
   * caller), 0 past it: q [n, H·d], keys [E, d], w [n, H] → out [n, E], dots [n, H, E] (both overwritten).
   */
  indexerForward(s: IndexerShape, q: Float32Array, keys: Float32Array, w: Float32Array, visible: Int32Array, out: Float32Array, dots: Float32Array): void {
    F32Attention.check('indexerForward', s, [['q', q, s.n * s.heads * s.d], ['keys', keys, s.E * s.d], ['w', w, s.n * s.heads], ['visible', visible, s.n],
      ['out', out, s.n * s.E], ['dots', dots, s.n * s.heads * s.E]]);
    const po = this.slot(4, out.length), pd = this.slot(5, dots.length);
    this.kernels.indexerFwd(this.put(0, q), this.put(1, keys), this.put(2, w), this.put(3, visible), po, pd, s.E, s.heads, s.d, 0, s.n);
    this.take(po, out);
    this.take(pd, dots);
  }

  /** Adds the gradients of q, keys and w (`grads`), given indexerForward()'s `dots` and g = dL/dout. */
  indexerBackward(s: IndexerShape, g: Float32Array, dots: Float32Array, q: Float32Array, keys: Float32Array, w: Float32Array, visible: Int32Array,
    grads: Grads): void {
    const [dq, dkeys, dw] = grads;
    F32Attention.check('indexerBackward', s, [['g', g, s.n * s.E], ['dots', dots, s.n * s.heads * s.E], ['q', q, s.n * s.heads * s.d],
      ['keys', keys, s.E * s.d], ['w', w, s.n * s.heads], ['visible', visible, s.n], ['dq', dq, s.n * s.heads * s.d], ['dkeys', dkeys, s.E * s.d],
      ['dw', dw, s.n * s.heads]]);
    const pdq = this.put(7, dq), pdk = this.put(8, dkeys), pdw = this.put(9, dw);
    this.kernels.indexerBwd(this.put(0, g), this.put(1, dots), this.put(2, q), this.put(3, keys), this.put(4, w), this.put(5, visible),
      pdq, pdk, pdw, s.E, s.heads, s.d, 0, s.n);
    this.take(pdq, dq);
    this.take(pdk, dkeys);
    this.take(pdw, dw);
  }
}
