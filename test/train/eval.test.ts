/**
 * `minke eval`: the scoring path with a scripted "oracle" model (right answers score 1, wrong ones
 * 0, a calculator call is run and its result fed back), and the command end to end on a tiny
 * synthetic DeepSeek-V4 checkpoint that carries its own trained tokenizer (accuracy ~0 there; the
 * output's shape is what is checked).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeSyntheticV4 } from '../../bench/synth-v4.js';
import type { Backend } from '../../src/kernels/backend.js';
import type { LanguageModel, Sequence } from '../../src/models/model.js';
import { tokenizerFromHF } from '../../src/tokenizer/from-hf.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { evaluateModel } from '../../src/train/eval.js';
import { generateTasks, renderTaskV4, TASK_NAMES, type Task } from '../../src/train/tasks/index.js';
import { trainBpe, writeTrainedTokenizer } from '../../src/train/tokenizer-train.js';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));

/** A small trained tokenizer over rendered tasks. */
function trainedTokenizer() {
  const docs = TASK_NAMES.flatMap((n) => generateTasks(n, 1, 30).flatMap((t) => [renderTaskV4(t, 'none').text, renderTaskV4(t, 'high').text]));
  return trainBpe(docs, { vocabSize: 800 });
}

/** Greedy-decodes `reply(prompt)` then EOS, whatever the logits would have been. */
class OracleSequence implements Sequence {
  private readonly tokens: number[] = [];
  private script: number[] = [];
  private promptLength = 0;

  constructor(private readonly tok: Tokenizer, private readonly reply: (prompt: string) => string, readonly capacity: number) {}

  get length(): number { return this.tokens.length; }

  async forward(tokens: readonly number[]): Promise<Float32Array> {
    if (this.tokens.length === 0) {
      this.script = [...this.tok.encode(this.reply(this.tok.decode([...tokens])), { parseSpecial: true }), this.tok.eos!];
      this.promptLength = tokens.length;
    }
    this.tokens.push(...tokens);
    const logits = new Float32Array(this.tok.vocabSize);
    logits[this.script[this.tokens.length - this.promptLength] ?? this.tok.eos!] = 1;
    return logits;
  }

  truncate(n: number): void { this.tokens.length = n; }
  free(): void {}
}

function oracleModel(tok: Tokenizer, reply: (prompt: string) => string): LanguageModel {
  return {
    description: {
      architecture: 'deepseek_v4', parameters: 0, weightBytes: {}, contextLength: 8192, stateBytesPerToken: 0,
      layers: 0, vocabSize: tok.vocabSize, details: {},
    },
    tokenizer: tok,
    backend: {} as Backend,
    newSequence: (opts) => new OracleSequence(tok, reply, opts?.contextLength ?? 8192),
    close: async () => {},
  };
}

const DSML = '｜DSML｜';

/** Replies to the tasks of `seed`: right, or each wrong (numbers off by one, chat off topic). */
function oracle(seed: number, n: number, think: boolean, wrong: boolean): { reply: (prompt: string) => string; calls: string[] } {
  const tasks = new Map<string, Task>();
  for (const name of TASK_NAMES) for (const t of generateTasks(name, seed, n)) tasks.set(t.prompt, t);
  const calls: string[] = [];
  const reply = (prompt: string): string => {
    const t = tasks.get(/<｜User｜>([\s\S]*?)<｜Assistant｜>/.exec(prompt)![1])!;
    const result = /<tool_result>([\s\S]*?)<\/tool_result>/.exec(prompt)?.[1];
    const thought = (r: string) => (think ? `${r}</think>` : '');
    if (t.toolUse && result === undefined) {
      const expr = t.toolUse.calls[0].arguments.expression;
      calls.push(expr);
      return thought(t.toolUse.callReasoning) +
        `\n\n<${DSML}tool_calls>\n<${DSML}invoke name="calculator">\n<${DSML}parameter name="expression" string="true">${expr}</${DSML}parameter>\n</${DSML}invoke>\n</${DSML}tool_calls>`;
    }
    const answer = t.toolUse ? result! : t.answer;
    if (!wrong) return thought(t.reasoning) + answer;
    return thought(t.reasoning) + (t.task === 'chat' ? 'Sorry, I have no idea.' : answer.replace(/-?\d+(?!.*\d)/, (d) => String(Number(d) + 1)));
  };
  return { reply, calls };
}

describe('evaluateModel', () => {
  const trained = trainedTokenizer();
  const tok = tokenizerFromHF(trained.tokenizerJson, trained.tokenizerConfig);

  for (const think of ['none', 'high'] as const) {
    it(`scores right answers 1 and wrong ones 0 (think ${think}), running calculator calls`, async () => {
      const right = oracle(8, 3, think !== 'none', false);
      const progress: string[] = [];
      const report = await evaluateModel(oracleModel(tok, right.reply), {
        tasks: TASK_NAMES, seed: 8, n: 3, think, onProgress: (t, d, n, c) => progress.push(`${t} ${d}/${n} ${c}`),
      });
      assert.deepEqual(Object.keys(report.tasks), TASK_NAMES);
      for (const name of TASK_NAMES) assert.deepEqual(report.tasks[name], { accuracy: 1, n: 3 }, name);
      assert.equal(report.overall, 1);
      assert.equal(right.calls.length, 3);
      assert.equal(progress.length, TASK_NAMES.length * 3);
      assert.equal(progress[2], 'arithmetic 3/3 3');

      const wrong = oracle(8, 3, think !== 'none', true);
      const bad = await evaluateModel(oracleModel(tok, wrong.reply), { tasks: ['arithmetic', 'chat', 'calculator'], seed: 8, n: 3, think });
      assert.deepEqual(bad, { tasks: { arithmetic: { accuracy: 0, n: 3 }, chat: { accuracy: 0, n: 3 }, calculator: { accuracy: 0, n: 3 } }, overall: 0 });
    });
  }

  it('counts a reply that never closes its reasoning as wrong, and refuses bad options', async () => {
    const endless = oracleModel(tok, () => 'thinking forever');
    const r = await evaluateModel(endless, { tasks: ['compare'], seed: 1, n: 2, think: 'high' });
    assert.deepEqual(r, { tasks: { compare: { accuracy: 0, n: 2 } }, overall: 0 });
    await assert.rejects(evaluateModel(endless, { tasks: ['compare'], seed: 1, n: 0, think: 'high' }), /n must be a whole number ≥ 1/);
    await assert.rejects(evaluateModel(endless, { tasks: ['poetry'], seed: 1, n: 1, think: 'high' }), /unknown task "poetry"/);
  });
});

describe('minke eval', () => {
  let root: string;
  let model: string;

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-eval-'));
    model = path.join(root, 'nano');
    const trained = trainedTokenizer();
    const config = JSON.parse(fs.readFileSync(shared('fixtures/deepseek-v4-tiny/config.json'), 'utf8'));
    writeSyntheticV4(model, { ...config, vocab_size: trained.vocabSize }, { seed: 3 });
    writeTrainedTokenizer(model, trained);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const minke = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, 'eval', ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, MINKE_DEBUG: '' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('prints {"tasks": {task: {accuracy, n}}, "overall"} with --json', () => {
    for (const [think, tasks, n, want] of [['high', 'arithmetic,calculator', 2, ['arithmetic', 'calculator']], ['none', 'all', 1, TASK_NAMES]] as const) {
      const r = minke([model, '--tasks', tasks, '--seed', '5', '--n', String(n), '--think', think, '--json', '--max-tokens', '6', '--threads', '1']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { tasks: Record<string, { accuracy: number; n: number }>; overall: number };
      assert.deepEqual(Object.keys(out), ['tasks', 'overall']);
      assert.deepEqual(Object.keys(out.tasks), want);
      for (const s of Object.values(out.tasks)) {
        assert.deepEqual(Object.keys(s), ['accuracy', 'n']);
        assert.equal(s.n, n);
        assert.ok(s.accuracy >= 0 && s.accuracy <= 1);
      }
      assert.ok(out.overall >= 0 && out.overall <= 1);
      assert.match(r.stderr, new RegExp(`eval ${want[0]} \\(think ${think}\\): ${n}/${n}`));
    }
  });

  it('prints a table without --json, and says what is wrong', () => {
    const r = minke([model, '--tasks', 'compare', '--n', '1', '--max-tokens', '4', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^task +accuracy +n\ncompare +\d+\.\d% +1\noverall +\d+\.\d%\n$/);
    assert.equal(r.stderr, '');
    const think = minke([model, '--think', 'medium']);
    assert.equal(think.code, 2);
    assert.match(think.stderr, /--think is one of none, low, high, max/);
    const tasks = minke([model, '--tasks', 'arithmetic,poetry']);
    assert.equal(tasks.code, 2);
    assert.match(tasks.stderr, /unknown task "poetry"/);
    // Without MODEL: the shipped model.
    const shipped = minke(['--tasks', 'compare', '--n', '1', '--max-tokens', '4', '--json', '--quiet']);
    assert.equal(shipped.code, 0, shipped.stderr);
    assert.equal((JSON.parse(shipped.stdout) as { tasks: Record<string, { n: number }> }).tasks.compare.n, 1);
  });
});
