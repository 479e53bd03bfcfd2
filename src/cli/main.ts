/** `minke` command line: dispatches to one sub-command per file. */
const usage = `minke — DeepSeek-V4 family inference in TypeScript

usage:
  minke info MODEL          print architecture, tensors, formats and memory needs of a model file
  minke bench kernels       measure kernel throughput against this machine's memory bandwidth
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
    default:
      process.stderr.write(`minke: unknown command ${JSON.stringify(cmd)}\n\n${usage}`);
      void rest;
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
