/** `minke` command line: one sub-command per file, loaded only when used. */
const usage = `minke — DeepSeek-V4 family inference in TypeScript

usage:
  minke info MODEL [--tensors]   what a model file holds: metadata, tensors, bytes per storage type
  minke bench kernels            kernel throughput against this machine's memory bandwidth

MODEL is a .gguf file, a .safetensors file, or a Hugging Face model directory.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(usage);
      return 0;
    case 'info':
      return (await import('./info.js')).infoCommand(rest);
    case 'bench':
      return (await import('../../bench/main.js')).benchCommand(rest);
    default:
      process.stderr.write(`minke: unknown command ${JSON.stringify(cmd)}\n\n${usage}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  // Bad input is reported as one clear line, not a stack trace.
  process.stderr.write(`minke: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.MINKE_DEBUG) console.error(err);
  process.exitCode = 1;
}
