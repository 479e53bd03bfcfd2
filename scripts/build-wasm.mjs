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
execFileSync(process.execPath, [
  asc, join(root, 'src/kernels/cpu/wasm/index.ts'),
  '-o', out,
  '-O3', '--noAssert',
  '--enable', 'simd,threads',
  '--importMemory', '--sharedMemory',
  '--initialMemory', '16', '--maximumMemory', '65536',
  '--runtime', 'stub',
], { stdio: 'inherit', cwd: root });
