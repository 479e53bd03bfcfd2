/**
 * llama.cpp's special-token rules after loading a vocabulary (llama_vocab::impl::load): tokens found
 * by their text become EOT / EOM / FIM tokens when no id was given, tokens that end generation are
 * collected, and every such token is made a control token.
 */
import { TokenType } from './types.js';

export interface SpecialIds {
  bos?: number;
  eos?: number;
  eot?: number;
  eom?: number;
  unk?: number;
  sep?: number;
  pad?: number;
  mask?: number;
  fimPre?: number;
  fimSuf?: number;
  fimMid?: number;
  fimPad?: number;
  fimRep?: number;
  fimSep?: number;
}

type DetectedKey = 'eot' | 'eom' | 'fimPre' | 'fimSuf' | 'fimMid' | 'fimPad' | 'fimRep' | 'fimSep';
const DETECT: readonly (readonly [DetectedKey, readonly string[]])[] = [
  ['eot', ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>',
    '<｜end▁of▁sentence｜>', '<end_of_utterance>']],
  ['eom', ['<|eom_id|>']],
  ['fimPre', ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>']],
  ['fimSuf', ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>']],
  ['fimMid', ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>']],
  ['fimPad', ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>']],
  ['fimRep', ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>']],
  ['fimSep', ['<|file_sep|>']],
];
const EOG_TEXTS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<end_of_turn>', '<|endoftext|>',
  '<|eom_id|>', '<EOT>', '_<EOT>', '<|end_of_text|>', '<end_of_utterance>'];
// gpt-oss: rendered even when special tokens are skipped.
const ALWAYS_RENDERED = ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>'];

/**
 * Completes `ids` and `types` (both modified) as llama.cpp does and returns the EOG set. Candidates
 * are looked up by text in id order (llama.cpp walks a hash map, so which of two candidates wins is
 * unspecified there).
 */
export function resolveSpecials(idOf: ReadonlyMap<string, number>, types: Uint8Array, ids: SpecialIds): Set<number> {
  const makeControl = (id: number): void => { types[id] = TokenType.CONTROL; };
  for (const [key, texts] of DETECT) {
    if (ids[key] !== undefined) continue;
    const found = texts.map((t) => idOf.get(t)).filter((id): id is number => id !== undefined).sort((a, b) => a - b);
    if (found.length > 0) { ids[key] = found[0]; makeControl(found[0]); }
  }
  const eog = new Set<number>();
  for (const id of [ids.fimPad, ids.fimRep, ids.fimSep]) if (id !== undefined) eog.add(id);
  for (const t of EOG_TEXTS) {
    const id = idOf.get(t);
    if (id !== undefined) { eog.add(id); makeControl(id); }
  }
  for (const t of ALWAYS_RENDERED) {
    const id = idOf.get(t);
    if (id !== undefined) types[id] = TokenType.USER_DEFINED;
  }
  for (const id of [ids.eos, ids.eot, ids.eom]) if (id !== undefined) eog.add(id);
  // o200k_harmony: with <|return|> and <|call|> ending generation, <|end|> does not.
  const [ret, call, end] = ['<|return|>', '<|call|>', '<|end|>'].map((t) => idOf.get(t));
  if (ret !== undefined && call !== undefined && end !== undefined && eog.has(ret) && eog.has(call) && eog.has(end)) {
    eog.delete(end);
    types[end] = TokenType.USER_DEFINED;
  }
  return eog;
}
