/**
 * The model store's commands: `minke pull REPO[:QUANT|:FILE]`, `minke list`, `minke rm NAME`
 * (src/store/README.md). Progress goes to stderr: one line redrawn on a terminal, a line every few
 * seconds otherwise.
 */
import { listStore, describeStored, removeFromStore } from '../store/catalog.js';
import { pull, type PullProgress } from '../store/pull.js';
import { modelsRoot } from '../store/names.js';
import { flag, parseArgs, UsageError, type FlagSpec } from './args.js';
import { formatBytes } from './display.js';

export const PULL_USAGE = `usage: minke pull REPO[:QUANT|:FILE] [--revision REV]
  REPO            a Hugging Face model repo, e.g. deepseek-ai/DeepSeek-V4-Flash: its config,
                  tokenizer files and every safetensors shard
  REPO:QUANT      the one .gguf file of the repo whose name holds QUANT (e.g. Q4_K_M)
  REPO:FILE       that file of the repo
  --revision REV  a branch, tag or commit (default main)
Into $MINKE_HOME/models/OWNER/REPO (MINKE_HOME defaults to ~/.minke), checked against the hub's sha256.
An interrupted pull resumes where it stopped when run again. HF_TOKEN: a token for gated or private
repos; HF_ENDPOINT: a hub mirror (default https://huggingface.co).
Afterwards the name (REPO, or REPO:QUANT) works wherever a MODEL is taken: minke run REPO.
`;

export const LIST_USAGE = `usage: minke list [--json]
The models in the store ($MINKE_HOME/models): name, architecture, size, formats and path; an
interrupted pull is listed as incomplete (minke pull resumes it, minke rm removes it).
`;

export const RM_USAGE = `usage: minke rm NAME…
Removes a model from the store: NAME as minke list shows it (OWNER/REPO takes the whole folder,
interrupted downloads included; OWNER/REPO:QUANT only that quant's file).
`;

const HELP: Record<string, FlagSpec> = { help: { kind: 'boolean', short: 'h' } };

export async function pullCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { ...HELP, revision: { kind: 'string' } });
  if (flag.bool(args, 'help')) { process.stdout.write(PULL_USAGE); return 0; }
  if (args.positionals.length !== 1) throw new UsageError(`pull takes one REPO, got ${args.positionals.length} (minke pull --help)`);
  const ref = args.positionals[0];
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  const bar = new ProgressBar(ref);
  try {
    const r = await pull(ref, { revision: flag.str(args, 'revision'), signal: abort.signal, onProgress: (p) => bar.update(p) });
    bar.end();
    process.stderr.write(r.downloaded ? `pulled ${r.manifest.name} (${r.manifest.commit.slice(0, 12)})\n` : `${r.manifest.name} is up to date (${r.manifest.commit.slice(0, 12)})\n`);
    process.stdout.write(`${r.path}\n`);
    return 0;
  } catch (err) {
    bar.end();
    if (!abort.signal.aborted) throw err;
    process.stderr.write(`minke: pull of ${ref} interrupted; the partial download stays and minke pull ${ref} resumes it\n`);
    return 130;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export async function listCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { ...HELP, json: { kind: 'boolean' } });
  if (flag.bool(args, 'help')) { process.stdout.write(LIST_USAGE); return 0; }
  if (args.positionals.length) throw new UsageError('list takes no arguments (minke list --help)');
  const rows = listStore().map((e) => ({ ...describeStored(e), name: e.name, size: e.bytes, path: e.path ?? e.dir, complete: !!e.manifest }));
  if (flag.bool(args, 'json')) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  if (!rows.length) {
    process.stdout.write(`no models in ${modelsRoot()} (minke pull REPO downloads one)\n`);
    return 0;
  }
  const table = [['NAME', 'ARCHITECTURE', 'SIZE', 'FORMATS', 'PATH'], ...rows.map((r) => [r.name, r.architecture, formatBytes(r.size), r.formats, r.path])];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) process.stdout.write(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ') + '\n');
  return 0;
}

export async function rmCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, HELP);
  if (flag.bool(args, 'help')) { process.stdout.write(RM_USAGE); return 0; }
  if (!args.positionals.length) throw new UsageError('rm needs a NAME (minke list shows them)');
  for (const name of args.positionals) process.stderr.write(`removed ${name} (${removeFromStore(name)})\n`);
  return 0;
}

/** Bytes, percent, speed and ETA of a pull on stderr. */
class ProgressBar {
  private readonly tty = process.stderr.isTTY === true;
  private readonly start = Date.now();
  private startBytes = -1;
  private last = 0;
  private shown = false;
  private latest: PullProgress | undefined;

  constructor(private readonly what: string) {}

  update(p: PullProgress): void {
    if (this.startBytes < 0) this.startBytes = p.done;
    this.latest = p;
    const now = Date.now();
    const done = p.filesDone === p.files;
    if (!done && now - this.last < (this.tty ? 100 : 5000) && this.shown) return;
    this.last = now;
    this.draw(p);
  }

  end(): void {
    if (this.latest && this.tty) this.draw(this.latest);
    if (this.shown && this.tty) process.stderr.write('\n');
    this.shown = false;
  }

  private draw(p: PullProgress): void {
    const seconds = (Date.now() - this.start) / 1000;
    const speed = seconds > 0 ? (p.done - this.startBytes) / seconds : 0;
    const frac = p.total ? Math.min(1, p.done / p.total) : 1;
    const eta = speed > 0 ? formatDuration((p.total - p.done) / speed) : '--';
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const line = `pulling ${this.what} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}%  ${formatBytes(p.done)} / ${formatBytes(p.total)}  ${formatBytes(speed)}/s  ETA ${eta}  files ${p.filesDone}/${p.files}`;
    process.stderr.write(this.tty ? `\r\x1b[2K${line}` : `${line}\n`);
    this.shown = true;
  }
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
