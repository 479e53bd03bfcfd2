/**
 * Byte-level BPE training: the merge sequence of a small corpus worked out by hand, the same merges
 * as a naive trainer that recounts every pair each step, the id layout, and the written
 * tokenizer.json as minke's loader reads it (round trips of arbitrary UTF-8, V4 special tokens and
 * the V4 chat encoding as single ids, a model directory's own tokenizer winning).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { encodeV4Messages, V4_THINK_MAX_PREFIX } from '../../src/chat/deepseek-v4-encoding.js';
import { deepseekTokenizer } from '../../src/tokenizer/deepseek.js';
import { deepseekV4AddedTokens } from '../../src/tokenizer/deepseek-v4-added-tokens.js';
import { tokenizerFromHF } from '../../src/tokenizer/from-hf.js';
import { preTypeByName, preTypeByPatterns } from '../../src/tokenizer/pre-types.js';
import { makeSplitter } from '../../src/tokenizer/regex-split.js';
import { TokenType } from '../../src/tokenizer/types.js';
import { generateTasks, renderTaskV4, TASK_NAMES } from '../../src/train/tasks/index.js';
import { minimumVocabSize, trainBpe, writeTrainedTokenizer } from '../../src/train/tokenizer-train.js';
import { rng } from '../support/rng.js';

// The classic BPE example. Pieces (DeepSeek-V3 pre-tokenizer, Ġ = space): low ×1, Ġlow ×4,
// Ġlower ×2, Ġnewest ×6, Ġwidest ×3. By hand, most frequent pair first, ties to the smaller left
// then right text (JS string order, so ASCII letters before 'Ġ' U+0120):
//   e s 9 = s t 9 → 'e s'; es t 9; l o 7 = o w 7 → 'l o'; lo w 7; then at 6: e w < n e < w es < Ġ …
//   → 'e w'; ew est (6, 'ew' < 'n' < 'Ġ'); n ewest; Ġ low (6, 'low' < 'newest'); Ġ newest;
//   at 3: d est < i d < w i < Ġ w → 'd est'; i dest; w idest; Ġ widest; at 2: e r < Ġlow e → 'e r';
//   Ġlow er; everything left occurs once.
const CLASSIC = 'low low low low low lower lower newest newest newest newest newest newest widest widest widest';
const CLASSIC_MERGES = ['e s', 'es t', 'l o', 'lo w', 'e w', 'ew est', 'n ewest', 'Ġ low', 'Ġ newest', 'd est', 'i dest',
  'w idest', 'Ġ widest', 'e r', 'Ġlow er'];

const NAMED = deepseekV4AddedTokens().filter((t) => !/place▁holder▁no|place_holder_mm_span/.test(t.content));

/** GPT-2's byte → character table, written out independently of the tokenizer module. */
function gpt2Chars(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return out;
}

/** Reference trainer: recount every pair of every word before each merge. */
function naiveMerges(corpus: string, merges: number): string[] {
  const chars = gpt2Chars();
  // Single digits first, then DeepSeek-V3's pre-tokenizer (the nano tokenizer's documented split).
  const split = makeSplitter(['\\p{N}', ...preTypeByName('deepseek-v3').patterns]);
  const words = new Map<string, number>();
  for (const p of split(corpus)) words.set(p, (words.get(p) ?? 0) + 1);
  let syms = [...words].map(([w, n]) => ({ s: [...new TextEncoder().encode(w)].map((b) => chars[b]), n }));
  const out: string[] = [];
  for (let k = 0; k < merges; k++) {
    const counts = new Map<string, { a: string; b: string; c: number }>();
    for (const { s, n } of syms) {
      for (let i = 0; i + 1 < s.length; i++) {
        const key = `${s[i]}\u0000${s[i + 1]}`;
        const e = counts.get(key) ?? { a: s[i], b: s[i + 1], c: 0 };
        e.c += n;
        counts.set(key, e);
      }
    }
    const best = [...counts.values()].sort((x, y) => y.c - x.c || (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : x.b > y.b ? 1 : 0))[0];
    if (!best || best.c < 2) break;
    out.push(`${best.a} ${best.b}`);
    syms = syms.map(({ s, n }) => {
      const t: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === best.a && s[i + 1] === best.b) { t.push(best.a + best.b); i++; } else t.push(s[i]);
      }
      return { s: t, n };
    });
  }
  return out;
}

/** Text of a few hundred words drawn from a small random vocabulary (so pairs repeat). */
function randomCorpus(seed: number, words: number): string {
  const r = rng(seed);
  const alphabet = 'aeioustnrlkm日本🙂é';
  const vocab = Array.from({ length: 40 }, () => Array.from({ length: 1 + Math.floor(r() * 6) }, () => [...alphabet][Math.floor(r() * [...alphabet].length)]).join(''));
  const seps = [' ', ' ', ' ', ', ', '\n', '. ', ' 42 ', ' 1234567 '];
  let s = '';
  for (let i = 0; i < words; i++) s += vocab[Math.floor(r() * vocab.length)] + seps[Math.floor(r() * seps.length)];
  return s;
}

describe('BPE training', () => {
  it('learns the hand-computed merge sequence', () => {
    const t = trainBpe(CLASSIC, { vocabSize: 4096 });
    assert.deepEqual(t.merges, CLASSIC_MERGES);
    assert.equal(t.vocabSize, minimumVocabSize() + CLASSIC_MERGES.length);
    const five = trainBpe(CLASSIC, { vocabSize: minimumVocabSize() + 5 });
    assert.deepEqual(five.merges, CLASSIC_MERGES.slice(0, 5));
    const vocab = (five.tokenizerJson.model as { vocab: Record<string, number> }).vocab;
    // Merged tokens follow the 3 specials and 256 bytes, in learning order.
    assert.deepEqual(['es', 'est', 'lo', 'low', 'ew'].map((t) => vocab[t]), [259, 260, 261, 262, 263]);
  });

  it('merges exactly like a trainer that recounts every pair', () => {
    for (const seed of [1, 2, 3]) {
      const corpus = randomCorpus(seed, 600);
      const want = naiveMerges(corpus, 120);
      const got = trainBpe(corpus, { vocabSize: minimumVocabSize() + 120 }).merges;
      assert.deepEqual(got, want, `seed ${seed}`);
    }
  });

  it('is deterministic and stops when no pair repeats', () => {
    const corpus = randomCorpus(9, 400);
    const a = trainBpe(corpus, { vocabSize: 5000 }), b = trainBpe([corpus], { vocabSize: 5000 });
    assert.equal(JSON.stringify(a.tokenizerJson), JSON.stringify(b.tokenizerJson));
    assert.ok(a.vocabSize < 5000);
    assert.equal(trainBpe(corpus, { vocabSize: 5000, minFrequency: 1 }).merges.length > a.merges.length, true);
  });

  it('lays out ids as DeepSeek does: specials, bytes in GPT-2 order, merges, then V4 named tokens', () => {
    const t = trainBpe(CLASSIC, { vocabSize: 4096 });
    const vocab = (t.tokenizerJson.model as { vocab: Record<string, number> }).vocab;
    const chars = gpt2Chars();
    assert.equal(vocab['<｜begin▁of▁sentence｜>'], 0);
    assert.equal(vocab['<｜end▁of▁sentence｜>'], 1);
    assert.equal(vocab['<｜▁pad▁｜>'], 2);
    assert.equal(vocab['!'], 3); // byte 0x21, first of GPT-2's order
    assert.equal(vocab[chars[0xff]], 3 + 187); // the last printable byte: 94 + 12 + 82 printable bytes
    assert.equal(vocab[chars[0x00]], 3 + 188); // then the others from byte 0
    assert.equal(vocab[chars[0x20]], 3 + 188 + 32); // space, 'Ġ'
    const added = t.tokenizerJson.added_tokens as { id: number; content: string; special: boolean }[];
    assert.equal(added.length, NAMED.length);
    assert.deepEqual(added.map((a) => a.content), NAMED.map((n) => n.content));
    const ids = added.map((a) => a.id);
    assert.deepEqual(ids.slice(0, 3), [0, 1, 2]);
    assert.deepEqual(ids.slice(3), Array.from({ length: NAMED.length - 3 }, (_, i) => 259 + CLASSIC_MERGES.length + i));
    assert.equal(t.vocabSize, 259 + CLASSIC_MERGES.length + NAMED.length - 3);
    const pre = (t.tokenizerJson.pre_tokenizer as { pretokenizers: { type: string; pattern?: { Regex: string } }[] }).pretokenizers;
    const splits = pre.filter((p) => p.type === 'Split').map((p) => p.pattern!.Regex);
    assert.equal(splits[0], '\\p{N}');
    assert.equal(preTypeByPatterns(splits.slice(1))?.name, 'deepseek-v3');
    assert.throws(() => trainBpe(CLASSIC, { vocabSize: minimumVocabSize() - 1 }), /vocabSize must be an integer ≥ 324/);
    assert.throws(() => trainBpe(CLASSIC, { vocabSize: 400, minFrequency: 0 }), /minFrequency/);
  });
});

describe('a trained tokenizer.json in minke\'s loader', () => {
  const corpus = `${randomCorpus(4, 2000)} The sum 12345 + 678 = 13023. 世界你好 🙂🙂 <think>step</think>${' done'.repeat(6)}`;
  const trained = trainBpe(corpus, { vocabSize: 700 });
  const tok = tokenizerFromHF(trained.tokenizerJson, trained.tokenizerConfig);

  it('has the trained size, V4 BOS/EOS and no BOS added by encode', () => {
    assert.equal(tok.vocabSize, trained.vocabSize);
    assert.equal(tok.bos, 0);
    assert.equal(tok.eos, 1);
    assert.ok(tok.eog.has(1));
    assert.equal(tok.addBos, false);
    assert.deepEqual(tok.encode(''), []);
  });

  it('round-trips arbitrary UTF-8: emoji, CJK, marks, odd whitespace, control bytes', () => {
    const fixed = ['Hello, world!', '日本語のテキストと中文', '🙂👍🏽👨‍👩‍👧 family', 'e\u0301 n\u0303 a\u0308', 'tab\tnew\nline\r\n  ',
      '\u00a0nbsp\u3000ideo', '\u0000\u0001\u007f\u0085', 'x'.repeat(300), '1234567890 0.5 -3', 'مرحبا Привет שלום'];
    const r = rng(17);
    const ranges: [number, number][] = [[0x20, 0x7e], [0x00, 0x1f], [0xa0, 0x2ff], [0x400, 0x4ff], [0x3040, 0x30ff], [0x4e00, 0x9fa5],
      [0xac00, 0xd7a3], [0x1f300, 0x1f6ff], [0x10000, 0x1007f], [0xe000, 0xe0ff]];
    const random = Array.from({ length: 60 }, () => {
      let s = '';
      const len = 1 + Math.floor(r() * 40);
      for (let i = 0; i < len; i++) {
        const [lo, hi] = ranges[Math.floor(r() * ranges.length)];
        s += String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
      }
      return s;
    });
    for (const s of [...fixed, ...random]) {
      const ids = tok.encode(s);
      assert.ok(ids.every((id) => id >= 0 && id < tok.vocabSize));
      assert.equal(tok.decode(ids), s, JSON.stringify(s));
    }
  });

  it('uses the learned merges: a frequent word is one token', () => {
    const ids = tok.encode(' done');
    assert.equal(ids.length, 1);
    assert.equal(tok.decode(ids), ' done');
  });

  it('encodes every V4 named token as its single id, and the V4 chat encoding with them', () => {
    for (const n of NAMED) {
      const ids = tok.encode(n.content, { parseSpecial: true });
      assert.equal(ids.length, 1, n.content);
      assert.equal(tok.tokenText(ids[0]), n.content);
    }
    // <think>, </think> and ｜DSML｜ are user-defined, as in V4: matched even without parseSpecial.
    for (const t of ['<think>', '</think>', '｜DSML｜']) {
      assert.equal(tok.tokenType(tok.tokenId(t)!), TokenType.USER_DEFINED);
      assert.equal(tok.encode(`a${t}b`).length, 3);
    }
    const text = encodeV4Messages([
      { role: 'system', content: 'Be brief.', tools: [{ type: 'function', function: { name: 'calculator', parameters: { type: 'object' } } }] },
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: '', reasoning_content: 'Use the tool.', tool_calls: [{ function: { name: 'calculator', arguments: '{"expression": "2 + 2"}' } }] },
      { role: 'tool', content: '4' },
      { role: 'assistant', content: '4', reasoning_content: 'It said 4.' },
    ], { thinking: true, reasoningEffort: 'max' });
    assert.ok(text.startsWith(`<｜begin▁of▁sentence｜>${V4_THINK_MAX_PREFIX}`));
    const ids = tok.encode(text, { parseSpecial: true });
    assert.equal(tok.decode(ids), text);
    const single = ['<｜begin▁of▁sentence｜>', '<｜User｜>', '<｜Assistant｜>', '<think>', '</think>', '｜DSML｜', '<｜end▁of▁sentence｜>'];
    for (const s of single) {
      const id = tok.tokenId(s)!;
      const occurrences = text.split(s).length - 1;
      assert.equal(ids.filter((x) => x === id).length, occurrences, s);
    }
  });

  it('tokenizes SFT segments on their own exactly as inside the whole text (they meet at special tokens)', () => {
    const docs = TASK_NAMES.flatMap((n) => generateTasks(n, 2, 20).map((t) => renderTaskV4(t, 'high').text));
    const taskTok = (() => { const t = trainBpe(docs, { vocabSize: 900 }); return tokenizerFromHF(t.tokenizerJson, t.tokenizerConfig); })();
    for (const name of TASK_NAMES) {
      for (const t of generateTasks(name, 3, 4)) {
        for (const mode of ['none', 'high', 'max'] as const) {
          const ex = renderTaskV4(t, mode);
          const whole = taskTok.encode(ex.text, { parseSpecial: true });
          assert.deepEqual(ex.segments.flatMap((sg) => taskTok.encode(sg.text, { parseSpecial: true })), whole, `${name} ${mode}`);
          assert.equal(taskTok.decode(whole), ex.text);
        }
      }
    }
  });

  it('is the tokenizer a V4 model directory gets (deepseekTokenizer prefers the directory\'s own)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-bpe-'));
    try {
      writeTrainedTokenizer(dir, trained);
      const own = deepseekTokenizer('v4', dir);
      assert.equal(own.vocabSize, trained.vocabSize);
      const s = 'The sum 12345 + 678 = 13023 <｜User｜>';
      assert.deepEqual(own.encode(s, { parseSpecial: true }), tok.encode(s, { parseSpecial: true }));
      const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
      assert.equal(config.bos_token, '<｜begin▁of▁sentence｜>');
      assert.equal(config.add_bos_token, false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('BPE training speed', () => {
  // A few MB in well under a minute (issue #9 §2); MINKE_SLOW=1 runs the 4 MB case.
  it('trains on a diverse corpus quickly', () => {
    const mb = process.env.MINKE_SLOW ? 4 : 0.5;
    const r = rng(5);
    const letters = 'etaoinshrdlcumwfgypbvkjxqz';
    const parts: string[] = [];
    let size = 0;
    while (size < mb * 1e6) {
      let w = ' ';
      const n = 2 + Math.floor(r() * 7);
      for (let i = 0; i < n; i++) w += letters[Math.floor(r() * r() * 26)];
      parts.push(w);
      size += w.length;
    }
    const t0 = performance.now();
    const t = trainBpe(parts.join(''), { vocabSize: 8192 });
    const s = (performance.now() - t0) / 1000;
    assert.equal(t.vocabSize, 8192);
    assert.ok(s < 30 * mb, `${mb} MB took ${s.toFixed(1)} s`);
  });
});
