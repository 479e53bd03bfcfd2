/**
 * Training data from the task generators (src/train/task-data.ts) and loss masking: the chat
 * format's mask covers exactly the assistant's text (decoded back and compared with renderTaskV4's
 * reply segments), the plain-text format is the trace between BOS and EOS, sources are a pure
 * function of (seed, index), the held-out eval seed is refused; the masked loss equals the mean
 * cross-entropy over the masked targets computed from the logits by hand; a toy model fine-tuned
 * a few steps lowers that loss on its own data, and the whole recipe runs through `minke train
 * --phase` with `minke eval` reading the result.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tokenizerFromHF } from '../../src/tokenizer/index.js';
import { Tape } from '../../src/train/autograd.js';
import { v4HFConfig } from '../../src/train/checkpoint.js';
import { sequenceIds, sequenceMask, type MaskedSequence } from '../../src/train/data.js';
import { EVAL_DEFAULT_SEED } from '../../src/train/eval.js';
import { parseRecipe } from '../../src/train/recipe.js';
import { checkTrainingSeed, taskCorpus, taskPlainText, TaskSequences } from '../../src/train/task-data.js';
import { generateTasks, renderTaskV4, TASK_NAMES } from '../../src/train/tasks/index.js';
import { trainBpe, writeTrainedTokenizer } from '../../src/train/tokenizer-train.js';
import { parseTrainConfig } from '../../src/train/train-config.js';
import { Trainer } from '../../src/train/trainer.js';
import { V4TrainModel } from '../../src/train/v4-train-model.js';
import { initV4Params } from '../../src/train/v4-train-params.js';
import { v4ConfigFromHF } from '../../src/models/deepseek-v4-config.js';
import { RUNNABLE_MODEL } from './toy-v4.js';

const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-task-data-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// A small tokenizer trained on task text (seed 1; the data below uses other seeds).
const trained = trainBpe(taskCorpus({ tasks: TASK_NAMES, seed: 1, modes: { none: 1, high: 1, max: 1 } }, 20), { vocabSize: 640 });
const tokenizer = tokenizerFromHF(trained.tokenizerJson, trained.tokenizerConfig);
const T = TASK_NAMES.length;

describe('task data', () => {
  it('chat format: the mask covers exactly the assistant\'s text; the ids are the whole conversation', () => {
    const src = new TaskSequences(tokenizer, { tasks: TASK_NAMES, seed: 5, format: 'chat', modes: { none: 1, high: 1, max: 1 }, maxLength: 10_000 });
    const seen = new Set<string>();
    for (let i = 0; i < 3 * T; i++) {
      const s = src.sequence(i) as MaskedSequence;
      // Problem ⌊i/T⌋ of task i mod T under the seed, in the mode the source drew.
      const task = generateTasks(TASK_NAMES[i % T], 5, 1, {}, Math.floor(i / T))[0];
      const { mode } = src.example(i);
      seen.add(mode);
      const segs = renderTaskV4(task, mode).segments;
      const reply = segs.filter((g) => g.train).map((g) => g.text).join('');
      const prompt = segs.filter((g) => !g.train).map((g) => g.text).join('');
      assert.equal(s.ids.length, s.mask.length);
      assert.equal(tokenizer.decode(s.ids.filter((_, t) => s.mask[t])), reply, `sequence ${i}: masked tokens`);
      assert.equal(tokenizer.decode(s.ids.filter((_, t) => !s.mask[t])), prompt, `sequence ${i}: unmasked tokens`);
      assert.equal(tokenizer.decode(s.ids), renderTaskV4(task, mode).text);
      assert.equal(s.ids[0], tokenizer.bos);
      assert.equal(s.mask[0], 0);
      assert.equal(s.ids.at(-1), tokenizer.eos, 'the reply ends in EOS, a target');
      assert.equal(s.mask.at(-1), 1);
    }
    assert.deepEqual([...seen].sort(), ['high', 'max', 'none']);
  });

  it('text format: BOS, the plain trace, EOS, no mask; cut to maxLength', () => {
    const src = new TaskSequences(tokenizer, { tasks: TASK_NAMES, seed: 5, format: 'text', maxLength: 10_000 });
    for (let i = 0; i < T; i++) {
      const s = src.sequence(i);
      assert.equal(sequenceMask(s), undefined);
      const ids = sequenceIds(s), task = generateTasks(TASK_NAMES[i], 5, 1, {}, 0)[0];
      assert.equal(ids[0], tokenizer.bos);
      assert.equal(ids.at(-1), tokenizer.eos);
      assert.equal(tokenizer.decode(ids.slice(1, -1)), taskPlainText(task));
      assert.ok(!taskPlainText(task).includes('<think>') && !taskPlainText(task).includes('｜User｜'));
    }
    const cut = new TaskSequences(tokenizer, { tasks: TASK_NAMES, seed: 5, format: 'text', maxLength: 12 });
    assert.deepEqual(cut.sequence(3), sequenceIds(src.sequence(3)).slice(0, 12));
    const chatCut = new TaskSequences(tokenizer, { tasks: TASK_NAMES, seed: 5, format: 'chat', maxLength: 12 }).sequence(3) as MaskedSequence;
    assert.equal(chatCut.ids.length, 12);
    assert.equal(chatCut.mask.length, 12);
  });

  it('a pure function of (seed, index); another seed, other problems; the eval seed is refused', () => {
    const opts = { tasks: ['arithmetic', 'units'], seed: 9, format: 'chat' as const, modes: { none: 1, high: 1 }, maxLength: 4096 };
    const a = new TaskSequences(tokenizer, opts), b = new TaskSequences(tokenizer, opts);
    const order = [7, 0, 3, 7, 1];
    assert.deepEqual(order.map((i) => a.sequence(i)), order.map((i) => b.sequence(i)).map((x) => x));
    assert.equal(a.id, b.id);
    const c = new TaskSequences(tokenizer, { ...opts, seed: 10 });
    assert.notEqual(c.id, a.id);
    assert.notDeepEqual([0, 1, 2, 3].map((i) => sequenceIds(c.sequence(i))), [0, 1, 2, 3].map((i) => sequenceIds(a.sequence(i))));
    assert.throws(() => new TaskSequences(tokenizer, { ...opts, seed: EVAL_DEFAULT_SEED }), /seed 424242 is minke eval's held-out seed/);
    assert.throws(() => taskCorpus({ tasks: TASK_NAMES, seed: EVAL_DEFAULT_SEED }, 1), /held-out seed/);
    assert.throws(() => checkTrainingSeed(EVAL_DEFAULT_SEED), /held-out seed/);
    assert.throws(() => new TaskSequences(tokenizer, { ...opts, modes: { low: 1 } as never }), /unknown reasoning mode "low"/);
    assert.throws(() => new TaskSequences(tokenizer, { ...opts, tasks: ['nope'] }), /unknown task "nope"/);
  });

  it('run config: "data.tasks" parsed, paths relative to the file, bad values named', () => {
    const file = path.join(os.tmpdir(), 'runs', 'a.json');
    const c = parseTrainConfig({ model: RUNNABLE_MODEL, data: { tasks: { tokenizer: 'tok', tasks: ['chat', 'units'], format: 'text', maxLength: 64 } } }, file);
    assert.equal(c.tokens, undefined);
    assert.deepEqual(c.tasks, { tokenizer: path.join(os.tmpdir(), 'runs', 'tok'), tasks: ['chat', 'units'], format: 'text', seed: undefined, maxLength: 64, modes: undefined, difficulty: {} });
    const bad = (data: unknown, msg: RegExp) => assert.throws(() => parseTrainConfig({ model: RUNNABLE_MODEL, data }, file), msg);
    bad({ tasks: { tokenizer: 't', format: 'json' } }, /"data\.tasks\.format" must be "chat" or "text"/);
    bad({ tasks: { tokenizer: 't', tasks: 'nope' } }, /"data\.tasks\.tasks": unknown task "nope"/);
    bad({ tasks: { tasks: 'all' } }, /"data\.tasks\.tokenizer" must be the directory/);
    bad({ tasks: { tokenizer: 't', mode: {} } }, /"data\.tasks" has unknown key "mode"/);
    bad({ tokens: 'x', tasks: { tokenizer: 't' } }, /one of "tokens" and "tasks"/);

    const recipe = { tokenizer: { vocabSize: 512 }, model: { ...RUNNABLE_MODEL, vocab_size: 512 }, pretrain: {}, sft: {} };
    assert.deepEqual(parseRecipe(recipe, file).tokenizer, { vocabSize: 512, seed: 1, perTask: 200, tasks: TASK_NAMES, modes: undefined, difficulty: undefined });
    const badRecipe = (json: unknown, msg: RegExp) => assert.throws(() => parseRecipe(json, file), msg);
    badRecipe({ ...recipe, finetune: {} }, /the recipe has unknown key "finetune"/);
    badRecipe({ ...recipe, model: { ...RUNNABLE_MODEL, vocab_size: 256 } }, /"model\.vocab_size" 256 is smaller than "tokenizer\.vocabSize" 512/);
    badRecipe({ ...recipe, sft: { from: 'x' } }, /"sft" takes no "model" or "from"/);
    badRecipe({ ...recipe, tokenizer: { vocabSize: 512, size: 1 } }, /"tokenizer" has unknown key "size"/);
  });
});

// The RUNNABLE toy widths with the small tokenizer's vocabulary.
const MODEL = { ...RUNNABLE_MODEL, vocab_size: 640 };
const config = v4ConfigFromHF(v4HFConfig(MODEL), 'toy');

/** Mean −log p(target) over the masked targets, from the logits alone. */
function maskedCe(model: V4TrainModel, s: MaskedSequence): number {
  const logits = model.forward(new Tape('f32', false), s.ids.slice(0, -1)).logits.data, V = config.vocab;
  let sum = 0, n = 0;
  for (let t = 1; t < s.ids.length; t++) {
    if (!s.mask[t]) continue;
    const row = logits.subarray((t - 1) * V, t * V);
    let max = -Infinity, z = 0;
    for (const v of row) max = Math.max(max, v);
    for (const v of row) z += Math.exp(v - max);
    sum += max + Math.log(z) - row[s.ids[t]];
    n++;
  }
  return sum / n;
}

describe('masked loss', () => {
  const short = { tasks: ['arithmetic', 'compare', 'chat'], seed: 7, format: 'chat' as const, modes: { none: 1 }, maxLength: 96 };

  it('the loss is the mean cross-entropy over the masked targets (MTP masked alike); an all-ones mask is no mask', () => {
    const model = new V4TrainModel(initV4Params(config, 3));
    const s = new TaskSequences(tokenizer, short).sequence(1) as MaskedSequence;
    const masked = model.loss(new Tape('f32', false), s.ids, { mtpWeight: 0, indexerWeight: 0 }, s.mask);
    assert.ok(Math.abs(masked.ce - maskedCe(model, s)) < 1e-4, `${masked.ce} vs ${maskedCe(model, s)}`);
    const ones = new Uint8Array(s.ids.length).fill(1);
    const plain = model.loss(new Tape('f32', false), s.ids), full = model.loss(new Tape('f32', false), s.ids, {}, ones);
    assert.equal(full.ce, plain.ce);
    assert.equal(full.mtp, plain.mtp);
    assert.notEqual(masked.ce, plain.ce);
    // MTP row t predicts token t + 2: with only the last token masked in, one MTP target remains.
    const last = new Uint8Array(s.ids.length);
    last[s.ids.length - 1] = 1;
    const one = model.loss(new Tape('f32', false), s.ids, { mtpWeight: 0.3 }, last);
    const mtpLogits = model.forward(new Tape('f32', false), s.ids.slice(0, -1), { mtpIds: s.ids.slice(1) }).mtpLogits!.data;
    const V = config.vocab, row = mtpLogits.subarray((s.ids.length - 3) * V, (s.ids.length - 2) * V);
    let max = -Infinity, z = 0;
    for (const v of row) max = Math.max(max, v);
    for (const v of row) z += Math.exp(v - max);
    assert.ok(Math.abs(one.mtp - (max + Math.log(z) - row[s.ids.at(-1)!])) < 1e-4);
    assert.throws(() => model.loss(new Tape('f32', false), s.ids, {}, ones.subarray(1)), /mask of \d+ entries for \d+ tokens/);
  });

  it('a few fine-tuning steps lower the loss on the reply tokens', () => {
    const source = new TaskSequences(tokenizer, short);
    const trainer = new Trainer({ params: initV4Params(config, 4), model: MODEL, source, batch: 3, seed: 4, optimizer: { lr: 1e-2, totalSteps: 8, warmup: 1 } });
    const probe = [0, 1, 2, 3, 4, 5].map((i) => source.sequence(i) as MaskedSequence);
    const mean = () => probe.reduce((a, s) => a + maskedCe(trainer.model, s), 0) / probe.length;
    const before = mean();
    const reports = trainer.run(8);
    const afterTraining = mean();
    // Each step's token count is the masked targets only.
    const counted = [0, 1, 2].map((i) => probe[i].mask.slice(1).reduce((a, m) => a + m, 0)).reduce((a, b) => a + b);
    assert.equal(reports[0].tokens, counted);
    assert.ok(afterTraining < before - 1, `masked loss ${before.toFixed(3)} → ${afterTraining.toFixed(3)}`);
  });
});

describe('minke train --phase, then minke eval', () => {
  function minke(args: string[]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, MINKE_DEBUG: '' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('tokenizer → pretrain → sft → grpo into DIR/<phase>; the result is a model minke eval scores', () => {
    const recipe = path.join(dir, 'recipe.json'), out = path.join(dir, 'run');
    const data = (format: string, seed: number) => ({ tasks: { tasks: ['arithmetic', 'chat'], seed, format, modes: { none: 1 }, maxLength: 64 } });
    fs.writeFileSync(recipe, JSON.stringify({
      tokenizer: { vocabSize: 512, tasks: ['arithmetic', 'chat'], seed: 1, perTask: 30 },
      model: { ...RUNNABLE_MODEL, vocab_size: 512 },
      pretrain: { data: data('text', 2), steps: 1, batch: 1, optimizer: { lr: 0.01 } },
      sft: { data: data('chat', 3), steps: 2, batch: 1, optimizer: { lr: 0.01 } },
      grpo: { tasks: 'arithmetic', seed: 4, prompts: 1, group: 2, maxTokens: 6, steps: 1 },
    }));
    const early = minke(['train', '--config', recipe, '--out', out, '--phase', 'sft']);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /holds no model yet: run --phase pretrain first/);
    const noPhase = minke(['train', '--config', recipe, '--out', out]);
    assert.equal(noPhase.code, 2);
    assert.match(noPhase.stderr, /is a recipe: give --phase tokenizer\|pretrain\|sft\|grpo/);

    const tok = minke(['train', '--config', recipe, '--out', out, '--phase', 'tokenizer']);
    assert.equal(tok.code, 0, tok.stderr);
    assert.ok(fs.existsSync(path.join(out, 'tokenizer', 'tokenizer.json')));
    for (const phase of ['pretrain', 'sft']) {
      const r = minke(['train', '--config', recipe, '--out', out, '--phase', phase]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`on tasks arithmetic,chat \\(${phase === 'sft' ? 'chat, modes none 1, high 0, max 0, seed 3' : 'text, seed 2'}, ≤ 64 tokens`));
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(fs.existsSync(path.join(out, phase, f)), `${phase}/${f}`);
    }
    const grpo = minke(['train', '--config', recipe, '--out', out, '--phase', 'grpo', '--threads', '1']);
    assert.equal(grpo.code, 0, grpo.stderr);
    assert.match(grpo.stderr, /GRPO on arithmetic \(seed 4\): 1 problems × 2 answers per step in think high, step 0 → 1/);
    assert.match(grpo.stderr, /step 1\/1  reward \d\.\d{3}  groups [01]\/1/);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'train-state.safetensors']) assert.ok(fs.existsSync(path.join(out, 'grpo', f)), `grpo/${f}`);
    const again = minke(['train', '--config', recipe, '--out', out, '--phase', 'grpo']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a training run: pass --resume/);
    const ev = minke(['eval', path.join(out, 'grpo'), '--tasks', 'arithmetic,chat', '--n', '1', '--seed', '11', '--max-tokens', '8', '--threads', '1', '--json', '--quiet']);
    assert.equal(ev.code, 0, ev.stderr);
    const report = JSON.parse(ev.stdout) as { tasks: Record<string, { accuracy: number; n: number }>; overall: number };
    assert.deepEqual(Object.keys(report.tasks), ['arithmetic', 'chat']);
    for (const s of Object.values(report.tasks)) assert.ok(s.n === 1 && s.accuracy >= 0 && s.accuracy <= 1);
    assert.ok(report.overall >= 0 && report.overall <= 1);
  });

  it('a model whose tokenizer has more ids than vocab_size is refused, naming both sizes', () => {
    const model = path.join(dir, 'run', 'sft'), small = path.join(dir, 'small');
    fs.mkdirSync(small, { recursive: true });
    for (const f of fs.readdirSync(model)) fs.copyFileSync(path.join(model, f), path.join(small, f));
    // The 640-id tokenizer of the tests above in a model of vocab_size 512.
    assert.ok(trained.vocabSize > 512);
    writeTrainedTokenizer(small, trained);
    const r = minke(['eval', small, '--tasks', 'chat', '--n', '1', '--json', '--quiet']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`the tokenizer has ${trained.vocabSize} tokens but config\\.json's vocab_size is 512`));
  });
});
