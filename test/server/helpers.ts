// Shared setup for the server tests: real models (stories260K, and a DeepSeek-V4 checkpoint of
// the tiny fixture's architecture with the real vocabulary), a real server on loopback, and a raw
// SSE reader for checking transcripts field by field.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticV4 } from '../../bench/synth-v4.js';
import { startServer, type ServeConfig } from '../../src/server/index.js';
import type { ApiServer } from '../../src/server/http.js';

export const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));
export const STORIES = shared('models/stories260K/stories260K.gguf');

/** A V4 checkpoint (tiny fixture config, real vocabulary) written once per process. */
let v4Dir: string | undefined;
export function tinyV4(): string {
  if (v4Dir) return v4Dir;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-serve-v4-'));
  const config = JSON.parse(fs.readFileSync(shared('fixtures/deepseek-v4-tiny/config.json'), 'utf8'));
  v4Dir = path.join(root, 'v4');
  writeSyntheticV4(v4Dir, { ...config, vocab_size: 129280 }, { seed: 3 });
  process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  return v4Dir;
}

export interface Running {
  readonly url: string;
  readonly server: ApiServer;
  close(): Promise<void>;
}

export async function serve(config: Partial<ServeConfig> & Pick<ServeConfig, 'models'>): Promise<Running> {
  const { url, server } = await startServer({ port: 0, prefixCache: false, store: false, threads: 1, ...config });
  return { url, server, close: () => server.close() };
}

export interface SseEvent {
  readonly event?: string;
  readonly data: string;
}

/** POSTs `body` and reads the raw SSE answer: comments, events and all. */
export async function rawSse(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string | null; comments: string[]; events: SseEvent[] }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  const comments: string[] = [];
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim());
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length) events.push({ event, data: data.join('\n') });
  }
  return { status: res.status, contentType: res.headers.get('content-type'), comments, events };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text.trim()) };
}
