/**
 * `node:fs` for the in-browser engine: a virtual file system of files registered by the worker
 * (fetched bytes, or Files the user picked — read in slices with FileReaderSync, so a multi-GB
 * checkpoint is never copied whole). The loaders' synchronous calls (open / read at an offset /
 * stat / readdir / readFile) are all they need.
 */
type Data = Uint8Array | Blob;

const files = new Map<string, Data>();
const fds = new Map<number, Data>();
let nextFd = 3;

const key = (p: string | URL): string => (p instanceof URL ? p.href : p.replace(/\/+$/, '') || '/');

function missing(p: string | URL): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, '${key(p)}'`), { code: 'ENOENT' });
}

function bytesOf(d: Data, start: number, end: number): Uint8Array {
  if (d instanceof Uint8Array) return d.subarray(start, end);
  return new Uint8Array(new FileReaderSync().readAsArrayBuffer(d.slice(start, end)));
}
const sizeOf = (d: Data): number => (d instanceof Uint8Array ? d.byteLength : d.size);

/** Makes `data` readable at `path` (an absolute POSIX path, or a URL's href). */
export function registerFile(path: string, data: Data): void { files.set(key(path), data); }

function isDir(p: string): boolean {
  const prefix = `${p === '/' ? '' : p}/`;
  for (const k of files.keys()) if (k.startsWith(prefix)) return true;
  return false;
}

export function existsSync(p: string | URL): boolean { return files.has(key(p)) || isDir(key(p)); }

export function statSync(p: string | URL) {
  const k = key(p), f = files.get(k);
  if (!f && !isDir(k)) throw missing(p);
  return { size: f ? sizeOf(f) : 0, isFile: () => f !== undefined, isDirectory: () => f === undefined };
}

export function readdirSync(p: string): string[] {
  const prefix = `${key(p) === '/' ? '' : key(p)}/`;
  const names = new Set<string>();
  for (const k of files.keys()) if (k.startsWith(prefix)) names.add(k.slice(prefix.length).split('/')[0]);
  return [...names];
}

export function readFileSync(p: string | URL, enc?: string | { encoding?: string }): Uint8Array | string {
  const f = files.get(key(p));
  if (!f) throw missing(p);
  const bytes = bytesOf(f, 0, sizeOf(f));
  return enc ? new TextDecoder().decode(bytes) : bytes;
}

export function openSync(p: string | URL): number {
  const f = files.get(key(p));
  if (!f) throw missing(p);
  fds.set(nextFd, f);
  return nextFd++;
}

export function fstatSync(fd: number) {
  const f = fds.get(fd);
  if (!f) throw new Error(`EBADF: bad file descriptor ${fd}`);
  return { size: sizeOf(f), isFile: () => true, isDirectory: () => false };
}

export function readSync(fd: number, dst: Uint8Array, offset: number, length: number, position: number): number {
  const f = fds.get(fd);
  if (!f) throw new Error(`EBADF: bad file descriptor ${fd}`);
  const got = bytesOf(f, position, Math.min(position + length, sizeOf(f)));
  dst.set(got, offset);
  return got.byteLength;
}

export function closeSync(fd: number): void { fds.delete(fd); }

export default { registerFile, existsSync, statSync, readdirSync, readFileSync, openSync, fstatSync, readSync, closeSync };
