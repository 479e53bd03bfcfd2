/**
 * Loading the kernel module (compiled once, instantiated per thread) and the imports every instance gets.
 * Two builds of the same sources (scripts/build-wasm.mjs): kernels-relaxed.wasm uses relaxed SIMD
 * (fused multiply-add, u7·i8 byte dots: faster quantised matvec) and is used where the runtime runs
 * it — Node ≥ 22, or Node 20 once V8's experimental flag is set, which is tried here; kernels.wasm
 * (plain SIMD) everywhere else, or when MINKE_WASM=baseline.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

export type KernelVariant = 'baseline' | 'relaxed';
const FILES: Record<KernelVariant, string> = { baseline: 'kernels.wasm', relaxed: 'kernels-relaxed.wasm' };
const compiled = new Map<KernelVariant, WebAssembly.Module>();
let chosen: KernelVariant | undefined;

function read(variant: KernelVariant): Uint8Array<ArrayBuffer> {
  // A plain name, not a `./${…}` template: bundlers rewrite those into globs of this folder.
  const url = new URL(FILES[variant], import.meta.url);
  try {
    return readFileSync(url) as Uint8Array<ArrayBuffer>;
  } catch (err) {
    throw new Error(`cannot read the CPU kernels at ${url.pathname} (run \`npm run build:wasm\`): ${(err as Error).message}`);
  }
}

/** Whether this runtime compiles the relaxed build (enabling V8's flag for it where needed). */
export function relaxedSupported(): boolean {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = read('relaxed');
  } catch {
    return false;
  }
  if (WebAssembly.validate(bytes)) return true;
  setFlagsFromString('--experimental-wasm-relaxed-simd'); // Node 20 (V8 11.3): implemented, behind this flag
  return WebAssembly.validate(bytes);
}

/** The build kernelModule() gives by default. */
export function kernelVariant(): KernelVariant {
  chosen ??= process.env.MINKE_WASM === 'baseline' || !relaxedSupported() ? 'baseline' : 'relaxed';
  return chosen;
}

/** The compiled kernel module (dist/src/kernels/cpu/kernels*.wasm, built by `npm run build:wasm`). */
export function kernelModule(variant: KernelVariant = kernelVariant()): WebAssembly.Module {
  let m = compiled.get(variant);
  if (!m) {
    if (variant === 'relaxed' && !relaxedSupported()) throw new Error('this runtime cannot run the relaxed-SIMD kernel build');
    m = new WebAssembly.Module(read(variant));
    compiled.set(variant, m);
  }
  return m;
}

export function kernelImports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return {
    env: {
      memory,
      abort(_msg: number, _file: number, line: number, column: number): never {
        throw new Error(`wasm kernel aborted at line ${line}:${column}`);
      },
    },
  };
}
