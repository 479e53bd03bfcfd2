/** Matrix kernels of the quantised formats: GGUF blocks, MXFP4, DeepSeek FP8 tiles and FP4 experts. */
import { FP4_E8M0_32, FP8_BLOCK32_E8M0, FP8_BLOCK_E8M0, FP8_BLOCK_F32, type WeightFormat } from '../../tensor/dtype.js';
import type { ActQuantizer, ActType, MatrixKernel } from './registry.js';
import * as act from './twin/act_quant.js';
import * as gguf from './twin/quant_gguf.js';
import * as ds from './twin/quant_deepseek.js';
import * as kq from './twin/quant_k.js';

/** A format whose kernels are the wasm exports `matvec_<name>` / `matmul_<name>`. */
function kernel(format: WeightFormat, actType: ActType, name: string, twin: MatrixKernel['twin']): MatrixKernel {
  return { format, act: actType, wasm: { matvec: `matvec_${name}`, matmul: `matmul_${name}` }, twin };
}

export const QUANT_KERNELS: MatrixKernel[] = [
  kernel({ dtype: 'q4_0' }, 'q8_0', 'q4_0', { matvec: gguf.matvec_q4_0, matmul: gguf.matmul_q4_0 }),
  kernel({ dtype: 'q4_1' }, 'q8_1', 'q4_1', { matvec: gguf.matvec_q4_1, matmul: gguf.matmul_q4_1 }),
  kernel({ dtype: 'q5_0' }, 'q8_0', 'q5_0', { matvec: gguf.matvec_q5_0, matmul: gguf.matmul_q5_0 }),
  kernel({ dtype: 'q5_1' }, 'q8_1', 'q5_1', { matvec: gguf.matvec_q5_1, matmul: gguf.matmul_q5_1 }),
  kernel({ dtype: 'q8_0' }, 'q8_0', 'q8_0', { matvec: gguf.matvec_q8_0, matmul: gguf.matmul_q8_0 }),
  kernel({ dtype: 'mxfp4' }, 'q8_0', 'mxfp4', { matvec: gguf.matvec_mxfp4, matmul: gguf.matmul_mxfp4 }),
  kernel({ dtype: 'q2_k' }, 'q8_k', 'q2_k', { matvec: kq.matvec_q2_k, matmul: kq.matmul_q2_k }),
  kernel({ dtype: 'q3_k' }, 'q8_k', 'q3_k', { matvec: kq.matvec_q3_k, matmul: kq.matmul_q3_k }),
  kernel({ dtype: 'q4_k' }, 'q8_k', 'q4_k', { matvec: kq.matvec_q4_k, matmul: kq.matmul_q4_k }),
  kernel({ dtype: 'q5_k' }, 'q8_k', 'q5_k', { matvec: kq.matvec_q5_k, matmul: kq.matmul_q5_k }),
  kernel({ dtype: 'q6_k' }, 'q8_k', 'q6_k', { matvec: kq.matvec_q6_k, matmul: kq.matmul_q6_k }),
  kernel(FP8_BLOCK_E8M0, 'f32', 'f8_e4m3_e8m0', { matvec: ds.matvec_f8_e4m3_e8m0, matmul: ds.matmul_f8_e4m3_e8m0 }),
  kernel(FP8_BLOCK32_E8M0, 'f32', 'f8_e4m3_e8m0_b32', { matvec: ds.matvec_f8_e4m3_e8m0_b32, matmul: ds.matmul_f8_e4m3_e8m0_b32 }),
  kernel(FP8_BLOCK_F32, 'f32', 'f8_e4m3_f32', { matvec: ds.matvec_f8_e4m3_f32, matmul: ds.matmul_f8_e4m3_f32 }),
  kernel(FP4_E8M0_32, 'f32', 'fp4_e2m1_e8m0', { matvec: ds.matvec_fp4_e2m1_e8m0, matmul: ds.matmul_fp4_e2m1_e8m0 }),
  // opt-in (CpuBackend fastActivations): FP4 against q8_0 activations, integer dots
  { ...kernel(FP4_E8M0_32, 'q8_0', 'fp4_e2m1_e8m0_i8', { matvec: ds.matvec_fp4_e2m1_e8m0_i8, matmul: ds.matmul_fp4_e2m1_e8m0_i8 }), variant: 'int8-act' },
];

export const ACT_QUANTIZERS: ActQuantizer[] = [
  { act: 'q8_0', blockElems: 32, blockBytes: 34, wasm: 'quantize_q8_0', twin: act.quantize_q8_0 },
  { act: 'q8_1', blockElems: 32, blockBytes: 36, wasm: 'quantize_q8_1', twin: act.quantize_q8_1 },
  { act: 'q8_k', blockElems: 256, blockBytes: 292, wasm: 'quantize_q8_k', twin: act.quantize_q8_k },
];
