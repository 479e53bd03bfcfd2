/**
 * The backend a command asked for: `cpu` (WebAssembly SIMD, every machine) or `webgpu` (any GPU
 * with a WebGPU driver). Asking for WebGPU where there is none is not fatal: the warning says why
 * and the CPU runs the model, as llama.cpp falls back when it finds no GPU.
 */
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/cpu-backend.js';

export type BackendKind = 'cpu' | 'webgpu';
export const BACKEND_KINDS: readonly BackendKind[] = ['cpu', 'webgpu'];

export interface CreateBackendOptions {
  /** CPU worker threads (the CPU backend, and the fallback). */
  readonly threads?: number;
  readonly onWarning?: (message: string) => void;
}

export async function createBackend(kind: BackendKind = 'cpu', opts: CreateBackendOptions = {}): Promise<Backend> {
  if (!BACKEND_KINDS.includes(kind)) throw new Error(`unknown backend "${kind}" (have: ${BACKEND_KINDS.join(', ')})`);
  if (kind === 'webgpu') {
    try {
      const { WebGpuBackend } = await import('./webgpu/webgpu-backend.js');
      return await WebGpuBackend.create();
    } catch (err) {
      opts.onWarning?.(`WebGPU: ${(err as Error).message}; running on the CPU instead`);
    }
  }
  return CpuBackend.create({ threads: opts.threads });
}
