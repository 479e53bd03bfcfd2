/**
 * `npm run bench -- serve`: load on a real `minke serve` — C concurrent streaming clients for D
 * seconds, each sending one chat request after another. Reports errors, time to first token
 * (p50/p99), aggregate generated tokens/s and the server's resident memory over the run (sampled
 * every second from /proc, so growth over the run is visible).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, flag } from '../src/cli/args.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin/minke.js');
const STORIES = path.join(ROOT, '../shared/models/stories260K/stories260K.gguf');

const PROMPTS = ['Once upon a time', 'Tom had a red ball.', 'The little dog', 'Lily went to the park', 'One day, a big bird'];

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function benchServe(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {
    model: { kind: 'string' }, clients: { kind: 'int', min: 1 }, seconds: { kind: 'number', min: 1 },
    'max-tokens': { kind: 'int', min: 1 }, parallel: { kind: 'int', min: 1 }, threads: { kind: 'int', min: 1 }, json: { kind: 'string' },
  });
  const model = flag.str(args, 'model') ?? STORIES;
  const clients = flag.num(args, 'clients') ?? 64;
  const seconds = flag.num(args, 'seconds') ?? 60;
  const maxTokens = flag.num(args, 'max-tokens') ?? 64;
  const parallel = flag.num(args, 'parallel') ?? 64;
  const threads = flag.num(args, 'threads') ?? 2;

  const child = spawn(process.execPath, [BIN, 'serve', model, '--port', '0', '--no-cache', '--parallel', String(parallel), '--queue', String(clients), '--threads', String(threads)], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`minke serve exited (${code}): ${err}`)));
  });
  const name = path.basename(model).replace(/\.(gguf|safetensors|bin)$/i, '');
  process.stderr.write(`serve bench: ${clients} streaming clients for ${seconds} s, max_tokens ${maxTokens}, against ${name} at ${url}\n`);

  const ttft: number[] = [];
  let tokens = 0, requests = 0, errors = 0;
  const firstErrors: string[] = [];
  const rss: number[] = [];
  const sampler = setInterval(() => {
    rss.push(rssMiB(child.pid!));
    process.stderr.write(`\r  ${rss.length} s: ${requests} requests, ${tokens} tokens, ${errors} errors, server RSS ${rss.at(-1)!.toFixed(0)} MiB   `);
  }, 1000);
  const end = performance.now() + seconds * 1000;
  const client = async (c: number) => {
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${url}/chat/completions`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: name, messages: [{ role: 'user', content: PROMPTS[(c + i) % PROMPTS.length] }], max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }),
        });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
        let first = 0, buf = '', done = false;
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let k: number;
          while ((k = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, k);
            buf = buf.slice(k + 2);
            if (!ev.startsWith('data: ')) continue;
            const data = ev.slice(6);
            if (data === '[DONE]') { done = true; continue; }
            const j = JSON.parse(data);
            if (j.error) throw new Error(j.error.message);
            if (!first && j.choices?.[0]?.delta?.content) first = performance.now();
            if (j.usage) tokens += j.usage.completion_tokens;
          }
        }
        if (!done) throw new Error('stream ended without [DONE]');
        if (first) ttft.push(first - t0);
        requests++;
      } catch (err) {
        errors++;
        if (firstErrors.length < 5) firstErrors.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));

  const result = {
    model: name, clients, seconds: wall, maxTokens, parallel, threads, requests, errors,
    ttftMs: { p50: percentile(ttft, 50), p99: percentile(ttft, 99) },
    tokensPerSecond: tokens / wall,
    rssMiB: { first: rss[0], max: Math.max(...rss), last: rss.at(-1) },
    firstErrors,
  };
  process.stderr.write('\n');
  process.stdout.write(
    `${requests} requests, ${errors} errors in ${wall.toFixed(1)} s; TTFT p50 ${result.ttftMs.p50.toFixed(0)} ms, p99 ${result.ttftMs.p99.toFixed(0)} ms; ` +
    `${result.tokensPerSecond.toFixed(0)} tokens/s; server RSS ${result.rssMiB.first?.toFixed(0)} → max ${result.rssMiB.max.toFixed(0)} → last ${result.rssMiB.last?.toFixed(0)} MiB\n`);
  for (const e of firstErrors) process.stdout.write(`  error: ${e}\n`);
  const out = flag.str(args, 'json');
  if (out) fs.writeFileSync(out, JSON.stringify(result, null, 2));
  return errors ? 1 : 0;
}
