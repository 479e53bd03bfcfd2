/**
 * DeepSeek-V4's added-token table (1,283 entries; with the 128,000 BPE ids it covers 0..129279),
 * written compactly: two numbered placeholder runs and the named tokens in id order. It is the
 * reconstruction in spec §12 (testdata/dsv4_added_tokens_reconstructed.json, checked equal by the
 * tests), not read from the official V4 tokenizer.json. Ids up to 128814 are DeepSeek-V3's and carry
 * V3's flags; for the later ids the flags are unknown and follow V3's convention: numbered
 * placeholders special, named tokens not (so `<think>`, `</think>`, `｜DSML｜` are user-defined:
 * always matched in text and rendered even when special tokens are skipped, as in DeepSeek-R1).
 */

/** One added token with the tokenizer.json flags that differ between entries. */
export interface DeepseekAddedToken {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
  readonly normalized: boolean;
}

interface Run {
  readonly firstId: number;
  readonly lastId: number;
  /** The number in the text of `firstId`. */
  readonly firstNumber: number;
  /** Zero-padded width of the number; 0: not padded. */
  readonly width: number;
  readonly text: (n: string) => string;
}

const PLACEHOLDER_RUNS: readonly Run[] = [
  { firstId: 128000, lastId: 128799, firstNumber: 0, width: 0, text: (n) => `<｜place▁holder▁no▁${n}｜>` },
  { firstId: 128847, lastId: 129261, firstNumber: 21, width: 4, text: (n) => `<|place_holder_mm_span_${n}|>` },
];

/** Named tokens from each first id on, consecutive. */
const NAMED: readonly (readonly [number, readonly string[]])[] = [
  [0, ['<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<｜▁pad▁｜>']],
  [128800, [
    '<｜fim▁hole｜>', '<｜fim▁begin｜>', '<｜fim▁end｜>', '<｜User｜>', '<｜Assistant｜>', '<|EOT|>',
    '<｜tool▁calls▁begin｜>', '<｜tool▁calls▁end｜>', '<｜tool▁call▁begin｜>', '<｜tool▁call▁end｜>',
    '<｜tool▁outputs▁begin｜>', '<｜tool▁outputs▁end｜>', '<｜tool▁output▁begin｜>', '<｜tool▁output▁end｜>', '<｜tool▁sep｜>',
    // 128815: new in V4
    '<｜begin▁of▁repo▁name｜>', '<｜end▁of▁repo▁name｜>', '<｜begin▁of▁file▁name｜>', '<｜end▁of▁file▁name｜>',
    '<｜begin▁of▁file｜>', '<｜end▁of▁file｜>', '<think>', '</think>', '<｜place▁holder▁for▁copy｜>',
    '<｜place▁holder▁for▁pointer▁replace｜>', '｜DSML｜', '<｜begin▁sys｜>', '<｜end▁sys｜>', '<｜latest_reminder｜>',
    '<｜action｜>', '<｜query｜>', '<｜authority｜>', '<｜domain｜>', '<｜task｜>', '<｜political｜>', '<｜entity｜>',
    '<｜title｜>', '<｜safety｜>', '<｜answer｜>', '<｜search｜>', '<dsml:', '</dsml:', '<｜search▁begin｜>',
    '<｜search▁end｜>', '<｜extracted_url｜>', '<｜read_url｜>', '<｜end_of_query｜>',
  ]],
  [129262, [
    '<｜rl_image_pad｜>', '<｜rl_image_start｜>', '<｜image2｜>', '<｜/table>｜', '<｜table｜>', '<｜/td｜>', '<｜td｜>',
    '<｜/tr｜>', '<｜tr｜>', '<｜/polygon｜>', '<｜polygon｜>', '<｜/point｜>', '<｜point｜>', '<｜/box｜>', '<｜box｜>',
    '<｜/ref｜>', '<｜ref｜>', '<｜image｜>',
  ]],
];

/** Named tokens that are special all the same: BOS, EOS, pad (V3: normalized false) and <|EOT|> (V3: normalized true). */
const SPECIAL_NAMED = new Map([[0, false], [1, false], [2, false], [128805, true]]);

/** The whole table, ascending by id. */
export function deepseekV4AddedTokens(): DeepseekAddedToken[] {
  const out: DeepseekAddedToken[] = [];
  for (const r of PLACEHOLDER_RUNS) {
    for (let id = r.firstId; id <= r.lastId; id++) {
      const n = String(r.firstNumber + id - r.firstId).padStart(r.width, '0');
      out.push({ id, content: r.text(n), special: true, normalized: false });
    }
  }
  for (const [first, names] of NAMED) {
    names.forEach((content, i) => {
      const id = first + i;
      const normalized = SPECIAL_NAMED.get(id);
      out.push({ id, content, special: normalized !== undefined, normalized: normalized ?? true });
    });
  }
  return out.sort((a, b) => a.id - b.id);
}
