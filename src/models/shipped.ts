/**
 * The model that ships in the repository: minke-nano (trained by `minke train`, see its model
 * card in models/minke-nano/README.md). It is what `minke serve`, `minke run` and `minke eval` use
 * when no MODEL is given, and the name `minke-nano` stands for it wherever a MODEL path is taken.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { storeModelPath } from '../store/names.js';

export const NANO_MODEL_NAME = 'minke-nano';

/** <repo>/models/minke-nano (this file runs from dist/src/models/). */
export const NANO_MODEL_DIR = fileURLToPath(new URL('../../../models/minke-nano', import.meta.url));

/**
 * A MODEL argument as a path: an existing path stays itself, the shipped model's name becomes its
 * directory, and a pulled model's store name (owner/repo, owner/repo:QUANT) its path in the store.
 */
export function modelPathOf(arg: string): string {
  if (fs.existsSync(arg)) return arg;
  if (arg === NANO_MODEL_NAME) return NANO_MODEL_DIR;
  return storeModelPath(arg) ?? arg;
}

/** The shipped model's directory, or an error saying what to give instead. */
export function defaultModelPath(command: string): string {
  if (!fs.existsSync(`${NANO_MODEL_DIR}/config.json`)) {
    throw new Error(`${command}: no MODEL given and the shipped model is missing (${NANO_MODEL_DIR}): give a model, e.g. minke ${command} path/to/model.gguf`);
  }
  return NANO_MODEL_DIR;
}
