/** `node:os` for the in-browser engine. */
const nav = (globalThis as { navigator?: { hardwareConcurrency?: number; deviceMemory?: number } }).navigator;
export const availableParallelism = (): number => nav?.hardwareConcurrency ?? 1;
export const cpus = (): object[] => Array.from({ length: availableParallelism() }, () => ({}));
/** navigator.deviceMemory (GiB, capped at 8 by browsers), else 8 GiB. */
export const totalmem = (): number => (nav?.deviceMemory ?? 8) * 2 ** 30;
export const tmpdir = (): string => '/tmp';
export const homedir = (): string => '/';
export default { availableParallelism, cpus, totalmem, tmpdir, homedir };
