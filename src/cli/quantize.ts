/**
 * `minke quantize SRC DST --type T`: rewrites a checkpoint with smaller weights (src/quantize/README.md),
 * then prints the size before and after and the quality cost — the KL divergence of the two
 * models' next-token distributions over a fixed, seeded token sequence.
 */
import { DENSE_TYPES, MOE_TYPES, quantizeModel } from '../quantize/index.js';
import { parseArgs, flag, UsageError, type FlagSpec } from './args.js';
import { formatBytes } from './display.js';
import { modelPathOf } from '../models/shipped.js';

export const QUANTIZE_USAGE = `usage: minke quantize SRC DST --type T [--kl-tokens N] [--seed S] [--no-kl] [--threads N] [--json]
  dense GGUF (llama, qwen2, qwen3, mistral) → the GGUF file DST, weight matrices in T:
      ${Object.keys(DENSE_TYPES).join(', ')}
      (1-D tensors stay f32; the output head, or a tied embedding, gets q6_k below 6 bits)
  DeepSeek-V4 directory → the checkpoint directory DST (src/quantize/README.md):
      experts-q4   routed experts MXFP4 (the shipped FP4, exact), embeddings/head Q8_0
      experts-q2   routed experts Q2_K (2.625 bits; 2.5-bit q2_0 for rows not a multiple of 256)
      q8           routed experts Q8_0, embeddings/head Q8_0
      attention, shared expert and MTP projections stay FP8 as shipped
  DeepSeek-V3 directory (FP8 experts) → the checkpoint directory DST:
      experts-q4   routed experts Q4_K (Q4_0 for rows not a multiple of 256), 4.5 bits
      experts-q2   routed experts Q2_K (q2_0 likewise), q8  routed experts Q8_0; the rest as shipped
  --kl-tokens N  positions of the KL measurement (default 64), seeded token ids (--seed, default 1234)
  --no-kl        skip the KL measurement (it loads and runs both models)
`;

const FLAGS: Record<string, FlagSpec> = {
  type: { kind: 'string' },
  'kl-tokens': { kind: 'int', min: 1 },
  seed: { kind: 'int', min: 0 },
  'no-kl': { kind: 'boolean' },
  threads: { kind: 'int', min: 1, short: 't' },
  json: { kind: 'boolean' },
  help: { kind: 'boolean', short: 'h' },
};

export async function quantizeCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(QUANTIZE_USAGE); return 0; }
  const [srcArg, dst, ...extra] = args.positionals;
  if (srcArg === undefined || dst === undefined) throw new UsageError('quantize needs SRC and DST (minke quantize --help)');
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const type = flag.str(args, 'type');
  if (type === undefined) throw new UsageError(`quantize needs --type (${[...Object.keys(DENSE_TYPES), ...Object.keys(MOE_TYPES)].join(', ')})`);
  const src = modelPathOf(srcArg);
  const threads = flag.num(args, 'threads');
  const report = await quantizeModel(src, dst, type, {
    kl: !flag.bool(args, 'no-kl'), klTokens: flag.num(args, 'kl-tokens'), seed: flag.num(args, 'seed'),
    load: threads === undefined ? {} : { threads },
  });
  if (flag.bool(args, 'json')) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  }
  for (const w of report.warnings) process.stderr.write(`minke: warning: ${w}\n`);
  const pct = (100 * report.bytesAfter) / report.bytesBefore;
  const formats = Object.entries(report.formats).map(([f, n]) => `${n} × ${f}`).join(', ');
  process.stdout.write(`quantized ${src} → ${dst} (${type}): ${formats}\n`);
  process.stdout.write(`size: ${formatBytes(report.bytesBefore)} → ${formatBytes(report.bytesAfter)} (${pct.toFixed(1)} %)\n`);
  if (report.kl) {
    const k = report.kl;
    process.stdout.write(`KL(original ‖ quantized) of next-token distributions over ${k.positions} positions (seed ${k.seed}): ` +
      `mean ${k.mean.toPrecision(4)} nats, max ${k.max.toPrecision(4)}; same top-1 token at ${(100 * k.top1Agreement).toFixed(1)} %\n`);
  }
  return 0;
}
