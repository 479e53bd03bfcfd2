/**
 * `node:worker_threads`, `node:v8` and `node:module` for the in-browser engine: what only Node has.
 * The CPU backend runs with one thread in the browser, so no worker is ever made.
 */
export class Worker {
  constructor() { throw new Error('worker_threads are not available in the browser: run the CPU backend with one thread'); }
}
export const isMainThread = true;
export const parentPort = null;
export const workerData = undefined;
export function setFlagsFromString(): void { /* V8 flags cannot be set from a page */ }
export function createRequire(): { resolve(id: string): string } {
  return { resolve: (id: string) => { throw new Error(`${id}: package files cannot be resolved in the browser`); } };
}
export default { Worker, isMainThread, parentPort, workerData, setFlagsFromString, createRequire };
