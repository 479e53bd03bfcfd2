/**
 * The prefix cache ("context caching on disk" in the DeepSeek API): the inference state of prompt
 * prefixes, in units of 64 tokens, kept in a directory so that it survives restarts.
 *
 * A prompt's prefixes are found by a chain of hashes, one per unit (h_k = sha256(h_{k−1} ‖ unit k)),
 * which is a radix tree over units flattened into a map: the deepest stored node on the prompt's
 * chain is its longest cached prefix. Each entry is one file holding a header (format, model
 * fingerprint, the prefix's tokens), the model's saved state and a sha256 of both; an entry whose
 * file is short, altered or from another model is deleted and treated as a miss. Entries past the
 * byte budget are evicted least recently used first.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sequence } from '../models/model.js';
import type { PrefixStore } from './engine.js';

export const CACHE_UNIT = 64;
const MAGIC = 'minke-prefix-v1';

interface Entry {
  readonly file: string;
  readonly length: number;
  bytes: number;
  lastUsed: number;
}

export interface PrefixCacheOptions {
  /** Identifies the model (weights and numerics): entries of other models are never used. */
  readonly fingerprint: string;
  /** Bytes of entries kept on disk (default 2 GiB). */
  readonly maxBytes?: number;
  /** Tokens per unit (default 64). */
  readonly unit?: number;
}

export class PrefixCache implements PrefixStore {
  readonly unit: number;
  private readonly maxBytes: number;
  private readonly entries = new Map<string, Entry>();
  private readonly dir: string;
  private clock = 0;
  /** Hits, misses (in prompts) and corrupt entries found, for metrics. */
  readonly stats = { hits: 0, misses: 0, corrupt: 0, stored: 0, evicted: 0 };

  constructor(root: string, private readonly opts: PrefixCacheOptions) {
    this.unit = opts.unit ?? CACHE_UNIT;
    this.maxBytes = opts.maxBytes ?? 2 * 2 ** 30;
    this.dir = path.join(root, sha256(opts.fingerprint).slice(0, 16));
    fs.mkdirSync(this.dir, { recursive: true });
    // Entries from an earlier run: their names are their chain hashes; most recently used first.
    const found = fs.readdirSync(this.dir).filter((f) => f.endsWith('.state'))
      .map((f) => ({ f, st: fs.statSync(path.join(this.dir, f)) }))
      .sort((a, b) => a.st.mtimeMs - b.st.mtimeMs);
    for (const { f, st } of found) {
      const length = Number(f.split('-')[0]);
      if (!Number.isInteger(length) || length <= 0) continue;
      this.entries.set(f.slice(f.indexOf('-') + 1, -'.state'.length), { file: path.join(this.dir, f), length, bytes: st.size, lastUsed: ++this.clock });
    }
  }

  /** Bytes of all entries. */
  get bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  get size(): number { return this.entries.size; }

  storeLength(prompt: readonly number[]): number {
    // At least one prompt token must be left to compute (its logits start the answer).
    return Math.floor((prompt.length - 1) / this.unit) * this.unit;
  }

  async restore(prompt: readonly number[], seq: Sequence, partition = ''): Promise<number> {
    if (!seq.loadState) return 0;
    const chain = this.chain(prompt, this.storeLength(prompt), partition);
    for (let k = chain.length - 1; k >= 0; k--) {
      const e = this.entries.get(chain[k]);
      if (!e) continue;
      const state = this.read(chain[k], e, prompt);
      if (!state) continue;
      try {
        seq.loadState(state, e.length);
      } catch {
        this.drop(chain[k]);
        continue;
      }
      e.lastUsed = ++this.clock;
      const now = new Date();
      fs.utimesSync(e.file, now, now);
      this.stats.hits++;
      return e.length;
    }
    this.stats.misses++;
    return 0;
  }

  async store(prompt: readonly number[], length: number, seq: Sequence, partition = ''): Promise<void> {
    if (!seq.saveState || length <= 0 || length % this.unit) return;
    const key = this.chain(prompt, length, partition).at(-1)!;
    const known = this.entries.get(key);
    if (known) {
      known.lastUsed = ++this.clock;
      return;
    }
    const state = await seq.saveState();
    const header = Buffer.from(JSON.stringify({ magic: MAGIC, fingerprint: this.opts.fingerprint, tokens: prompt.slice(0, length) }));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(header.length);
    const digest = createHash('sha256').update(len).update(header).update(state).digest();
    const file = path.join(this.dir, `${length}-${key}.state`);
    const tmp = `${file}.${process.pid}.tmp`;
    // Written aside and renamed: a crash never leaves a half-written entry under the real name.
    fs.writeFileSync(tmp, Buffer.concat([len, header, state, digest]));
    fs.renameSync(tmp, file);
    this.entries.set(key, { file, length, bytes: 4 + header.length + state.length + 32, lastUsed: ++this.clock });
    this.stats.stored++;
    this.evict();
  }

  /** The chain hashes of prompt[0 : unit·k] for k = 1 … length/unit, within one partition (a user's own cache). */
  private chain(prompt: readonly number[], length: number, partition: string): string[] {
    const out: string[] = [];
    let h = sha256(partition ? `${this.opts.fingerprint}\u0000${partition}` : this.opts.fingerprint);
    for (let k = this.unit; k <= length; k += this.unit) {
      h = createHash('sha256').update(h).update(Int32Array.from(prompt.slice(k - this.unit, k))).digest('hex');
      out.push(h);
    }
    return out;
  }

  /** The state bytes of an entry, or undefined (and the entry deleted) when it does not check out. */
  private read(key: string, e: Entry, prompt: readonly number[]): Uint8Array | undefined {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(e.file);
    } catch {
      this.entries.delete(key);
      return undefined;
    }
    const bad = () => {
      this.stats.corrupt++;
      this.drop(key);
      return undefined;
    };
    if (buf.length < 4 + 32) return bad();
    const hlen = buf.readUInt32LE(0);
    if (4 + hlen + 32 > buf.length) return bad();
    const body = buf.subarray(0, buf.length - 32);
    if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) return bad();
    let header: { magic?: string; fingerprint?: string; tokens?: number[] };
    try {
      header = JSON.parse(buf.subarray(4, 4 + hlen).toString('utf8'));
    } catch {
      return bad();
    }
    const tokens = header.tokens ?? [];
    if (header.magic !== MAGIC || header.fingerprint !== this.opts.fingerprint || tokens.length !== e.length) return bad();
    for (let i = 0; i < e.length; i++) if (tokens[i] !== prompt[i]) return undefined; // a hash collision: not this prefix
    return new Uint8Array(buf.buffer, buf.byteOffset + 4 + hlen, buf.length - 4 - hlen - 32);
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    this.entries.delete(key);
    if (e) fs.rmSync(e.file, { force: true });
  }

  private evict(): void {
    let total = this.bytes;
    const byAge = [...this.entries].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, e] of byAge) {
      if (total <= this.maxBytes) break;
      total -= e.bytes;
      this.drop(key);
      this.stats.evicted++;
    }
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
