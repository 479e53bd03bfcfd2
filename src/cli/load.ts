/**
 * Loading a model for a command: what it will need first (weights + the chosen context's state,
 * from the config and tensor table alone), progress while the weights load (bytes and %, on
 * stderr), then how long loading took.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LanguageModel, ModelDescription } from '../models/model.js';
import { describeModel, loadModel } from '../models/index.js';
import type { BackendKind } from '../kernels/create-backend.js';
import { formatBytes, formatCount, type Out } from './display.js';

export interface CliLoadOptions {
  readonly threads?: number;
  /** --backend (default cpu). */
  readonly backend?: BackendKind;
  /** Context the command's sequences get (--ctx). */
  readonly contextLength?: number;
  /** DeepSeek-V4 numerics (LoadOptions): FP8 activation rounding and the KV quantisation round trips. */
  readonly actQuant?: boolean;
  readonly kvQuant?: boolean;
  /** DeepSeek-V4.1 checkpoints without a tokenizer: the Engram token map file (LoadOptions.engramMapPath). */
  readonly engramMap?: string;
  /** Where sizes, progress and warnings go; nothing is written when absent. */
  readonly log?: Out;
  /** Looks at the description before any weight is read; throws to refuse the model (bad flags for it). */
  readonly check?: (d: ModelDescription) => void;
}

export async function loadForCli(modelPath: string, opts: CliLoadOptions): Promise<LanguageModel> {
  if (!fs.existsSync(modelPath)) throw new Error(`${modelPath}: no such file or directory`);
  const log = opts.log;
  const load = {
    threads: opts.threads, backendKind: opts.backend, contextLength: opts.contextLength, actQuant: opts.actQuant, kvQuant: opts.kvQuant,
    engramMapPath: opts.engramMap,
    onWarning: log ? (m: string) => void log.write(`warning: ${m}\n`) : undefined,
  };
  // Wrong --ctx or flags are reported before minutes of loading, not after.
  const d = describeModel(modelPath, load);
  checkContext(d, opts.contextLength);
  opts.check?.(d);
  const name = path.basename(modelPath);
  if (log) log.write(`${name}: ${summary(d, contextOf(d, opts.contextLength))}\n`);
  const progress = log ? progressLine(log, name) : undefined;
  const t0 = performance.now();
  let model: LanguageModel;
  try {
    model = await loadModel(modelPath, { ...load, onProgress: progress?.update });
  } finally {
    progress?.end();
  }
  if (log) log.write(`loaded in ${((performance.now() - t0) / 1000).toFixed(2)} s on ${backendName(model.backend)}\n`);
  return model;
}

/** "cpu (2 threads)" or "webgpu (the adapter's name)". */
function backendName(b: LanguageModel['backend']): string {
  const adapter = (b as { adapterName?: string }).adapterName;
  return adapter ? `${b.name} (${adapter})` : `${b.name} (${b.threads} thread${b.threads === 1 ? '' : 's'})`;
}

/** The context a command's sequence gets: --ctx, else what the model gives by default. */
export function contextOf(d: ModelDescription, requested?: number): number {
  const dflt = d.details.defaultContext;
  return requested ?? (typeof dflt === 'number' ? dflt : d.contextLength);
}

export function checkContext(d: ModelDescription, requested?: number): void {
  if (requested !== undefined && requested > d.contextLength) {
    throw new Error(`--ctx ${requested} is longer than the model's context of ${d.contextLength} tokens`);
  }
}

/**
 * "llama, 292.80K parameters, 1.12 MiB weights + 2048 tokens × 640 B = 1.25 MiB context → 2.37 MiB"
 * (mixture-of-experts models add "(N active)" after the parameters). `d` sized for `ctx`: a V4
 * model's state per token is an average that depends on the context.
 */
export function summary(d: ModelDescription, ctx: number): string {
  const weights = Object.values(d.weightBytes).reduce((a, b) => a + b, 0);
  const state = Math.round(d.stateBytesPerToken * ctx);
  const active = d.details.activeParameters;
  return `${d.architecture}, ${formatCount(d.parameters)} parameters${typeof active === 'number' ? ` (${formatCount(active)} active)` : ''}, ${formatBytes(weights)} weights + ` +
    `${ctx} tokens × ${formatBytes(d.stateBytesPerToken)} = ${formatBytes(state)} context → ${formatBytes(weights + state)}`;
}

/**
 * On a terminal: "\rloading name  45% (0.50 MiB / 1.12 MiB)", redrawn at most 10 times a second.
 * Elsewhere (a log file): one such line at every quarter.
 */
function progressLine(log: Out, name: string): { update: (done: number, total: number) => void; end: () => void } {
  let last = 0;
  let quarter = 0;
  let drawn = false;
  const line = (done: number, total: number) => {
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    return `loading ${name} ${String(pct).padStart(3)}% (${formatBytes(done)} / ${formatBytes(total)})`;
  };
  return {
    update: (done, total) => {
      if (!log.isTTY) {
        const q = total > 0 ? Math.floor((4 * done) / total) : 4;
        if (q > quarter) { quarter = q; log.write(line(done, total) + '\n'); }
        return;
      }
      const now = performance.now();
      if (now - last < 100 && done < total) return;
      last = now;
      log.write('\r' + line(done, total));
      drawn = true;
    },
    end: () => { if (drawn) log.write('\n'); },
  };
}
