/**
 * Group-relative policy optimisation (DeepSeekMath / R1's GRPO) with a verifiable reward: each step
 * draws `prompts` problems from the task generators, samples `group` answers to each from the
 * current model (the V4 checkpoint it exports, run by the inference engine — what users will run),
 * rewards an answer 1 when the task's verifier accepts the reply after </think>, else 0, and
 * takes one optimiser step on
 *
 *   L = − 1/(P·G) Σ_i A_i · (1/|o_i|) Σ_t log π(o_i,t | prompt, o_i,<t),   A_i = (r_i − mean_g r) / (std_g r + ε)
 *
 * over the answers' tokens (the prompt is read, not trained). One update per batch of samples
 * keeps it on-policy, so the ratio π/π_old is 1 and PPO's clipping never acts; there is no KL term
 * to a reference model (as in DAPO / Dr. GRPO), which saves a second forward per sample. A group
 * whose answers all score the same has zero advantage and costs no backward pass.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chatFormatFor, type ThinkMode } from '../chat/format.js';
import { generateText } from '../engine/generate.js';
import { Sampler } from '../engine/sampler.js';
import { loadModel } from '../models/index.js';
import { Tape } from './autograd.js';
import { copyTokenizerFiles, exportV4Checkpoint, readTrainState, TRAIN_STATE_FILE, writeTrainState } from './checkpoint.js';
import { parseReply } from './eval.js';
import { Optimizer, type OptimizerConfig } from './optim.js';
import { checkTrainingSeed } from './task-data.js';
import { generateTasks, type Difficulty, type Task } from './tasks/index.js';
import { V4TrainModel } from './v4-train-model.js';
import type { V4TrainParams } from './v4-train-params.js';

export interface GrpoSettings {
  /** Generators the problems come from (verifiable, no tools). */
  readonly tasks: readonly string[];
  /** Seed of the problems: never minke eval's held-out seed. */
  readonly seed: number;
  readonly difficulty?: Difficulty;
  /** Problems per step. */
  readonly prompts: number;
  /** Answers sampled per problem. */
  readonly group: number;
  readonly temperature: number;
  /** Most tokens per answer. */
  readonly maxTokens: number;
  /** The reasoning mode the answers are sampled in (default high). */
  readonly think?: ThinkMode;
}

/** What one GRPO step did. */
export interface GrpoReport {
  readonly step: number;
  /** Mean reward of the step's samples (their accuracy). */
  readonly reward: number;
  /** Groups whose answers did not all score the same (the ones that teach anything). */
  readonly informative: number;
  /** Answer tokens sampled. */
  readonly sampled: number;
  readonly lr: number;
  readonly gradNorm: number;
}

/** Advantages of one group: rewards standardised within it (all zero when they are all equal). */
export function groupAdvantages(rewards: readonly number[], eps = 1e-4): number[] {
  const n = rewards.length, mean = rewards.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / n);
  return rewards.map((r) => (std < 1e-12 ? 0 : (r - mean) / (std + eps)));
}

/** One sampled answer: the prompt and answer token ids and the answer's reward. */
export interface Rollout {
  readonly prompt: readonly number[];
  /** Answer tokens, ending with the end-of-sentence token when the model stopped by itself. */
  readonly answer: readonly number[];
  readonly reward: number;
}

export interface GrpoOptions {
  readonly params: V4TrainParams;
  /** The model's HF config.json object. */
  readonly model: Record<string, unknown>;
  /** Directory with the tokenizer files the sampled checkpoints get. */
  readonly tokenizerDir: string;
  readonly optimizer: OptimizerConfig;
  readonly settings: GrpoSettings;
}

export class GrpoTrainer {
  readonly train: V4TrainModel;
  readonly optimizer: Optimizer;
  /** Problems drawn so far: the data position. */
  consumed = 0;
  private readonly policyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-grpo-'));

  constructor(readonly options: GrpoOptions) {
    const s = options.settings;
    if (s.tasks.length === 0) throw new Error('grpo: no tasks given');
    checkTrainingSeed(s.seed);
    for (const [k, v] of [['prompts', s.prompts], ['group', s.group], ['maxTokens', s.maxTokens]] as const) {
      if (!(Number.isInteger(v) && v >= 1)) throw new Error(`grpo: ${k} must be a whole number ≥ 1, got ${v}`);
    }
    if (s.group < 2) throw new Error(`grpo: a group needs at least 2 answers to compare, got ${s.group}`);
    if (!(s.temperature > 0)) throw new Error(`grpo: temperature must be > 0 (answers must differ), got ${s.temperature}`);
    this.train = new V4TrainModel(options.params);
    this.optimizer = new Optimizer(options.params.tensors, options.optimizer);
    copyTokenizerFiles(options.tokenizerDir, this.policyDir);
  }

  get step(): number {
    return this.optimizer.step;
  }

  /** Identifies the problem stream, for resuming. */
  get sourceId(): string {
    const s = this.options.settings;
    return `grpo tasks ${s.tasks.join(',')} (seed ${s.seed}, ${JSON.stringify(s.difficulty ?? {})}, think ${s.think ?? 'high'})`;
  }

  /** The problems of step `step`: a pure function of the seed and the position. */
  problems(first: number, n: number): Task[] {
    const s = this.options.settings, T = s.tasks.length;
    return Array.from({ length: n }, (_, k) => {
      const i = first + k;
      return generateTasks(s.tasks[i % T], s.seed, 1, s.difficulty, Math.floor(i / T))[0];
    });
  }

  /** Samples `group` answers to each problem from the current weights (exported as the shipped checkpoint format). */
  async rollouts(problems: readonly Task[]): Promise<Rollout[][]> {
    const s = this.options.settings, think = s.think ?? 'high';
    exportV4Checkpoint(this.policyDir, this.options.params, this.options.model);
    const model = await loadModel(this.policyDir, { threads: 1 });
    const format = chatFormatFor(model), eos = model.tokenizer.eos;
    const seq = model.newSequence({ contextLength: Math.min(model.description.contextLength, 2048) });
    // The sampler's stream depends on the step alone, so a resumed run samples what the uninterrupted one would.
    const sampler = new Sampler({ temperature: s.temperature, seed: (s.seed * 7919 + this.step) >>> 0 });
    try {
      const out: Rollout[][] = [];
      for (const task of problems) {
        const text = format.render([{ role: 'user', content: task.prompt }], { think });
        const prompt = format.encode(text), group: Rollout[] = [];
        for (let g = 0; g < s.group; g++) {
          seq.truncate(0);
          const r = await generateText(seq, model.tokenizer, prompt, { maxTokens: s.maxTokens, sampler });
          const reply = parseReply(format, text, r.text, think);
          const answer = r.finishReason === 'eog' && eos !== undefined ? [...r.tokens, eos] : r.tokens;
          group.push({ prompt, answer, reward: task.verify(reply.content) ? 1 : 0 });
        }
        out.push(group);
      }
      return out;
    } finally {
      seq.free();
      await model.close();
    }
  }

  /** One GRPO step: sample, score, and one update on the advantage-weighted answer log-likelihoods. */
  async trainStep(): Promise<GrpoReport> {
    const s = this.options.settings;
    const groups = await this.rollouts(this.problems(this.consumed, s.prompts));
    this.consumed += s.prompts;
    return this.learnFrom(groups);
  }

  /** The update of L from scored answers (groups of answers to the same prompt). */
  learnFrom(groups: readonly (readonly Rollout[])[]): GrpoReport {
    const params = this.options.params, total = groups.reduce((n, g) => n + g.length, 0);
    let rewardSum = 0, informative = 0, sampled = 0;
    for (const group of groups) {
      const adv = groupAdvantages(group.map((r) => r.reward));
      rewardSum += group.reduce((a, r) => a + r.reward, 0);
      sampled += group.reduce((a, r) => a + r.answer.length, 0);
      if (adv.every((a) => a === 0)) continue;
      informative++;
      group.forEach((r, i) => {
        const ids = [...r.prompt, ...r.answer];
        if (adv[i] === 0 || r.answer.length === 0) return;
        if (ids.length > this.train.config.contextLength + 1) return; // longer than the training context: skipped rather than cut
        const tp = new Tape(params.precision);
        // The mean answer-token cross-entropy is −(1/|o|) Σ log π: weighting it by A/(P·G) gives L's gradient.
        const l = this.train.loss(tp, ids, { mtpWeight: 0, indexerWeight: 0 }, new Uint8Array(ids.length).fill(1, r.prompt.length));
        tp.backward(l.loss, [adv[i] / total]);
      });
    }
    const { lr, gradNorm } = this.optimizer.update(); // with no gradient it only moves the schedule on
    return { step: this.step, reward: rewardSum / total, informative, sampled, lr, gradNorm };
  }

  /** The model in the V4 layout and the exact state (parameters, optimiser, position) in `dir`. */
  save(dir: string): void {
    const o = this.options;
    fs.mkdirSync(dir, { recursive: true });
    exportV4Checkpoint(dir, o.params, o.model);
    copyTokenizerFiles(this.policyDir, dir);
    writeTrainState(path.join(dir, TRAIN_STATE_FILE), o.params, this.optimizer.state(), {
      step: this.step, consumed: this.consumed, seed: o.settings.seed, source: this.sourceId, model: o.model,
      settings: { grpo: o.settings, optimizer: o.optimizer },
    });
  }

  /** Continues the GRPO run saved in `dir`. */
  static resume(dir: string, opts: Omit<GrpoOptions, 'params'>): GrpoTrainer {
    const file = path.join(dir, TRAIN_STATE_FILE), state = readTrainState(file);
    const t = new GrpoTrainer({ ...opts, params: state.params });
    if (state.meta.source !== t.sourceId) throw new Error(`${file}: the run was started on other problems (${state.meta.source}), not ${t.sourceId}`);
    t.optimizer.loadState(state.optimizer);
    t.consumed = state.meta.consumed;
    return t;
  }

  /** Removes the sampling checkpoint. */
  dispose(): void {
    fs.rmSync(this.policyDir, { recursive: true, force: true });
  }
}
