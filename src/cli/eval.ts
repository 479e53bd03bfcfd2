/**
 * `minke eval [MODEL]`: accuracy on the synthetic task generators (src/train/tasks) with a seed, in
 * one reasoning mode. The result goes to stdout (a table, or with --json exactly
 * {"tasks": {"<task>": {"accuracy": 0-1, "n": N}}, "overall": 0-1}); loading and progress to stderr.
 */
import { THINK_MODES, type ThinkMode } from '../chat/format.js';
import { defaultModelPath, modelPathOf } from '../models/shipped.js';
import { EVAL_DEFAULT_SEED, evaluateModel, type EvalReport } from '../train/eval.js';
import { parseTaskList, TASK_NAMES } from '../train/tasks/index.js';
import { flag, parseArgs, UsageError, type FlagSpec } from './args.js';
import { loadForCli } from './load.js';

export const EVAL_USAGE = `usage: minke eval [MODEL] [options]
  --tasks LIST        all (default) or a comma-separated list of: ${TASK_NAMES.join(', ')}
  --seed S            seed of the problems (default ${EVAL_DEFAULT_SEED}; a seed never used in training is a held-out set)
  --n N               problems per task (default 20)
  --think MODE        none (default), high or max
  --digits D          digits knob of every task (default: each task's own)
  --steps K           steps knob of every task (default: each task's own)
  --max-tokens N      most tokens per answer (default 512)
  --ctx N             context length (default: the model's, at most 4096)
  --threads N         CPU threads (default: all cores)
  --backend B         cpu (default) or webgpu (any GPU; falls back to the CPU with a warning)
  --json              print {"tasks": {...}, "overall": ...} as JSON
  --quiet             no loading or progress lines on stderr
MODEL defaults to the shipped nano model. Answers are greedy; the reply after </think> is checked.
`;

const FLAGS: Record<string, FlagSpec> = {
  tasks: { kind: 'string' },
  seed: { kind: 'int' },
  n: { kind: 'int', min: 1 },
  think: { kind: 'string' },
  digits: { kind: 'int', min: 1 },
  steps: { kind: 'int', min: 1 },
  'max-tokens': { kind: 'int', min: 1 },
  ctx: { kind: 'int', min: 1 },
  threads: { kind: 'int', min: 1, short: 't' },
  backend: { kind: 'string' },
  json: { kind: 'boolean' },
  quiet: { kind: 'boolean', short: 'q' },
  help: { kind: 'boolean', short: 'h' },
};

function table(report: EvalReport): string {
  const names = Object.keys(report.tasks);
  const w = Math.max(7, ...names.map((n) => n.length));
  const rows = names.map((n) => `${n.padEnd(w)}  ${(report.tasks[n].accuracy * 100).toFixed(1).padStart(6)}%  ${report.tasks[n].n}`);
  return [`${'task'.padEnd(w)}  accuracy  n`, ...rows, `${'overall'.padEnd(w)}  ${(report.overall * 100).toFixed(1).padStart(6)}%`].join('\n') + '\n';
}

export async function evalCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(EVAL_USAGE); return 0; }
  if (args.positionals.length > 1) throw new UsageError(`eval takes one MODEL, got ${args.positionals.length} (minke eval --help)`);
  const think = (flag.str(args, 'think') ?? 'none') as ThinkMode;
  if (!THINK_MODES.includes(think)) throw new UsageError(`--think is one of ${THINK_MODES.join(', ')}, got ${JSON.stringify(think)}`);
  let tasks: string[];
  try {
    tasks = parseTaskList(flag.str(args, 'tasks') ?? 'all');
  } catch (e) {
    throw new UsageError(`--tasks: ${(e as Error).message}`);
  }
  const modelPath = args.positionals[0] === undefined ? defaultModelPath('eval') : modelPathOf(args.positionals[0]);
  const quiet = flag.bool(args, 'quiet');
  const err = process.stderr;
  const model = await loadForCli(modelPath, { threads: flag.num(args, 'threads'), backend: flag.backend(args), contextLength: flag.num(args, 'ctx'), log: quiet ? undefined : err });
  try {
    const tty = err.isTTY === true;
    const report = await evaluateModel(model, {
      tasks,
      seed: flag.num(args, 'seed') ?? EVAL_DEFAULT_SEED,
      n: flag.num(args, 'n') ?? 20,
      think,
      difficulty: { digits: flag.num(args, 'digits'), steps: flag.num(args, 'steps') },
      maxTokens: flag.num(args, 'max-tokens'),
      contextLength: flag.num(args, 'ctx'),
      onProgress: quiet ? undefined : (task, done, n, correct) => {
        const line = `eval ${task} (think ${think}): ${done}/${n}, ${correct} correct`;
        if (tty) err.write(`\r\x1b[K${line}${done === n ? '\n' : ''}`);
        else if (done === n) err.write(`${line}\n`);
      },
    });
    process.stdout.write(flag.bool(args, 'json') ? `${JSON.stringify(report)}\n` : table(report));
    return 0;
  } finally {
    await model.close();
  }
}
