/**
 * Benchmarks (not tests): `npm run bench -- NAME [options]` or `minke bench NAME [options]`.
 *   kernels   matrix-vector throughput of every weight format against this machine's read bandwidth
 *   models    prefill and decode of whole models against native llama.cpp and wllama (models.ts)
 *   v3, v4    DeepSeek-V3 / V4 decode on a synthetic checkpoint against the memory roofline
 *             (v3.ts, v4.ts; decode-roofline.ts)
 *   v41       DeepSeek-V4.1 decode with and without DSpark speculative decoding (random and oracle
 *             drafts) on a synthetic checkpoint (v41.ts)
 *   webgpu    decode tokens/s on the WebGPU backend against the CPU backend (webgpu.ts; run on a GPU)
 *   engine    aggregate decode tokens/s of the serving engine at batch 1, 4, 16 (engine.ts)
 *   serve     many streaming clients against a real `minke serve`: errors, TTFT, tokens/s, memory (serve.ts)
 */
import { pathToFileURL } from 'node:url';

const usage = `usage: npm run bench -- kernels [--threads 1,2] [--shapes 4096x4096,...] [--formats f16,q4_0,...]
                                  [--bandwidth-gib 1] [--json FILE] [--quiet-wait SECONDS]
       npm run bench -- models [--configs s110m,l1b] [--types F16,Q8_0,Q4_0] [--threads 1,2] [--reps 3] [...]
       npm run bench -- v3|v4 [--threads 2] [--gen 64] [--reps 3] [--warmup 256] [--quiet-wait 120] [...]
       npm run bench -- v41 [--threads 2] [--gen 32] [--prompt 64] [--preset bench|tiny] [--dir DIR] [...]
       npm run bench -- webgpu [--models l1b-q8_0,l1b-q4_0,v4] [--gen 64] [--reps 3] [--backends webgpu,cpu]
       npm run bench -- engine [--model FILE.gguf] [--batches 1,4,16] [--gen 64] [--prompt 32] [--threads 2]
       npm run bench -- serve [--model FILE] [--clients 64] [--seconds 60] [--max-tokens 64] [--parallel 64] [--json FILE]
`;

export async function benchCommand(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  switch (name) {
    case 'kernels':
      return (await import('./kernels.js')).benchKernels(rest);
    case 'models':
      return (await import('./models.js')).benchModels(rest);
    case 'v3':
      return (await import('./v3.js')).benchV3(rest);
    case 'v4':
      return (await import('./v4.js')).benchV4(rest);
    case 'v41':
      return (await import('./v41.js')).benchV41(rest);
    case 'webgpu':
      return (await import('./webgpu.js')).benchWebGpu(rest);
    case 'engine':
      return (await import('./engine.js')).benchEngine(rest);
    case 'serve':
      return (await import('./serve.js')).benchServe(rest);
    case 'engram':
      return (await import('./engram.js')).benchEngram(rest);
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(usage);
      return name === undefined ? 2 : 0;
    default:
      process.stderr.write(`bench: unknown benchmark ${JSON.stringify(name)}\n${usage}`);
      return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = await benchCommand(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
