/** Matrix kernels of the quantised formats: GGUF blocks, MXFP4, DeepSeek FP8 tiles and FP4 experts. */
import type { ActQuantizer, MatrixKernel } from './registry.js';

export const QUANT_KERNELS: MatrixKernel[] = [];
export const ACT_QUANTIZERS: ActQuantizer[] = [];
