// AssemblyScript entry: every SIMD kernel module is re-exported from here into one kernels.wasm.
//
// ABI shared by all kernels (see src/kernels/cpu/README.md):
// - all pointers are byte offsets into the one shared WebAssembly.Memory;
// - matrix kernels take a half-open row range [row0, row1) so the worker pool can split rows;
// - nothing allocates: scratch space is passed in by the caller.
export function abi_version(): i32 { return 1; }
