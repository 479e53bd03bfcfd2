/**
 * Getting a WebGPU device: `navigator.gpu` in a browser, Dawn through the `webgpu` npm package in
 * Node. No adapter is an error that says what to install, so callers can fall back to the CPU.
 */

/** The Vulkan driver Debian's chromium package ships: a software GPU, for tests and CI. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface WebGpuDevice {
  readonly device: GPUDevice;
  /** Who made the adapter and what it is, as its info says. */
  readonly adapterName: string;
}

export interface WebGpuDeviceOptions {
  /** Node: Dawn's backend toggles (default `backend=vulkan` on Linux). */
  readonly dawnFlags?: readonly string[];
  readonly powerPreference?: GPUPowerPreference;
}

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let nodeInstance: GPU | undefined;

async function nodeGpu(opts: WebGpuDeviceOptions): Promise<GPU> {
  let dawn: DawnModule;
  try {
    // (The browser build aliases this Node-only package away: browsers take navigator.gpu above.)
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (err) {
    throw new Error(`WebGPU in Node needs the optional package "webgpu" (Dawn): npm install webgpu@0.6.2 (${(err as Error).message})`);
  }
  // GPUBufferUsage and friends are globals in a browser; Dawn hands them over to install.
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const flags = opts.dawnFlags ?? (process.platform === 'linux' ? ['backend=vulkan'] : []);
  // Dawn tears the instance down when this object is collected, devices and all: keep it.
  nodeInstance ??= dawn.create([...flags]);
  return nodeInstance;
}

/** Requests an adapter and a device with the adapter's largest buffer limits. */
export async function requestWebGpuDevice(opts: WebGpuDeviceOptions = {}): Promise<WebGpuDevice> {
  const browserGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  const gpu = browserGpu ?? (typeof process !== 'undefined' && process.versions?.node ? await nodeGpu(opts) : undefined);
  if (!gpu) throw new Error('WebGPU is not available here (no navigator.gpu)');
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    const hint = typeof process !== 'undefined' && process.platform === 'linux'
      ? ` (Linux needs a Vulkan driver: libvulkan1 and a GPU's ICD, or the software one chromium ships — VK_ICD_FILENAMES=${SWIFTSHADER_ICD})`
      : '';
    throw new Error(`no WebGPU adapter found${hint}`);
  }
  const a = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    },
  });
  const info = adapter.info;
  // e.g. "nvidia hopper, NVIDIA H200" or "google swiftshader, SwiftShader driver 5.0.0" (browsers leave description empty)
  const adapterName = [[info.vendor, info.architecture].filter((x) => x).join(' '), info.description].filter((x) => x).join(', ') || 'WebGPU adapter';
  return { device, adapterName };
}
