/**
 * GRPO (src/train/grpo.ts): the group advantages are the standardised rewards; one update moves
 * probability towards the rewarded answer and away from the unrewarded one, in proportion to the
 * advantages, and a group whose answers all score alike teaches nothing; the problem stream refuses
 * the held-out seed. The whole phase (sample with the inference engine, score, update, save) runs
 * through `minke train --phase grpo` in the CLI test of the recipe.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { v4ConfigFromHF } from '../../src/models/deepseek-v4-config.js';
import { Tape } from '../../src/train/autograd.js';
import { v4HFConfig } from '../../src/train/checkpoint.js';
import { EVAL_DEFAULT_SEED } from '../../src/train/eval.js';
import { GrpoTrainer, groupAdvantages, type GrpoSettings, type Rollout } from '../../src/train/grpo.js';
import { V4TrainModel } from '../../src/train/v4-train-model.js';
import { initV4Params } from '../../src/train/v4-train-params.js';
import { TOY_MODEL } from './toy-v4.js';

const config = v4ConfigFromHF(v4HFConfig(TOY_MODEL), 'toy config');
const tokenizerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-grpo-test-'));
const trainers: GrpoTrainer[] = [];
after(() => {
  for (const t of trainers) t.dispose();
  fs.rmSync(tokenizerDir, { recursive: true, force: true });
});

const SETTINGS: GrpoSettings = { tasks: ['arithmetic'], seed: 4, prompts: 1, group: 2, temperature: 1, maxTokens: 8 };

function trainer(settings: GrpoSettings = SETTINGS): GrpoTrainer {
  const t = new GrpoTrainer({
    params: initV4Params(config, 11), model: v4HFConfig(TOY_MODEL), tokenizerDir,
    optimizer: { lr: 0.01, warmup: 0, schedule: 'constant', weightDecay: 0, totalSteps: 10 }, settings,
  });
  trainers.push(t);
  return t;
}

/** Mean log-probability of `answer`'s tokens after `prompt` under the trainer's current weights. */
function answerLogProb(t: GrpoTrainer, prompt: number[], answer: number[]): number {
  const ids = [...prompt, ...answer], mask = new Uint8Array(ids.length).fill(1, prompt.length);
  return -t.train.loss(new Tape('f32', false), ids, { mtpWeight: 0, indexerWeight: 0 }, mask).ce;
}

describe('GRPO', () => {
  it('standardises rewards within a group', () => {
    const a = groupAdvantages([1, 0, 0, 1]);
    // mean 0.5, population std 0.5 → ±1 (less the ε in the denominator)
    a.forEach((x, i) => assert.ok(Math.abs(x - (i === 0 || i === 3 ? 1 : -1)) < 1e-3, `advantage ${i} = ${x}`));
    assert.deepEqual(groupAdvantages([1, 1, 1]), [0, 0, 0]);
    assert.deepEqual(groupAdvantages([0, 0]), [0, 0]);
    const b = groupAdvantages([1, 0, 0, 0]);
    assert.ok(Math.abs(b.reduce((s, x) => s + x, 0)) < 1e-9, 'advantages sum to zero');
    assert.ok(b[0] > 0 && b[1] < 0);
  });

  it('moves probability towards the rewarded answer and away from the other', () => {
    const t = trainer();
    const prompt = [0, 5, 9, 13], good = [20, 21, 22, 1], bad = [30, 31, 32, 1];
    const before = [answerLogProb(t, prompt, good), answerLogProb(t, prompt, bad)];
    const rollouts: Rollout[] = [{ prompt, answer: good, reward: 1 }, { prompt, answer: bad, reward: 0 }];
    for (let k = 0; k < 3; k++) {
      const r = t.learnFrom([rollouts]);
      assert.equal(r.informative, 1);
      assert.equal(r.reward, 0.5);
      assert.equal(r.sampled, 8);
      assert.ok(r.gradNorm > 0);
    }
    const afterwards = [answerLogProb(t, prompt, good), answerLogProb(t, prompt, bad)];
    assert.ok(afterwards[0] > before[0] + 0.05, `rewarded answer: ${before[0]} → ${afterwards[0]}`);
    assert.ok(afterwards[1] < before[1] - 0.05, `unrewarded answer: ${before[1]} → ${afterwards[1]}`);
  });

  it('learns nothing from a group whose answers all score the same', () => {
    const t = trainer(), model = new V4TrainModel(t.options.params);
    const prompt = [0, 5, 9], answer = [20, 21, 1];
    const before = answerLogProb(t, prompt, answer);
    const r = t.learnFrom([[{ prompt, answer, reward: 1 }, { prompt, answer: [22, 1], reward: 1 }]]);
    assert.equal(r.informative, 0);
    assert.equal(r.gradNorm, 0);
    assert.equal(t.step, 1, 'the schedule still moves on');
    assert.equal(answerLogProb(t, prompt, answer), before);
    assert.equal(model.params, t.options.params);
  });

  it('draws problems as a pure function of the position, never from the held-out seed', () => {
    const t = trainer({ ...SETTINGS, tasks: ['arithmetic', 'units'] });
    const a = t.problems(3, 4), b = t.problems(5, 2);
    assert.deepEqual(a.slice(2).map((p) => p.prompt), b.map((p) => p.prompt));
    assert.deepEqual(a.map((p) => p.task), ['units', 'arithmetic', 'units', 'arithmetic']);
    assert.throws(() => trainer({ ...SETTINGS, seed: EVAL_DEFAULT_SEED }), /held-out/);
    assert.throws(() => trainer({ ...SETTINGS, group: 1 }), /at least 2 answers/);
    assert.throws(() => trainer({ ...SETTINGS, temperature: 0 }), /temperature/);
  });
});
