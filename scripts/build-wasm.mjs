// Compiles the AssemblyScript SIMD kernels into dist/src/kernels/cpu/kernels.wasm.
// Shared, imported memory: every worker thread instantiates the same module over one WebAssembly.Memory.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/src/kernels/cpu/kernels.wasm');
mkdirSync(dirname(out), { recursive: true });
const asc = join(root, 'node_modules/assemblyscript/bin/asc.js');
// Two builds of the same sources: the baseline (SIMD) and one with relaxed SIMD (fused multiply-add,
// u7·i8 byte dots), which wasm-module.ts picks where the runtime runs it.
for (const [file, features] of [['kernels.wasm', 'simd,threads'], ['kernels-relaxed.wasm', 'simd,threads,relaxed-simd']]) {
  execFileSync(process.execPath, [
    asc, join(root, 'src/kernels/cpu/wasm/index.ts'),
    '-o', join(dirname(out), file),
    '-O3', '--noAssert',
    '--enable', features,
    '--importMemory', '--sharedMemory',
    '--initialMemory', '16', '--maximumMemory', '65536',
    '--runtime', 'stub',
  ], { stdio: 'inherit', cwd: root });
}
