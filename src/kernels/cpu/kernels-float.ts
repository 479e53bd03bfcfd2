/** Matrix kernels whose activations stay f32: f32, f16, bf16 weights. */
import type { MatrixKernel } from './registry.js';

export const FLOAT_KERNELS: MatrixKernel[] = [];
