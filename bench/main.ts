/**
 * Benchmarks (not tests): `npm run bench -- NAME [options]` or `minke bench NAME [options]`.
 *   kernels   matrix-vector throughput of every weight format against this machine's read bandwidth
 */
import { pathToFileURL } from 'node:url';

const usage = `usage: npm run bench -- kernels [--threads 1,2] [--shapes 4096x4096,...] [--formats f16,q4_0,...]
                                  [--bandwidth-gib 1] [--json FILE]
`;

export async function benchCommand(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  switch (name) {
    case 'kernels':
      return (await import('./kernels.js')).benchKernels(rest);
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
