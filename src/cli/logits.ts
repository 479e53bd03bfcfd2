/**
 * `minke logits MODEL --tokens 1,2,3 [--all] [--out FILE]`: one prefill over exactly these ids
 * (no BOS added) and the raw logits as JSON `{"tokens": [...], "logits": [[...vocab...]]}` — the
 * last position's row, or one row per position with --all.
 *
 * DeepSeek-V4 / V4.1 only: --act-quant / --kv-quant switch the two numeric settings of spec §10.3
 * (both off is the goldens' `noquant`, --act-quant off alone `no_act_quant`). V4: --mtp adds the
 * MTP block's draft logits (§8.1: row t pairs position t with the token at t+1 and drafts t+2).
 * V4.1 and V4-DSpark checkpoints: --dspark adds the DSpark draft round after the last position,
 * anchored on its greedy token.
 */
import * as fs from 'node:fs';
import type { DsparkSequence, ModelDescription } from '../models/model.js';
import { DeepseekV4Sequence } from '../models/deepseek-v4.js';
import { argmax } from '../engine/sampler.js';
import { parseArgs, flag, UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import { loadForCli } from './load.js';
import { modelPathOf } from '../models/shipped.js';

export const LOGITS_USAGE = `usage: minke logits MODEL --tokens ID,ID,... [--all] [--out FILE] [--threads N] [--backend cpu|webgpu] [--quiet]
                   [--act-quant on|off] [--kv-quant on|off] [--mtp] [--dspark] [--engram-map FILE]
  --tokens      token ids to evaluate in one prefill (comma-separated)
  --all         the logits of every position (default: the last)
  --out         write the JSON to FILE (default: stdout)
DeepSeek-V4 and V4.1 models:
  --act-quant   FP8 rounding of the activations before every FP8/FP4 product (default on, as
                trained; off alone is the reference's no_act_quant setting)
  --kv-quant    the FP8/FP4 round trips of the attention keys and indexer (default on; both off
                is the reference's noquant setting)
  --mtp         add "mtp_logits": the MTP block's draft logits; row t pairs position t with the
                token at t+1 and drafts the token at t+2 (rows 0..n-2 with --all, else the last)
  --dspark      (DSpark checkpoints: V4.1, V4-DSpark) add "dspark": the draft round after the last position, anchored on its
                greedy token: ids [anchor, x1..xγ], logits [γ][vocab], confidence logits [γ]
  --engram-map  (V4.1 without its tokenizer.json) the Engram compressed-token map: one
                little-endian int32 per vocabulary id
`;

const FLAGS: Record<string, FlagSpec> = {
  tokens: { kind: 'string' },
  all: { kind: 'boolean' },
  out: { kind: 'string', short: 'o' },
  threads: { kind: 'int', min: 1, short: 't' },
  backend: { kind: 'string' },
  quiet: { kind: 'boolean', short: 'q' },
  'act-quant': { kind: 'string' },
  'kv-quant': { kind: 'string' },
  mtp: { kind: 'boolean' },
  dspark: { kind: 'boolean' },
  'engram-map': { kind: 'string' },
  help: { kind: 'boolean', short: 'h' },
};

export function parseTokenList(s: string): number[] {
  const parts = s.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new UsageError(`--tokens needs comma-separated token ids, got ${JSON.stringify(s)}`);
  }
  return parts.map(Number);
}

/** An on|off flag: undefined when absent. */
function onOff(args: ParsedArgs, name: string): boolean | undefined {
  const v = flag.str(args, name);
  if (v === undefined) return undefined;
  if (v !== 'on' && v !== 'off') throw new UsageError(`--${name} is on or off, got ${JSON.stringify(v)}`);
  return v === 'on';
}

const isV4 = (d: ModelDescription) => d.architecture === 'deepseek_v4' || d.architecture === 'deepseek_v41';

export async function logitsCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(LOGITS_USAGE); return 0; }
  const [modelArg, ...extra] = args.positionals;
  const modelPath = modelArg === undefined ? undefined : modelPathOf(modelArg);
  if (modelPath === undefined) throw new UsageError('logits needs a MODEL (minke logits --help)');
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const list = flag.str(args, 'tokens');
  if (list === undefined) throw new UsageError('logits needs --tokens ID,ID,...');
  const ids = parseTokenList(list);
  const all = flag.bool(args, 'all');
  const actQuant = onOff(args, 'act-quant');
  const kvQuant = onOff(args, 'kv-quant');
  const mtp = flag.bool(args, 'mtp');
  const dspark = flag.bool(args, 'dspark');
  if (mtp && ids.length < 2) throw new UsageError('--mtp needs at least 2 tokens (row t pairs position t with the token at t+1)');

  // Everything about the model the flags depend on is checked before its weights are read.
  const check = (d: ModelDescription) => {
    // 'on' is every other model's only behaviour, so it is accepted anywhere.
    if (actQuant === false && !isV4(d)) throw new Error(`--act-quant applies to DeepSeek-V4 models (${d.architecture} has no activation quantisation to switch off)`);
    if (kvQuant === false && !isV4(d)) throw new Error(`--kv-quant applies to DeepSeek-V4 models (${d.architecture} has no KV quantisation to switch off)`);
    if (mtp && d.architecture !== 'deepseek_v4') throw new Error(`--mtp applies to DeepSeek-V4 models (${d.architecture} has no MTP block)`);
    if (dspark && !d.dsparkStages) throw new Error(`--dspark applies to checkpoints with DSpark draft stages (this ${d.architecture} checkpoint has none)`);
    if (mtp && !d.details.mtpBlocks) throw new Error('--mtp: this checkpoint has no MTP block (num_nextn_predict_layers is 0)');
    const bad = ids.find((id) => id >= d.vocabSize);
    if (bad !== undefined) throw new Error(`token id ${bad} is outside the vocabulary [0, ${d.vocabSize})`);
  };
  const model = await loadForCli(modelPath, {
    threads: flag.num(args, 'threads'), backend: flag.backend(args), actQuant, kvQuant, check, engramMap: flag.str(args, 'engram-map'), log: flag.bool(args, 'quiet') ? undefined : process.stderr,
  });
  try {
    const vocab = model.description.vocabSize;
    const seq = model.newSequence({ contextLength: ids.length });
    let logits: Float32Array;
    let draft: Float32Array | undefined;
    let block: { ids: number[]; logits: number[][]; confidence: number[] } | undefined;
    try {
      logits = await seq.forward(ids, { allLogits: all });
      if (mtp) {
        if (!(seq instanceof DeepseekV4Sequence)) throw new Error('--mtp applies to DeepSeek-V4 models');
        draft = await seq.mtp(ids.slice(1)); // [n−1, vocab]
      }
      if (dspark) {
        const d = await (seq as DsparkSequence).dspark(argmax(logits.subarray(logits.length - vocab)));
        block = { ids: d.ids, logits: Array.from({ length: d.confidence.length }, (_, k) => Array.from(d.logits.subarray(k * vocab, (k + 1) * vocab))), confidence: Array.from(d.confidence) };
      }
    } finally {
      seq.free();
    }
    const rows = (m: Float32Array, n: number) => {
      const first = all ? 0 : n - 1;
      return Array.from({ length: n - first }, (_, i) => Array.from(m.subarray((first + i) * vocab, (first + i + 1) * vocab)));
    };
    const out = { tokens: ids, logits: all ? rows(logits, ids.length) : rows(logits, 1), ...(draft ? { mtp_logits: rows(draft, ids.length - 1) } : {}), ...(block ? { dspark: block } : {}) };
    const json = JSON.stringify(out) + '\n';
    const file = flag.str(args, 'out');
    if (file !== undefined) fs.writeFileSync(file, json);
    else process.stdout.write(json);
    return 0;
  } finally {
    await model.close();
  }
}
