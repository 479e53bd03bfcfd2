/** Matrix kernels whose activations stay f32: f32, f16, bf16 weights. */
import type { MatrixKernel } from './registry.js';
import * as twin from './twin/float.js';

export const FLOAT_KERNELS: MatrixKernel[] = [
  { format: { dtype: 'f32' }, act: 'f32', wasm: { matvec: 'matvec_f32', matmul: 'matmul_f32' }, twin: { matvec: twin.matvec_f32, matmul: twin.matmul_f32 } },
  { format: { dtype: 'f16' }, act: 'f32', wasm: { matvec: 'matvec_f16', matmul: 'matmul_f16', matvecPanels: 'matvec_f16_panels' }, twin: { matvec: twin.matvec_f16, matmul: twin.matmul_f16 } },
  { format: { dtype: 'bf16' }, act: 'f32', wasm: { matvec: 'matvec_bf16', matmul: 'matmul_bf16', matvecPanels: 'matvec_bf16_panels' }, twin: { matvec: twin.matvec_bf16, matmul: twin.matmul_bf16 } },
];
