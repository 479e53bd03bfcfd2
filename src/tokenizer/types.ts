/** The public shapes of the tokenizer layer. */

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

export interface EncodeOptions {
  /** Prepend BOS; default: the vocabulary's rule (`Tokenizer.addBos`). */
  readonly addBos?: boolean;
  /** Append EOS; default: the vocabulary's rule (`Tokenizer.addEos`). */
  readonly addEos?: boolean;
  /** Also match control and unknown tokens (`<|im_end|>`, `<s>`…) in the text; user-defined tokens always match. Default false. */
  readonly parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Render control and unknown tokens as nothing (default: as their text, like llama.cpp's `special = true`). */
  readonly skipSpecial?: boolean;
}

export interface DecoderOptions extends DecodeOptions {
  /**
   * Drop the leading space of the very first piece where the vocabulary adds a space prefix (SPM),
   * as llama.cpp's detokenizer does for a sequence decoded from its start. Default false: a
   * continuation after a prompt keeps its space.
   */
  readonly stripLeadingSpace?: boolean;
}

/** Token ids in, text out, one id at a time: only whole UTF-8 characters ever come out. */
export interface StreamDecoder {
  /** The text completed by this token (possibly ''; an incomplete UTF-8 sequence waits for the next bytes). */
  push(id: number): string;
  /** Whatever is still held back, as U+FFFD for an incomplete sequence; the decoder can then start over. */
  flush(): string;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bos?: number;
  readonly eos?: number;
  /** End-of-generation ids: EOS, EOT, <|im_end|>, <｜end▁of▁sentence｜>, … (llama.cpp's special_eog_ids). */
  readonly eog: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly chatTemplate?: string;
  encode(text: string, opts?: EncodeOptions): number[];
  /** llama.cpp's detokenize: SPM drops the space prefix of the first piece; some BPE vocabularies clean up " ." " 's" … */
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  /** The raw bytes a token stands for (control tokens: their text). */
  piece(id: number): Uint8Array;
  /** The id of the vocabulary entry spelled `text` exactly (e.g. '<|im_end|>', '▁the', 'Ġthe'). */
  tokenId(text: string): number | undefined;
  /** The vocabulary entry of `id` as stored ('▁the', 'Ġthe', '<0x0A>'). */
  tokenText(id: number): string;
  tokenType(id: number): TokenType;
  decoder(opts?: DecoderOptions): StreamDecoder;
}
