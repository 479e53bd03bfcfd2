/**
 * The training loop: each optimiser step reads the next `batch` sequences of the source, runs the
 * V4 training forward and backward on each in turn (gradient accumulation: the parameters' grads
 * add up across tapes), weights every sequence's loss by its share of the batch's predicted tokens
 * (so the step minimises the token mean), then clips, updates (Muon / AdamW) and moves the routing
 * biases by the batch's expert loads.
 *
 * A run is deterministic given its seed: initialisation (initV4Params), data order (the source is a
 * pure function of its position) and the arithmetic are all fixed, and a checkpoint holds every bit
 * of state (checkpoint.ts), so N steps equal N/2 steps, a save, a resume and N/2 more, exactly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tape } from './autograd.js';
import { exportV4Checkpoint, readTrainState, TRAIN_STATE_FILE, v4HFConfig, writeTrainState } from './checkpoint.js';
import { countedTargets, type SequenceSource, sequenceIds, sequenceMask } from './data.js';
import { Optimizer, type OptimizerConfig, updateRoutingBias } from './optim.js';
import type { StepReport } from './progress.js';
import { type V4LossOptions, V4TrainModel } from './v4-train-model.js';
import type { V4TrainParams } from './v4-train-params.js';

export interface TrainerOptions {
  readonly params: V4TrainParams;
  /** The model's HF config.json object, written with every checkpoint. */
  readonly model: Record<string, unknown>;
  readonly optimizer: OptimizerConfig;
  readonly source: SequenceSource;
  /** Sequences per optimiser step. */
  readonly batch: number;
  /** The run's seed (initialisation and data order), recorded in checkpoints. */
  readonly seed: number;
  readonly loss?: V4LossOptions;
}

export interface RunOptions {
  /** Called after every step. */
  readonly onStep?: (r: StepReport) => void;
  /** Checkpoint directory: written every `checkpointEvery` steps and when the run ends. */
  readonly checkpointDir?: string;
  readonly checkpointEvery?: number;
}

export class Trainer {
  readonly model: V4TrainModel;
  readonly optimizer: Optimizer;
  /** Sequences read so far: the data position. */
  consumed = 0;

  constructor(readonly options: TrainerOptions) {
    if (!(Number.isInteger(options.batch) && options.batch >= 1)) throw new Error(`trainer: batch must be a whole number ≥ 1, got ${options.batch}`);
    this.model = new V4TrainModel(options.params);
    this.optimizer = new Optimizer(options.params.tensors, options.optimizer);
  }

  /** Optimiser steps taken. */
  get step(): number {
    return this.optimizer.step;
  }

  /** One optimiser step over the next `batch` sequences. */
  trainStep(): StepReport {
    const { source, batch, params } = this.options, c = this.model.config;
    const sequences = Array.from({ length: batch }, (_, b) => source.sequence(this.consumed + b));
    for (const [b, s] of sequences.entries()) {
      const n = sequenceIds(s).length;
      if (n < 2 || n - 1 > c.contextLength) {
        throw new Error(`trainer: sequence ${this.consumed + b} has ${n} tokens; it needs 2 … ${c.contextLength + 1}`);
      }
    }
    // Weights by counted targets: a masked sequence's prompt tokens are read, not predicted.
    const tokens = sequences.reduce((n, s) => n + countedTargets(s), 0);
    if (tokens === 0) throw new Error(`trainer: sequences ${this.consumed} … ${this.consumed + batch - 1} have no target tokens (every mask is 0)`);
    const load = new Map<string, Int32Array>();
    let loss = 0, ce = 0, mtp = 0, indexer = 0;
    for (const s of sequences) {
      const counted = countedTargets(s);
      if (counted === 0) continue;
      const tp = new Tape(params.precision), l = this.model.loss(tp, sequenceIds(s), this.options.loss, sequenceMask(s)), w = counted / tokens;
      tp.backward(l.loss, [w]);
      loss += w * l.loss.data[0];
      ce += w * l.ce;
      mtp += w * l.mtp;
      indexer += w * l.indexer;
      for (const [block, counts] of l.forward.expertLoad) {
        const sum = load.get(block) ?? new Int32Array(counts.length);
        for (let e = 0; e < counts.length; e++) sum[e] += counts[e];
        load.set(block, sum);
      }
    }
    if (!Number.isFinite(loss)) throw new Error(`trainer: the loss is ${loss} at step ${this.step + 1} — training diverged (lower the learning rate)`);
    this.consumed += batch;
    const { lr, gradNorm } = this.optimizer.update();
    updateRoutingBias(params.tensors, load, this.optimizer.config.biasRate);
    return { step: this.step, loss, ce, mtp, indexer, tokens, lr, gradNorm };
  }

  /** Trains until `until` steps are done; returns the reports of the steps it took. */
  run(until: number, opts: RunOptions = {}): StepReport[] {
    const every = opts.checkpointEvery ?? 0, reports: StepReport[] = [];
    while (this.step < until) {
      const r = this.trainStep();
      reports.push(r);
      opts.onStep?.(r);
      if (opts.checkpointDir && (this.step >= until || (every > 0 && this.step % every === 0))) this.save(opts.checkpointDir);
    }
    return reports;
  }

  /**
   * Writes the checkpoint to `dir`: the model in the V4 layout (config.json, model.safetensors) and
   * then the exact training state (train-state.safetensors), each file atomically.
   */
  save(dir: string): void {
    const o = this.options;
    fs.mkdirSync(dir, { recursive: true });
    exportV4Checkpoint(dir, o.params, o.model);
    writeTrainState(path.join(dir, TRAIN_STATE_FILE), o.params, this.optimizer.state(), {
      step: this.step, consumed: this.consumed, seed: o.seed, source: o.source.id, model: o.model,
      settings: { batch: o.batch, optimizer: o.optimizer, loss: o.loss ?? {} },
    });
  }

  /**
   * The trainer saved in `dir`, continuing with `opts` (its optimiser settings may extend the run:
   * a longer totalSteps). The model config, seed and data must be those the run started with.
   */
  static resume(dir: string, opts: Omit<TrainerOptions, 'params'>): Trainer {
    const file = path.join(dir, TRAIN_STATE_FILE), state = readTrainState(file);
    const same = (a: Record<string, unknown>, b: Record<string, unknown>) => JSON.stringify(v4HFConfig(a)) === JSON.stringify(v4HFConfig(b));
    if (!same(state.meta.model, opts.model)) throw new Error(`${file}: the run was started with a different model config`);
    if (state.meta.seed !== opts.seed) throw new Error(`${file}: the run was started with seed ${state.meta.seed}, not ${opts.seed}`);
    if (state.meta.source !== opts.source.id) throw new Error(`${file}: the run was started on other data (${state.meta.source}), not ${opts.source.id}`);
    const t = new Trainer({ ...opts, params: state.params });
    t.optimizer.loadState(state.optimizer);
    t.consumed = state.meta.consumed;
    return t;
  }
}
