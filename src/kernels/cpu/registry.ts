/**
 * Every matrix kernel of the CPU backend, by weight format: the WASM export names, the activation
 * type it consumes, and its plain-TypeScript twin. The backend dispatches through this table and
 * the conformance test walks it, so a format added here is both usable and tested.
 */
import type { WeightFormat } from '../../tensor/dtype.js';
import { FLOAT_KERNELS } from './kernels-float.js';
import { QUANT_KERNELS } from './kernels-quant.js';

/** Twins run on the same memory as the WASM kernels; pointers are byte offsets into `mem`. */
export type MatvecFn = (mem: ArrayBufferLike, w: number, scale: number, x: number, y: number,
  k: number, row0: number, row1: number) => void;
export type MatmulFn = (mem: ArrayBufferLike, w: number, scale: number, x: number, y: number,
  k: number, n: number, ldy: number, row0: number, row1: number) => void;
export type QuantizeActFn = (mem: ArrayBufferLike, x: number, out: number, k: number) => void;

/** What a matrix kernel wants as its activation rows (see README.md, "Activation types"). */
export type ActType = 'f32' | 'q8_0' | 'q8_1' | 'q8_k';

/**
 * An opt-in alternative to a format's default kernel: 'int8-act' quantises f32 activations to q8_0
 * first (faster, approximate against f32 x); the backend uses it only when asked (fastActivations).
 */
export type MatrixKernelVariant = 'int8-act';

export interface MatrixKernel {
  readonly format: WeightFormat;
  readonly act: ActType;
  /** Absent for the format's default kernel. */
  readonly variant?: MatrixKernelVariant;
  /**
   * `matvecPanels`, where a format has it, takes the weight stored as column panels (see
   * CpuTensor.panel), with the ABI (w, rows, panel, x, y, k, row0, row1).
   */
  readonly wasm: { readonly matvec: string; readonly matmul: string; readonly matvecPanels?: string };
  readonly twin: { readonly matvec: MatvecFn; readonly matmul: MatmulFn };
}

export interface ActQuantizer {
  readonly act: Exclude<ActType, 'f32'>;
  /** Elements per activation block; k must be a multiple of it. */
  readonly blockElems: number;
  readonly blockBytes: number;
  readonly wasm: string;
  readonly twin: QuantizeActFn;
}

export { FLOAT_KERNELS, QUANT_KERNELS };
export const MATRIX_KERNELS: readonly MatrixKernel[] = [...FLOAT_KERNELS, ...QUANT_KERNELS];
