/**
 * Training progress on stderr: on a terminal one line redrawn after every step; otherwise (a log
 * file, CI) one line at the first step, every `everySeconds` and at the last step, with the mean
 * loss of the steps since the previous line.
 *
 *   step 120/1000  loss 2.3412 (ce 2.1101 mtp 2.5012 idx 0.0310)  lr 3.00e-3  |g| 0.84  1234 tok/s  ETA 4m12s
 */

export interface ProgressOut {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** What one optimiser step did. */
export interface StepReport {
  /** Steps done after this one. */
  readonly step: number;
  /** Token-weighted mean of the batch: total loss, next-token CE, MTP CE, indexer KL. */
  readonly loss: number;
  readonly ce: number;
  readonly mtp: number;
  readonly indexer: number;
  /** Predicted tokens in the batch. */
  readonly tokens: number;
  readonly lr: number;
  readonly gradNorm: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class TrainProgress {
  private readonly start: number;
  private lastLine: number;
  private tokens = 0;
  private steps = 0;
  private pending: StepReport[] = [];

  /** `total`: the step the run ends at. `now` is milliseconds (performance.now by default; tests pass a clock). */
  constructor(private readonly out: ProgressOut, private readonly total: number, private readonly everySeconds = 10, private readonly now: () => number = () => performance.now()) {
    this.start = this.lastLine = now();
  }

  report(r: StepReport): void {
    this.tokens += r.tokens;
    this.steps++;
    this.pending.push(r);
    const t = this.now();
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${this.line(t)}`);
      this.pending = [];
      return;
    }
    if (this.steps === 1 || r.step >= this.total || t - this.lastLine >= 1000 * this.everySeconds) {
      this.out.write(`${this.line(t)}\n`);
      this.pending = [];
      this.lastLine = t;
    }
  }

  /** Ends the redrawn line on a terminal. */
  finish(): void {
    if (this.out.isTTY && this.steps) this.out.write('\n');
  }

  private line(t: number): string {
    const list = this.pending, last = list[list.length - 1];
    const weight = list.reduce((s, r) => s + r.tokens, 0) || 1;
    const mean = (key: 'loss' | 'ce' | 'mtp' | 'indexer') => list.reduce((s, r) => s + r[key] * r.tokens, 0) / weight;
    const seconds = (t - this.start) / 1000, perStep = seconds / this.steps;
    const parts = [`ce ${mean('ce').toFixed(4)}`];
    if (list.some((r) => r.mtp)) parts.push(`mtp ${mean('mtp').toFixed(4)}`);
    if (list.some((r) => r.indexer)) parts.push(`idx ${mean('indexer').toFixed(4)}`);
    return [
      `step ${last.step}/${this.total}`,
      `loss ${mean('loss').toFixed(4)} (${parts.join(' ')})`,
      `lr ${last.lr.toExponential(2)}`,
      `|g| ${last.gradNorm.toFixed(2)}`,
      `${Math.round(this.tokens / Math.max(seconds, 1e-9))} tok/s`,
      `ETA ${formatDuration(perStep * (this.total - last.step))}`,
    ].join('  ');
  }
}
