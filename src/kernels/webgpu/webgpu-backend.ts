/**
 * The WebGPU backend: tensors in GPU buffers, every op a WGSL compute dispatch (kernel.ts), weights
 * uploaded once in their stored format and decoded in the shaders. Ops are recorded into one
 * command encoder and submitted together when a result is read back (download, argmax, topk) or
 * host data has to go in first: a dense model's decode step runs with one read-back (its logits);
 * DeepSeek-V4 still computes its indexer, compressor, mHC mixing and routing on the host, so its
 * steps read back between layers.
 */
import { type DType, formatName, rowBytes, type WeightFormat } from '../../tensor/dtype.js';
import {
  type AttentionOptions, type Backend, formatOf, intoView, type RopeOptions, type Tensor, type TensorScale, type TopK, type WeightSource,
  type WeightSpec,
} from '../backend.js';
import {
  attentionShape, binaryShape, copyShape, embeddingShape, f32Elems, f32Rows, matmulTokens, matrixShape, ropeShape, rowsRange, scaleShape,
  indexerScoresShape, sparseAttentionShape, tensorBytes, topkCount, viewRange,
} from '../op-checks.js';
import { requestWebGpuDevice, type WebGpuDeviceOptions } from './device.js';
import { generateProgram, type KernelSource, paramBytes, paramFields } from './kernel.js';
import { planMatrix } from './wgsl-matrix.js';
import * as ops from './wgsl-ops.js';
import { ATTENTION_MAX_HEAD_DIM, attentionKernel, sparseAttentionKernel } from './wgsl-attention.js';
import { INDEXER_TILE, indexerScoresKernel } from './wgsl-indexer.js';

export class GpuTensor implements Tensor {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly buffer: GPUBuffer,
    /** Byte offset of the first element in the buffer. */
    readonly offset: number,
    readonly byteLength: number,
    readonly owned: boolean,
    readonly scale?: TensorScale,
  ) {}
}

/** Uniform slots are 256 bytes apart (the WebGPU minimum dynamic-offset alignment). */
const SLOT = 256;
const SLOTS = 1024;
/** Workgroups per dispatch dimension (the WebGPU default limit). */
const MAX_GROUPS = 65535;

interface Pipeline { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly threads = 1;
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly uniforms: GPUBuffer;
  private readonly staged = new ArrayBuffer(SLOT * SLOTS);
  private slots = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Buffers to destroy once the commands using them are submitted. */
  private transient: GPUBuffer[] = [];
  /** RoPE cos/sin tables by frequency table, then by (width, direction, positions): see ropeTable. */
  private readonly ropeTables = new WeakMap<Float32Array, Map<string, Float32Array>>();
  /** Device errors (validation, out of memory) seen since the last read-back. */
  private errors: string[] = [];

  private constructor(readonly device: GPUDevice, readonly adapterName: string) {
    this.uniforms = device.createBuffer({ size: SLOT * SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.onuncapturederror = (e) => { this.errors.push(e.error.message); };
  }

  static async create(opts: WebGpuDeviceOptions = {}): Promise<WebGpuBackend> {
    const { device, adapterName } = await requestWebGpuDevice(opts);
    return new WebGpuBackend(device, adapterName);
  }

  // ---- memory ----------------------------------------------------------------------------------

  t(x: Tensor, what = 'tensor'): GpuTensor {
    if (!(x instanceof GpuTensor)) throw new Error(`${what} is not a WebGPU backend tensor`);
    return x;
  }

  private newBuffer(bytes: number, what: string, mapped = false): GPUBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const limits = this.device.limits;
    if (size > limits.maxStorageBufferBindingSize || size > limits.maxBufferSize) {
      throw new Error(`${what}: ${bytes} bytes is more than this GPU binds in one buffer (${Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize)} bytes)`);
    }
    return this.device.createBuffer({
      size, mappedAtCreation: mapped, label: what,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  private allocRaw(dtype: DType, shape: readonly number[], what: string, scale?: TensorScale, mapped = false): GpuTensor {
    const bytes = tensorBytes(dtype, shape, what);
    return new GpuTensor(dtype, [...shape], this.newBuffer(bytes, what, mapped), 0, bytes, true, scale);
  }

  alloc(dtype: DType, shape: readonly number[], what = `${dtype} [${shape.join(', ')}]`): Tensor {
    return this.allocRaw(dtype, shape, what); // WebGPU buffers start zeroed
  }

  allocWeight(format: WeightFormat, shape: readonly [number, number], what = `${formatName(format)} [${shape.join(', ')}]`): Tensor {
    return this.allocWeightRaw(format, shape, what, false);
  }

  private allocWeightRaw(format: WeightFormat, shape: readonly [number, number], what: string, mapped: boolean): GpuTensor {
    const [rows, cols] = shape;
    let scale: TensorScale | undefined;
    if (format.scale) {
      const st = this.allocRaw(format.scale.dtype, scaleShape(format, rows, cols), `${what} scales`, undefined, mapped);
      scale = { tensor: st, rows: format.scale.rows, cols: format.scale.cols };
    }
    return this.allocRaw(format.dtype, shape, what, scale, mapped);
  }

  free(x: Tensor): void {
    const t = this.t(x);
    if (!t.owned) throw new Error('free: this tensor is a view; free the tensor it views');
    this.flush(); // commands already recorded may still use it
    t.buffer.destroy();
    if (t.scale) this.t(t.scale.tensor).buffer.destroy();
  }

  view(x: Tensor, offset: number, shape: readonly number[]): Tensor {
    const t = this.t(x);
    const { start, bytes } = viewRange(t, t.byteLength, offset, shape);
    return new GpuTensor(t.dtype, [...shape], t.buffer, t.offset + start, bytes, false);
  }

  rows(x: Tensor, row0: number, row1: number): Tensor {
    const t = this.t(x);
    const { rows, scale } = rowsRange(t, row0, row1);
    const st = scale && this.t(t.scale!.tensor);
    const sv = st && { ...t.scale!, tensor: new GpuTensor(st.dtype, scale.shape, st.buffer, st.offset + scale.start, scale.bytes, false) };
    return new GpuTensor(t.dtype, rows.shape, t.buffer, t.offset + rows.start, rows.bytes, false, sv);
  }

  upload(x: Tensor, data: ArrayBufferView): void {
    const t = this.t(x);
    if (data.byteLength !== t.byteLength) {
      throw new Error(`upload: ${data.byteLength} bytes for a ${t.dtype} [${t.shape.join(', ')}] tensor of ${t.byteLength} bytes`);
    }
    // (a SharedArrayBuffer view — CPU backend memory — is fine for writeBuffer too)
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength) as Uint8Array<ArrayBuffer>;
    if (t.offset % 4 !== 0) throw new Error(`upload: a view starting at byte ${t.offset} (not a multiple of 4) cannot be written from the host`);
    this.flush(); // queue writes overtake recorded commands: those must go first
    const whole = bytes.byteLength & ~3;
    if (whole) this.device.queue.writeBuffer(t.buffer, t.offset, bytes, 0, whole);
    if (whole < bytes.byteLength) {
      // The last 1–3 bytes: only an owned tensor's padding follows them.
      if (!t.owned) throw new Error(`upload: a view of ${t.byteLength} bytes (not a multiple of 4) cannot be written from the host`);
      const tail = new Uint8Array(4);
      tail.set(bytes.subarray(whole));
      this.device.queue.writeBuffer(t.buffer, t.offset + whole, tail);
    }
  }

  async downloadBytes(x: Tensor): Promise<Uint8Array> {
    const t = this.t(x);
    const start = t.offset & ~3, end = Math.ceil((t.offset + t.byteLength) / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, end - start), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(t.buffer, start, staging, 0, end - start);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Uint8Array(staging.getMappedRange()).slice(t.offset - start, t.offset - start + t.byteLength);
    staging.unmap();
    staging.destroy();
    this.checkErrors();
    return out;
  }

  async download(x: Tensor, into?: Float32Array): Promise<Float32Array> {
    const t = this.t(x);
    if (t.dtype !== 'f32') throw new Error(`expected an f32 tensor, got ${t.dtype}`);
    const b = await this.downloadBytes(t);
    const v = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    if (!into) return v;
    const out = intoView(into, v.length);
    out.set(v);
    return out;
  }

  async load(src: WeightSource, name: string, dtype: DType, shape: readonly number[]): Promise<Tensor> {
    const t = this.allocRaw(dtype, shape, name, undefined, true);
    await this.fill(src, name, t);
    return t;
  }

  async loadWeight(src: WeightSource, spec: WeightSpec): Promise<Tensor> {
    if (spec.format.scale && !spec.scaleName) throw new Error(`${spec.name}: format ${formatName(spec.format)} needs scaleName`);
    const t = this.allocWeightRaw(spec.format, spec.shape, spec.name, true);
    await this.fill(src, spec.name, t);
    if (t.scale) await this.fill(src, spec.scaleName!, this.t(t.scale.tensor));
    return t;
  }

  /** Reads a tensor's bytes straight into its buffer, mapped at creation (no host copy). */
  private async fill(src: WeightSource, name: string, t: GpuTensor): Promise<void> {
    try {
      const got = await src.read(name, new Uint8Array(t.buffer.getMappedRange(), 0, t.byteLength));
      if (got instanceof Uint8Array && got.length !== t.byteLength) {
        throw new Error(`${name}: the source holds ${got.length} bytes, but ${t.dtype} [${t.shape.join(', ')}] is ${t.byteLength}`);
      }
      t.buffer.unmap();
    } catch (err) {
      t.buffer.destroy();
      if (t.scale) this.t(t.scale.tensor).buffer.destroy();
      throw err;
    }
  }

  // ---- dispatch --------------------------------------------------------------------------------

  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Submits what was recorded (with the parameters staged for it). */
  private flush(): void {
    this.endPass();
    if (!this.encoder) return;
    if (this.slots) this.device.queue.writeBuffer(this.uniforms, 0, new Uint8Array(this.staged, 0, this.slots * SLOT));
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.slots = 0;
    for (const b of this.transient) b.destroy();
    this.transient = [];
  }

  private checkErrors(): void {
    if (!this.errors.length) return;
    const e = this.errors;
    this.errors = [];
    throw new Error(`WebGPU: ${e.join('; ')}`);
  }

  private pipeline(k: KernelSource, physical: number[], slots: number): Pipeline {
    const key = `${k.name}|${physical.join(',')}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const writable = new Array<boolean>(slots).fill(false);
      k.buffers.forEach((b, i) => { if (b.write) writable[physical[i]] = true; });
      const layout = this.device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: paramBytes(k) } },
          ...writable.map((w, s) => ({ binding: s + 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: w ? 'storage' as const : 'read-only-storage' as const } })),
        ],
      });
      const module = this.device.createShaderModule({ code: generateProgram(k, physical), label: k.name });
      const pipeline = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
        label: k.name,
      });
      p = { pipeline, layout };
      this.pipelines.set(key, p);
    }
    return p;
  }

  /**
   * Records kernel `k` over `workgroups` workgroups: `bufs` gives the tensor of each logical buffer
   * (by name), `params` the value of each parameter.
   */
  dispatch(k: KernelSource, bufs: Record<string, GpuTensor>, params: Record<string, number>, workgroups: number): void {
    if (workgroups <= 0) return;
    if (this.slots === SLOTS) this.flush();
    // One binding per distinct buffer.
    const physicalBuffers: GPUBuffer[] = [];
    const physical = k.buffers.map((b) => {
      const t = bufs[b.name];
      if (!t) throw new Error(`kernel ${k.name}: no tensor for buffer ${b.name}`);
      let i = physicalBuffers.indexOf(t.buffer);
      if (i < 0) i = physicalBuffers.push(t.buffer) - 1;
      return i;
    });
    const { pipeline, layout } = this.pipeline(k, physical, physicalBuffers.length);
    const slot = this.slots++;
    const view = new DataView(this.staged, slot * SLOT, SLOT);
    paramFields(k).forEach((f, i) => {
      const v = f.name.endsWith('_o') && bufs[f.name.slice(0, -2)] ? bufs[f.name.slice(0, -2)].offset : params[f.name];
      if (v === undefined || Number.isNaN(v)) throw new Error(`kernel ${k.name}: no value for parameter ${f.name}`);
      if (f.type === 'f32') view.setFloat32(4 * i, v, true);
      else if (f.type === 'i32') view.setInt32(4 * i, v, true);
      else view.setUint32(4 * i, v, true);
    });
    const group = this.device.createBindGroup({
      layout,
      entries: [
        { binding: 0, resource: { buffer: this.uniforms, offset: 0, size: paramBytes(k) } },
        ...physicalBuffers.map((buffer, s) => ({ binding: s + 1, resource: { buffer } })),
      ],
    });
    this.pass ??= this.commandEncoder().beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, group, [slot * SLOT]);
    const x = Math.min(workgroups, MAX_GROUPS);
    this.pass.dispatchWorkgroups(x, Math.ceil(workgroups / x));
  }

  /** A buffer holding `data`, destroyed after the next submit. */
  private hostData(data: Int32Array | Float32Array | Uint32Array, what: string): GpuTensor {
    const bytes = Math.max(4, data.byteLength);
    const buffer = this.newBuffer(bytes, what, true);
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    this.transient.push(buffer);
    return new GpuTensor(data instanceof Float32Array ? 'f32' : 'i32', [data.length], buffer, 0, data.byteLength, false);
  }

  // ---- matrix ops ------------------------------------------------------------------------------

  private matrix(op: 'matvec' | 'matmul', wt: Tensor, xt: Tensor, yt: Tensor, n: number): void {
    const w = this.t(wt, `${op}: w`);
    const { rows, k } = matrixShape(op, w);
    const plan = planMatrix(formatOf(w), rows, k, n);
    const bufs: Record<string, GpuTensor> = { w, x: this.t(xt, `${op}: x`), y: this.t(yt, `${op}: y`) };
    if (w.scale) bufs.s = this.t(w.scale.tensor);
    this.dispatch(plan.kernel, bufs, plan.params, plan.workgroups);
  }

  matvec(wt: Tensor, xt: Tensor, yt: Tensor): void {
    const { rows, k } = matrixShape('matvec', wt);
    f32Elems('matvec: x', xt, k);
    f32Elems('matvec: y', yt, rows);
    this.matrix('matvec', wt, xt, yt, 1);
  }

  matmul(wt: Tensor, xt: Tensor, yt: Tensor): void {
    const n = matmulTokens(matrixShape('matmul', wt), xt, yt);
    this.matrix('matmul', wt, xt, yt, n);
  }

  // ---- row ops ---------------------------------------------------------------------------------

  rmsnorm(xt: Tensor, wt: Tensor | null, yt: Tensor, eps: number): void {
    const x = this.t(xt, 'rmsnorm: x'), { n, d } = f32Rows('rmsnorm: x', x);
    const y = this.t(yt, 'rmsnorm: y');
    f32Elems('rmsnorm: y', y, n * d);
    if (wt) f32Elems('rmsnorm: weight', wt, d);
    const w = wt ? this.t(wt, 'rmsnorm: weight') : x; // weightless: the flag says so, x stands in
    this.dispatch(ops.RMSNORM, { x, w, y }, { d, eps, weighted: wt ? 1 : 0 }, n);
  }

  rope(xt: Tensor, freqs: Float32Array, positions: ArrayLike<number>, o: RopeOptions): void {
    const x = this.t(xt, 'rope: x');
    const { n, ropeDim } = ropeShape(x, freqs, positions, o);
    const half = ropeDim / 2, pairs = o.heads * half;
    const cs = this.ropeTable(freqs, half, positions, n, o.inverse ?? false);
    this.elementwise(ops.ROPE, { x, cs: this.hostData(cs, 'rope cos/sin') }, {
      heads: o.heads, headDim: o.headDim, ropeDim, neox: o.layout === 'neox' ? 1 : 0, pairs,
    }, n * pairs);
  }

  /**
   * cos and sin [n, half, 2] of θ = f32(p · freq) in f64 on the host, as the CPU twin computes
   * them — kept for the last positions asked, since every layer of a step asks for the same ones.
   */
  private ropeTable(freqs: Float32Array, half: number, positions: ArrayLike<number>, n: number, inverse: boolean): Float32Array {
    let tables = this.ropeTables.get(freqs);
    if (!tables) this.ropeTables.set(freqs, (tables = new Map()));
    const key = `${half}:${inverse ? 1 : 0}:${Array.prototype.join.call(positions, ',')}`;
    let cs = tables.get(key);
    if (cs) return cs;
    cs = new Float32Array(2 * n * half);
    for (let t = 0; t < n; t++) {
      for (let i = 0; i < half; i++) {
        const theta = Math.fround(positions[t] * freqs[i]);
        cs[2 * (t * half + i)] = Math.cos(theta);
        cs[2 * (t * half + i) + 1] = inverse ? -Math.sin(theta) : Math.sin(theta);
      }
    }
    if (tables.size >= 8) tables.delete(tables.keys().next().value!); // oldest first
    tables.set(key, cs);
    return cs;
  }

  softmax(xt: Tensor, yt: Tensor, scale = 1): void {
    const x = this.t(xt, 'softmax: x'), { n, d } = f32Rows('softmax: x', x);
    const y = this.t(yt, 'softmax: y');
    f32Elems('softmax: y', y, n * d);
    this.dispatch(ops.SOFTMAX, { x, y }, { d, scale }, n);
  }

  silu(xt: Tensor, yt: Tensor): void {
    const x = this.t(xt, 'silu: x'), { n, d } = f32Rows('silu: x', x);
    const y = this.t(yt, 'silu: y');
    f32Elems('silu: y', y, n * d);
    this.elementwise(ops.SILU, { x, y }, {}, n * d);
  }

  swiglu(gt: Tensor, ut: Tensor, yt: Tensor, limit = 0): void {
    const g = this.t(gt, 'swiglu: g'), { n, d } = f32Rows('swiglu: g', g);
    const u = this.t(ut, 'swiglu: u'), y = this.t(yt, 'swiglu: y');
    f32Elems('swiglu: u', u, n * d);
    f32Elems('swiglu: y', y, n * d);
    this.elementwise(ops.SWIGLU, { g, u, y }, { limit }, n * d);
  }

  add(a: Tensor, b: Tensor, y: Tensor): void { this.binary(ops.ADD, 'add', a, b, y); }
  mul(a: Tensor, b: Tensor, y: Tensor): void { this.binary(ops.MUL, 'mul', a, b, y); }

  private binary(k: KernelSource, op: string, at: Tensor, bt: Tensor, yt: Tensor): void {
    const a = this.t(at, `${op}: a`), b = this.t(bt, `${op}: b`), y = this.t(yt, `${op}: y`);
    const { n, d, bstep } = binaryShape(op, a, b, y);
    this.elementwise(k, { a, b, y }, { d, bstep }, n * d);
  }

  /** A kernel with one invocation per element (parameter `count`). */
  private elementwise(k: KernelSource, bufs: Record<string, GpuTensor>, params: Record<string, number>, count: number): void {
    this.dispatch(k, bufs, { ...params, count }, Math.ceil(count / k.workgroupSize));
  }

  embedding(table: Tensor, ids: ArrayLike<number>, yt: Tensor): void {
    const tb = this.t(table, 'embedding: table'), y = this.t(yt, 'embedding: y');
    const { d } = embeddingShape(tb, ids, y);
    const idt = this.hostData(Int32Array.from(ids), 'embedding ids');
    this.dispatch(ops.embeddingKernel(tb.dtype), { table: tb, ids: idt, y }, { d, rowBytes: rowBytes(tb.dtype, d) }, ids.length);
  }

  copy(xt: Tensor, yt: Tensor): void {
    const x = this.t(xt, 'copy: x'), y = this.t(yt, 'copy: y');
    const { n, d } = copyShape(x, y);
    if (y.dtype === 'f32') this.elementwise(ops.COPY_F32, { x, y }, {}, n * d);
    else {
      // f16 pairs: each invocation writes whole words, so no two share one (the view may start mid-word).
      const lead = (y.offset / 2) % 2; // 1 when the first half sits in the high half of its word
      this.elementwise(ops.COPY_F16, { x, y }, { total: n * d, lead }, Math.ceil((n * d + lead) / 2));
    }
  }

  attention(qt: Tensor, kt: Tensor, vt: Tensor, outt: Tensor, o: AttentionOptions): void {
    const q = this.t(qt, 'attention: q'), k = this.t(kt, 'attention: kCache'), v = this.t(vt, 'attention: vCache');
    const out = this.t(outt, 'attention: out');
    const { n, window } = attentionShape(q, k, v, out, o);
    if (o.headDim > ATTENTION_MAX_HEAD_DIM) throw new Error(`attention: headDim ${o.headDim} is more than the WebGPU kernel's ${ATTENTION_MAX_HEAD_DIM}`);
    const kernel = attentionKernel(k.dtype as 'f32' | 'f16');
    this.dispatch(kernel, { q, k, v, out }, {
      heads: o.heads, kvHeads: o.kvHeads, headDim: o.headDim, start: o.start, window, scale: o.scale,
    }, n * o.heads);
  }

  sparseAttention(qt: Tensor, kvt: Tensor, rows: Int32Array, count: number, sinkt: Tensor, outt: Tensor, scale: number): void {
    const kv = this.t(kvt, 'sparseAttention: kv'), sink = this.t(sinkt, 'sparseAttention: sink');
    const q = this.t(qt, 'sparseAttention: q'), out = this.t(outt, 'sparseAttention: out');
    const { n, heads, d } = sparseAttentionShape(q, kv, rows, count, sink, out);
    if (d > ATTENTION_MAX_HEAD_DIM) throw new Error(`sparseAttention: d ${d} is more than the WebGPU kernel's ${ATTENTION_MAX_HEAD_DIM}`);
    const r = this.hostData(rows, 'sparse attention rows');
    this.dispatch(sparseAttentionKernel(), { q, kv, rows: r, sink, out }, { count, heads, d, scale }, n * heads);
  }

  indexerScores(qt: Tensor, wt: Tensor, keyst: Tensor, visible: Int32Array, heads: number, outt: Tensor): void {
    const q = this.t(qt, 'indexerScores: q'), w = this.t(wt, 'indexerScores: w');
    const keys = this.t(keyst, 'indexerScores: keys'), out = this.t(outt, 'indexerScores: out');
    const { n, d, cols } = indexerScoresShape(q, w, keys, visible, heads, out);
    const tiles = Math.ceil(cols / INDEXER_TILE);
    const v = this.hostData(visible, 'indexer visible counts');
    this.dispatch(indexerScoresKernel(), { q, w, keys, visible: v, out }, { heads, d, cols, tiles }, n * tiles);
  }

  async argmax(xt: Tensor): Promise<Int32Array> {
    const x = this.t(xt, 'argmax: x'), { n, d } = f32Rows('argmax: x', x);
    if (d === 0) throw new Error('argmax: rows are empty');
    const out = this.allocRaw('i32', [n], 'argmax result');
    try {
      this.dispatch(ops.ARGMAX, { x, out }, { d }, n);
      const b = await this.downloadBytes(out);
      return new Int32Array(b.buffer, b.byteOffset, n);
    } finally {
      out.buffer.destroy();
    }
  }

  async topk(xt: Tensor, k: number): Promise<TopK> {
    const x = this.t(xt, 'topk: x'), { n, d } = f32Rows('topk: x', x);
    topkCount(k, d);
    // Read back and select on the host: topk serves sampling, which reads the candidates anyway.
    const v = await this.download(x);
    const values = new Float32Array(n * k), indices = new Int32Array(n * k);
    for (let r = 0; r < n; r++) topkRow(v.subarray(r * d, (r + 1) * d), k, values.subarray(r * k), indices.subarray(r * k));
    return { values, indices };
  }

  async close(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.device.destroy();
  }
}

/** The k largest of row (NaN skipped, earlier index first on ties), padded with −∞ / −1. */
function topkRow(row: Float32Array, k: number, values: Float32Array, indices: Int32Array): void {
  if (k > 64) {
    const order = Array.from(row.keys()).filter((j) => !Number.isNaN(row[j])).sort((a, b) => row[b] - row[a] || a - b);
    for (let i = 0; i < k; i++) { values[i] = i < order.length ? row[order[i]] : -Infinity; indices[i] = i < order.length ? order[i] : -1; }
    return;
  }
  // A sorted run of the best k so far: rows are long and k small (sampling candidates).
  let len = 0;
  for (let j = 0; j < row.length; j++) {
    const v = row[j];
    if (Number.isNaN(v) || (len === k && !(v > values[k - 1]))) continue;
    let i = Math.min(len, k - 1);
    while (i > 0 && values[i - 1] < v) { values[i] = values[i - 1]; indices[i] = indices[i - 1]; i--; }
    values[i] = v;
    indices[i] = j;
    if (len < k) len++;
  }
  values.fill(-Infinity, len, k);
  indices.fill(-1, len, k);
}
