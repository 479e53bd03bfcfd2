/** Constrained decoding: JSON mode and JSON-schema mode as token masks over a tokenizer's vocabulary. */
export { compileJsonConstraint, ConstraintState, JsonConstraint, type JsonConstraintOptions } from './constraint.js';
export type { JsonSchema, SchemaOptions } from './schema.js';
export { tokenTrie, TokenTrie } from './vocabulary.js';
