// AssemblyScript entry: every SIMD kernel module is re-exported from here into one kernels.wasm.
//
// ABI shared by all kernels (see src/kernels/cpu/README.md):
// - all pointers are byte offsets into the one shared WebAssembly.Memory;
// - matrix kernels take a half-open row range [row0, row1) so the worker pool can split rows;
// - nothing allocates: scratch space is passed in by the caller.
export function abi_version(): i32 { return 1; }

export * from './layout';
export * from './float';
export * from './ops';
export * from './act_quant';
export * from './quant_q8_0';
export * from './quant_q4';
export * from './quant_q5';
export * from './quant_mxfp4';
export * from './quant_q4k';
export * from './quant_q6k';
export * from './quant_q2k';
export * from './quant_fp8';
export * from './quant_fp4';
export * from './quant_fp4_i8';
export * from './attention';
export * from './sparse_attention';
export * from './indexer';
export * from './train_matmul';
export * from './train_attention';
