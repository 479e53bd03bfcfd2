/** Tokenizers for Llama / Qwen / DeepSeek-family models, exact to llama.cpp. See README.md. */
export { TokenType } from './types.js';
export type { DecodeOptions, DecoderOptions, EncodeOptions, StreamDecoder, Tokenizer } from './types.js';
export { tokenizerFromGGUF } from './from-gguf.js';
export { tokenizerFromHF } from './from-hf.js';
export { tokenizerFromLlama2c } from './from-llama2c.js';
export { deepseekTokenizer, type DeepseekVersion } from './deepseek.js';
