/**
 * A llama2.c checkpoint (`model.bin` + `tokenizer.bin`): a Llama 2 with run.c's fixed choices —
 * RMSNorm eps 1e-5, RoPE base 10000 on adjacent pairs (the order llama.cpp's GGUF of the same
 * model keeps), context = the header's seq_len.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Llama2cFile } from '../formats/llama2c.js';
import { ropeFreqs } from '../kernels/rope-freqs.js';
import { tokenizerFromLlama2c } from '../tokenizer/index.js';
import type { LlamaSource, LlamaTensorNames } from './llama.js';

export const LLAMA2C_NAMES: LlamaTensorNames = {
  embedding: 'token_embedding_table',
  outputNorm: 'rms_final_weight',
  output: 'wcls',
  layer: (i) => ({
    attnNorm: `rms_att_weight.${i}`, q: `wq.${i}`, k: `wk.${i}`, v: `wv.${i}`, o: `wo.${i}`,
    ffnNorm: `rms_ffn_weight.${i}`, gate: `w1.${i}`, up: `w3.${i}`, down: `w2.${i}`,
    // llama2.c has none of these; names that never match.
    optional: { qBias: '', kBias: '', vBias: '', oBias: '', qNorm: '', kNorm: '' },
  }),
};

/** tokenizer.bin beside the model, else the one tok*.bin there (llama2.c's custom vocabularies, e.g. tok512.bin). */
export function findLlama2cTokenizer(modelPath: string): string {
  const dir = path.dirname(modelPath);
  if (fs.existsSync(path.join(dir, 'tokenizer.bin'))) return path.join(dir, 'tokenizer.bin');
  const toks = fs.readdirSync(dir).filter((f) => /^tok.*\.bin$/.test(f) && path.join(dir, f) !== modelPath);
  if (toks.length === 1) return path.join(dir, toks[0]);
  throw new Error(`${modelPath}: ${toks.length ? `several tokenizers beside it (${toks.join(', ')})` : 'no llama2.c tokenizer beside it (tokenizer.bin or tok*.bin)'}; name one with the tokenizerPath option`);
}

export function llamaFromLlama2c(file: Llama2cFile, tokenizerPath: string): LlamaSource {
  const h = file.config;
  const headDim = h.dim / h.heads;
  return {
    file,
    names: LLAMA2C_NAMES,
    tokenizer: tokenizerFromLlama2c(tokenizerPath, h.vocabSize),
    config: {
      architecture: 'llama', dim: h.dim, layers: h.layers, heads: h.heads, kvHeads: h.kvHeads, headDim,
      ffnDim: h.hiddenDim, eps: 1e-5, contextLength: h.seqLen,
      ropeLayout: 'interleaved', ropeFreqs: ropeFreqs(10000, headDim),
      windows: new Array<number>(h.layers).fill(0), requires: [],
      details: { source: 'llama2.c', ropeBase: 10000, ropeScaling: 'none' },
    },
  };
}
