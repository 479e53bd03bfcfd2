/**
 * DeepSeek tokenizer speed (not wired into bench/main.ts): `node dist/bench/tokenizer.js [MB]`.
 * Times loading the packaged 7.8 MB tokenizer.json (parse alone, then the V4 and V3 tokenizers),
 * then encodes ~1 MB of generated mixed text (English, Chinese, digits, code, emoji) twice —
 * once with the per-word cache cold, once warm — and decodes it.
 */
import { readFileSync } from 'node:fs';
import { deepseekPackageFile, deepseekTokenizer } from '../src/tokenizer/deepseek.js';

const ENGLISH = ('the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her she there been one all we their has would when if so no what can more about said will some into time ' +
  'model inference tokenizer attention expert routing quantisation matrix vector kernel memory bandwidth thread').split(' ');
const CODE = ['for (let i = 0; i < n; i++) {', '  sum += a[i] * b[i];', '}', 'def forward(self, x):', '    return self.proj(x) + x',
  'const y = await fetch(url);', '#include <stdio.h>', 'SELECT id, name FROM users WHERE age > 30;'];
const EMOJI = ['🦙', '🚀', '😀', '👩‍💻', '🇯🇵', '✨', '🔥'];

/** A small linear congruential generator: the same text on every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
}

function mixedText(bytes: number): string {
  const r = lcg(12345);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const kind = r();
    let s: string;
    if (kind < 0.45) s = Array.from({ length: 5 + Math.floor(r() * 15) }, () => pick(ENGLISH)).join(' ') + pick(['. ', ', ', '? ', '!\n']);
    else if (kind < 0.75) s = Array.from({ length: 8 + Math.floor(r() * 30) }, () => String.fromCharCode(0x4e00 + Math.floor(r() * 0x51a5))).join('') + pick(['。', '，', '！\n']);
    else if (kind < 0.85) s = `${Math.floor(r() * 1e9)} ${(r() * 1000).toFixed(3)} `;
    else if (kind < 0.95) s = `${pick(CODE)}\n`;
    else s = `${pick(EMOJI)} `;
    parts.push(s);
    size += Buffer.byteLength(s);
  }
  return parts.join('');
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const v = f();
  return [v, (performance.now() - t0) / 1000];
}

function main(): void {
  const mb = Number(process.argv[2] ?? '1');
  if (!(mb > 0)) throw new Error(`size '${process.argv[2]}' is not a positive number of MB`);
  const file = deepseekPackageFile('tokenizer.json');
  const [, parse] = time(() => JSON.parse(readFileSync(file, 'utf8')) as unknown);
  const [tok, loadV4] = time(() => deepseekTokenizer('v4'));
  const [, loadV3] = time(() => deepseekTokenizer('v3'));
  console.log(`load: JSON.parse ${parse.toFixed(3)} s; V4 tokenizer ${loadV4.toFixed(3)} s; V3 tokenizer ${loadV3.toFixed(3)} s`);

  const text = mixedText(mb * 1e6);
  const size = Buffer.byteLength(text) / 1e6;
  const [ids, cold] = time(() => tok.encode(text));
  const [, warm] = time(() => tok.encode(text));
  const [back, dec] = time(() => tok.decode(ids));
  if (back !== text) throw new Error('decode(encode(text)) differs from the text');
  const rate = (s: number): string => `${(ids.length / s / 1e6).toFixed(2)} M tokens/s (${(size / s).toFixed(1)} MB/s)`;
  console.log(`text: ${size.toFixed(2)} MB, ${ids.length} tokens (${(size * 1e6 / ids.length).toFixed(2)} bytes/token)`);
  console.log(`encode, cold word cache: ${cold.toFixed(3)} s, ${rate(cold)}`);
  console.log(`encode, warm word cache: ${warm.toFixed(3)} s, ${rate(warm)}`);
  console.log(`decode: ${dec.toFixed(3)} s, ${rate(dec)}`);
}

main();
