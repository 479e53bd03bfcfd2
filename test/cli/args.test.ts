// Flag parsing, interactive input assembly and `/` commands, and how answers with reasoning are shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, flag, unescape, UsageError } from '../../src/cli/args.js';
import { InputAssembler, parseCommand } from '../../src/cli/chat-input.js';
import { AnswerPrinter, type Out } from '../../src/cli/display.js';

const specs = {
  raw: { kind: 'boolean' },
  temperature: { kind: 'number', min: 0 },
  seed: { kind: 'int' },
  stop: { kind: 'list' },
  threads: { kind: 'int', min: 1, short: 't' },
  system: { kind: 'string' },
} as const;

test('flags: values after the flag or after =, short aliases, repeatable lists, positionals anywhere', () => {
  const a = parseArgs(['model.gguf', '--temperature', '0.5', 'hello', '--seed=-3', '-t', '2', '--stop', 'a', '--stop=b', '--raw', 'world'], specs);
  assert.deepEqual(a.positionals, ['model.gguf', 'hello', 'world']);
  assert.equal(flag.num(a, 'temperature'), 0.5);
  assert.equal(flag.num(a, 'seed'), -3);
  assert.equal(flag.num(a, 'threads'), 2);
  assert.deepEqual(flag.list(a, 'stop'), ['a', 'b']);
  assert.equal(flag.bool(a, 'raw'), true);
  assert.equal(flag.str(a, 'system'), undefined);
  // A value may start with a dash; after -- everything is positional; a negative number is a positional.
  const b = parseArgs(['--system', '-be brief-', 'm', '-5', '--', '--raw'], specs);
  assert.equal(flag.str(b, 'system'), '-be brief-');
  assert.deepEqual(b.positionals, ['m', '-5', '--raw']);
});

test('flag mistakes are UsageErrors naming the flag', () => {
  const bad: [string[], RegExp][] = [
    [['--nope'], /unknown flag --nope/],
    [['-x'], /unknown flag -x/],
    [['--seed'], /--seed needs a value/],
    [['--seed', '1.5'], /--seed needs a whole number, got "1.5"/],
    [['--temperature', 'warm'], /--temperature needs a number, got "warm"/],
    [['--temperature', ''], /--temperature needs a number/],
    [['--temperature', '-1'], /--temperature must be ≥ 0, got -1/],
    [['--threads', '0'], /--threads must be ≥ 1/],
    [['--raw=yes'], /--raw takes no value/],
  ];
  for (const [argv, message] of bad) {
    assert.throws(() => parseArgs(argv, specs), (e: unknown) => e instanceof UsageError && message.test(e.message), argv.join(' '));
  }
});

test('unescape: \\n \\t \\\\ \\xNN, unknown escapes kept', () => {
  assert.equal(unescape('a\\nb\\tc\\\\d\\x41\\q'), 'a\nb\tc\\dA\\q');
});

test('multi-line input: trailing backslash, """ blocks, single-line """…"""', () => {
  const a = new InputAssembler();
  assert.deepEqual(a.push('one \\'), { kind: 'more' });
  assert.equal(a.pending, true);
  assert.deepEqual(a.push('two'), { kind: 'done', text: 'one \ntwo' });
  assert.equal(a.pending, false);
  assert.deepEqual(a.push('"""first'), { kind: 'more' });
  assert.deepEqual(a.push('  second \\'), { kind: 'more' }); // a backslash inside a block is text
  assert.deepEqual(a.push('third"""'), { kind: 'done', text: 'first\n  second \\\nthird' });
  assert.deepEqual(a.push('"""'), { kind: 'more' });
  assert.deepEqual(a.push('x'), { kind: 'more' });
  assert.deepEqual(a.push('"""'), { kind: 'done', text: 'x\n' });
  assert.deepEqual(a.push('"""inline"""'), { kind: 'done', text: 'inline' });
  a.push('"""dropped');
  a.reset();
  assert.deepEqual(a.push('plain'), { kind: 'done', text: 'plain' });
});

test('/ commands', () => {
  assert.deepEqual(parseCommand('/help'), { name: 'help' });
  assert.deepEqual(parseCommand(' /bye '), { name: 'bye' });
  assert.deepEqual(parseCommand('/clear'), { name: 'clear' });
  assert.deepEqual(parseCommand('/stats'), { name: 'stats' });
  assert.deepEqual(parseCommand('/system You are  a pirate.'), { name: 'system', text: 'You are  a pirate.' });
  assert.deepEqual(parseCommand('/system'), { name: 'system', text: '' });
  assert.deepEqual(parseCommand('/set temperature 0.2'), { name: 'set', key: 'temperature', value: '0.2' });
  assert.deepEqual(parseCommand('/set'), { name: 'set', key: undefined, value: undefined });
  assert.deepEqual(parseCommand('/set seed'), { name: 'set', key: 'seed', value: undefined });
  assert.equal(parseCommand('hello /help'), undefined);
  assert.equal(parseCommand('//not a command'), undefined);
  assert.throws(() => parseCommand('/frob'), /unknown command \/frob \(\/help lists the commands\)/);
});

class Sink implements Out {
  text = '';
  constructor(readonly isTTY: boolean) {}
  write(t: string): void { this.text += t; }
}

test('reasoning on a terminal: dimmed between "Thinking..." and "...done thinking.", then the answer', () => {
  const out = new Sink(true), err = new Sink(false);
  const p = new AnswerPrinter(out, err, { splitReasoning: true });
  for (const c of ['<thi', 'nk>\nHmm', '.</think>', '\n\nYes.']) p.write(c);
  assert.deepEqual(p.end(), { answer: 'Yes.', reasoning: 'Hmm.' });
  assert.equal(out.text, '\x1b[2mThinking...\n\x1b[22m\x1b[2mHmm\x1b[22m\x1b[2m.\x1b[22m\x1b[2m\n...done thinking.\n\n\x1b[22mYes.');
  assert.equal(err.text, '');
});

test('reasoning into a pipe: stdout gets the answer alone, the reasoning goes to stderr', () => {
  const out = new Sink(false), err = new Sink(false);
  const p = new AnswerPrinter(out, err, { splitReasoning: true, startInReasoning: true });
  p.write('Hmm.\n</think>\n\nYes.');
  p.end();
  assert.equal(out.text, 'Yes.');
  assert.equal(err.text, 'Thinking...\nHmm.\n...done thinking.\n\n');
  // Raw: the text as it comes, tags and all.
  const raw = new Sink(false);
  const q = new AnswerPrinter(raw, err, { splitReasoning: false });
  q.write('<think>a</think>b');
  assert.deepEqual(q.end(), { answer: '<think>a</think>b', reasoning: '' });
  assert.equal(raw.text, '<think>a</think>b');
});
