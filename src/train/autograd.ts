/**
 * Reverse-mode automatic differentiation over flat typed arrays: a Tensor is a shape, its values and
 * (when it takes part in a gradient) a gradient of the same length; a Tape records, for every op
 * run on it, a closure that turns the output's gradient into gradients of the inputs, and replays
 * them in reverse. Ops live in ops-*.ts as plain functions `op(tape, …inputs, …settings)`.
 *
 * Storage is f32 for training; a tape (and the parameters) can be f64 instead, which the gradient
 * checks use so that central finite differences are accurate to ~1e-9. Inner sums are JavaScript
 * numbers, i.e. always accumulated in f64, and rounded once when stored.
 */

export type FloatArray = Float32Array | Float64Array;
export type Precision = 'f32' | 'f64';

export function allocFloats(precision: Precision, n: number): FloatArray {
  return precision === 'f64' ? new Float64Array(n) : new Float32Array(n);
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  /** Gradient of the loss with respect to `data`, allocated (zeros) on first use. */
  grad: FloatArray | null = null;

  constructor(readonly shape: readonly number[], readonly data: FloatArray, readonly requiresGrad: boolean) {
    if (data.length !== sizeOf(shape)) throw new Error(`tensor: shape [${shape.join(', ')}] needs ${sizeOf(shape)} values, got ${data.length}`);
  }

  get size(): number { return this.data.length; }

  /** The gradient array, created as zeros of this tensor's precision when absent. */
  gradient(): FloatArray {
    if (!this.grad) this.grad = this.data instanceof Float64Array ? new Float64Array(this.size) : new Float32Array(this.size);
    return this.grad;
  }

  zeroGrad(): void {
    this.grad?.fill(0);
  }
}

/** A trainable tensor (parameter): it keeps its gradient across tapes until zeroGrad(). */
export function parameter(shape: readonly number[], data: FloatArray, trainable = true): Tensor {
  return new Tensor(shape, data, trainable);
}

export class Tape {
  private readonly nodes: (() => void)[] = [];

  /**
   * `grad: false` records nothing (inference through the training graph): outputs never require
   * gradients, whatever their inputs.
   */
  constructor(readonly precision: Precision = 'f32', readonly grad = true) {}

  /** A new op output of `shape`, needing a gradient iff recording and any input needs one. */
  output(shape: readonly number[], ...inputs: readonly (Tensor | null | undefined)[]): Tensor {
    const needs = this.grad && inputs.some((t) => t?.requiresGrad);
    return new Tensor(shape, allocFloats(this.precision, sizeOf(shape)), needs);
  }

  /** A constant (no gradient) tensor of this tape's precision holding `values`. */
  constant(shape: readonly number[], values: ArrayLike<number>): Tensor {
    const t = new Tensor(shape, allocFloats(this.precision, sizeOf(shape)), false);
    t.data.set(values);
    return t;
  }

  /**
   * Records the backward step of an op with outputs `outs`: it runs during backward() only when
   * some output received a gradient.
   */
  record(outs: Tensor | readonly Tensor[], backward: () => void): void {
    const list = Array.isArray(outs) ? outs as readonly Tensor[] : [outs as Tensor];
    if (!list.some((t) => t.requiresGrad)) return;
    this.nodes.push(() => {
      if (list.some((t) => t.grad)) backward();
    });
  }

  /**
   * Back-propagates from `root`: its gradient is `seed` (default 1 for a scalar loss), and every
   * recorded op adds into its inputs' gradients, last op first. The tape is spent afterwards.
   */
  backward(root: Tensor, seed?: ArrayLike<number>): void {
    if (!seed && root.size !== 1) throw new Error(`backward: the root has ${root.size} values; give a seed gradient for non-scalar roots`);
    this.backwardFrom([[root, seed ?? [1]]]);
  }

  /** backward() from several outputs at once, each with its seed gradient. */
  backwardFrom(seeds: readonly (readonly [Tensor, ArrayLike<number>])[]): void {
    for (const [root, seed] of seeds) {
      if (!root.requiresGrad) throw new Error('backward: a root does not depend on any tensor that requires a gradient');
      if (seed.length !== root.size) throw new Error(`backward: seed has ${seed.length} values, root has ${root.size}`);
      const g = root.gradient();
      for (let i = 0; i < g.length; i++) g[i] += seed[i];
    }
    for (let i = this.nodes.length - 1; i >= 0; i--) this.nodes[i]();
    this.nodes.length = 0;
  }
}

/** Throws unless `t` has exactly `shape`. */
export function expectShape(op: string, what: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${op}: ${what} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
}

/** Throws unless `t` holds a whole number of rows of `width`; returns the row count. */
export function rowsOf(op: string, what: string, t: Tensor, width: number): number {
  if (!(width > 0) || t.size % width !== 0) throw new Error(`${op}: ${what} has ${t.size} values, not a whole number of rows of ${width}`);
  return t.size / width;
}
