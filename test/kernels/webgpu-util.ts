/**
 * The WebGPU backend for tests: on Linux without a GPU, the SwiftShader Vulkan driver of Debian's
 * chromium package (`.ci/run` installs chromium and libvulkan1). Where no adapter can be had the
 * WebGPU tests are skipped with the reason — except in CI, where that is a failure.
 */
import * as fs from 'node:fs';
import { SWIFTSHADER_ICD } from '../../src/kernels/webgpu/device.js';
import { WebGpuBackend } from '../../src/kernels/webgpu/webgpu-backend.js';

let backend: Promise<WebGpuBackend | string> | undefined;

/** One shared backend for the test file, or why there is none. */
export function webGpuBackend(): Promise<WebGpuBackend | string> {
  if (!backend) {
    if (!process.env.VK_ICD_FILENAMES && fs.existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    backend = WebGpuBackend.create().catch((err: Error) => {
      if (process.env.CI) throw err;
      return `WebGPU unavailable: ${err.message}`;
    });
  }
  return backend;
}
