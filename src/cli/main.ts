/** `minke` command line: one sub-command per file, loaded only when used. */
import { UsageError } from './args.js';

const usage = `minke — DeepSeek-V4 family inference in TypeScript

usage:
  minke run [MODEL [PROMPT]] [options]    generate: one answer, or an interactive chat (minke run --help)
  minke logits MODEL --tokens 1,2,3       raw logits of one prefill, as JSON (minke logits --help)
  minke serve [MODEL…] [options]         the DeepSeek API (OpenAI/Anthropic compatible) over HTTP (minke serve --help)
  minke info MODEL [--json] [--ctx N]     what a model file holds and the memory it will need
  minke eval [MODEL] [--tasks all --n N]  accuracy on the synthetic reasoning tasks (minke eval --help)
  minke bench MODEL [--prompt N --gen N]  prefill and decode speed, peak memory
  minke bench kernels                     kernel throughput against this machine's memory bandwidth
  minke bench models                      minke vs llama.cpp and wllama on synthetic GGUFs (slow)
  minke train --config FILE --out DIR     train a DeepSeek-V4-architecture model (minke train --help)
  minke pull REPO[:QUANT]                 download a Hugging Face model into the store (minke pull --help)
  minke list [--json]                     the models in the store
  minke rm NAME                           remove a model from the store
  minke quantize SRC DST --type T         smaller weights (GGUF K-quants, 2/4-bit V3/V4 experts) + KL cost (minke quantize --help)

MODEL is a .gguf file, a .safetensors file, a Hugging Face model directory, a llama2.c .bin checkpoint,
or the name of a pulled model (owner/repo, owner/repo:QUANT; minke list shows them); minke-nano is the
shipped model, which serve, run and eval use when no MODEL is given.
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
    case 'run':
      return (await import('./run.js')).runCommand(rest);
    case 'logits':
      return (await import('./logits.js')).logitsCommand(rest);
    case 'serve':
      return (await import('./serve.js')).serveCommand(rest);
    case 'info':
      return (await import('./info.js')).infoCommand(rest);
    case 'eval':
      return (await import('./eval.js')).evalCommand(rest);
    case 'train':
      return (await import('./train.js')).trainCommand(rest);
    case 'pull':
      return (await import('./store.js')).pullCommand(rest);
    case 'list':
    case 'ls':
      return (await import('./store.js')).listCommand(rest);
    case 'rm':
      return (await import('./store.js')).rmCommand(rest);
    case 'quantize':
      return (await import('./quantize.js')).quantizeCommand(rest);
    case 'bench':
      // `bench kernels` (and the other named benchmarks) live in bench/; anything else is a model.
      if (['kernels', 'models', 'v3', 'v4', 'v41', 'engram', 'webgpu', 'engine', 'serve'].includes(rest[0])) return (await import('../../bench/main.js')).benchCommand(rest);
      return (await import('./bench-model.js')).benchModelCommand(rest);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)} (minke --help lists the commands)`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  // Bad input is reported as one clear line, not a stack trace; usage mistakes exit with 2.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`minke: ${message.split('\n')[0]}\n`);
  if (process.env.MINKE_DEBUG) console.error(err);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
