// Training speed on the 128-wide toy V4 (test/train/toy-v4.ts RUNNABLE_MODEL): forward+backward
// tokens per second and one optimiser update. Run after the build:
//   node scripts/bench-train.mjs [seqLen] [threads of the f32 products, default 1]
import { v4ConfigFromHF } from '../dist/src/models/deepseek-v4-config.js';
import { F32Gemm } from '../dist/src/kernels/cpu/train-gemm.js';
import { Tape } from '../dist/src/train/autograd.js';
import { accumulateRows, matmulXWt } from '../dist/src/train/matmul.js';
import { newtonSchulz, Optimizer } from '../dist/src/train/optim.js';
import { V4TrainModel } from '../dist/src/train/v4-train-model.js';
import { initV4Params } from '../dist/src/train/v4-train-params.js';
import { progressions, RUNNABLE_MODEL } from '../dist/test/train/toy-v4.js';

const len = Number(process.argv[2] ?? 64);
await F32Gemm.start(Number(process.argv[3] ?? 1));
const params = initV4Params(v4ConfigFromHF(RUNNABLE_MODEL, 'RUNNABLE_MODEL'), 1);
const model = new V4TrainModel(params);
const seqs = progressions(4, len, 3);
const opt = new Optimizer(params.tensors, { lr: 1e-3, totalSteps: 10 });
for (let round = 0; round < 4; round++) {
  const t0 = performance.now();
  let tokens = 0;
  for (const s of seqs) {
    const tp = new Tape('f32');
    tp.backward(model.loss(tp, s).loss);
    tokens += s.length - 1;
  }
  const t1 = performance.now();
  opt.update();
  const t2 = performance.now();
  console.log(`round ${round}: forward+backward ${(tokens / ((t1 - t0) / 1000)).toFixed(0)} tok/s (${len}-token sequences), update ${(t2 - t1).toFixed(0)} ms`);
}

// The products alone, [n, k]·[m, k]ᵀ and its two backward products: f32 (WASM) and f64 (the TS loops).
const [n, k, m] = [len, 128, 512];
for (const F of [Float32Array, Float64Array]) {
  const x = F.from({ length: n * k }, Math.random), w = F.from({ length: m * k }, Math.random), dy = F.from({ length: n * m }, Math.random);
  const y = new F(n * m), dx = new F(n * k), dW = new F(m * k), acc = new Float64Array(k);
  let best = Infinity;
  for (let r = 0; r < 20; r++) {
    const t0 = performance.now();
    matmulXWt(x, w, y, n, k, m);
    accumulateRows(dy, 1, m, w, dx, n, m, k, acc);
    accumulateRows(dy, m, 1, x, dW, m, n, k, acc);
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${F === Float32Array ? 'f32' : 'f64'} linear [${n}, ${k}]·[${m}, ${k}]ᵀ forward+backward: ${best.toFixed(3)} ms (${(3 * n * k * m * 2 / best / 1e6).toFixed(2)} GFLOP/s)`);
}
for (const precision of ['f32', 'f64']) {
  const g = Float64Array.from({ length: 128 * 512 }, Math.random);
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    newtonSchulz(g, 128, 512, 5, precision);
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`Newton–Schulz [128, 512] ${precision}: ${best.toFixed(1)} ms`);
}
