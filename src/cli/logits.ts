/**
 * `minke logits MODEL --tokens 1,2,3 [--all] [--out FILE]`: one prefill over exactly these ids
 * (no BOS added) and the raw logits as JSON `{"tokens": [...], "logits": [[...vocab...]]}` — the
 * last position's row, or one row per position with --all.
 */
import * as fs from 'node:fs';
import { parseArgs, flag, UsageError, type FlagSpec } from './args.js';
import { loadForCli } from './load.js';

export const LOGITS_USAGE = `usage: minke logits MODEL --tokens ID,ID,... [--all] [--out FILE] [--threads N] [--quiet]
  --tokens   token ids to evaluate in one prefill (comma-separated)
  --all      the logits of every position (default: the last)
  --out      write the JSON to FILE (default: stdout)
`;

const FLAGS: Record<string, FlagSpec> = {
  tokens: { kind: 'string' },
  all: { kind: 'boolean' },
  out: { kind: 'string', short: 'o' },
  threads: { kind: 'int', min: 1, short: 't' },
  quiet: { kind: 'boolean', short: 'q' },
  help: { kind: 'boolean', short: 'h' },
};

export function parseTokenList(s: string): number[] {
  const parts = s.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new UsageError(`--tokens needs comma-separated token ids, got ${JSON.stringify(s)}`);
  }
  return parts.map(Number);
}

export async function logitsCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(LOGITS_USAGE); return 0; }
  const [modelPath, ...extra] = args.positionals;
  if (modelPath === undefined) throw new UsageError('logits needs a MODEL (minke logits --help)');
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const list = flag.str(args, 'tokens');
  if (list === undefined) throw new UsageError('logits needs --tokens ID,ID,...');
  const ids = parseTokenList(list);
  const all = flag.bool(args, 'all');

  const model = await loadForCli(modelPath, { threads: flag.num(args, 'threads'), log: flag.bool(args, 'quiet') ? undefined : process.stderr });
  try {
    const vocab = model.description.vocabSize;
    const bad = ids.find((id) => id >= vocab);
    if (bad !== undefined) throw new Error(`token id ${bad} is outside the vocabulary [0, ${vocab})`);
    const seq = model.newSequence({ contextLength: ids.length });
    let logits: Float32Array;
    try {
      logits = await seq.forward(ids, { allLogits: all });
    } finally {
      seq.free();
    }
    const rows = all ? ids.length : 1;
    const out = [];
    for (let r = 0; r < rows; r++) out.push(Array.from(logits.subarray(r * vocab, (r + 1) * vocab)));
    const json = JSON.stringify({ tokens: ids, logits: out }) + '\n';
    const file = flag.str(args, 'out');
    if (file !== undefined) fs.writeFileSync(file, json);
    else process.stdout.write(json);
    return 0;
  } finally {
    await model.close();
  }
}
