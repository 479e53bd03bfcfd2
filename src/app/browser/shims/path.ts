/** `node:path` (POSIX) for the in-browser engine: the handful of functions the loaders use. */
export const sep = '/';

export function normalize(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length && out[out.length - 1] !== '..') out.pop();
    else if (part !== '..' || !abs) out.push(part);
  }
  return (abs ? '/' : '') + out.join('/') || (abs ? '/' : '.');
}
export const join = (...parts: string[]): string => normalize(parts.filter((p) => p).join('/'));
export const isAbsolute = (p: string): boolean => p.startsWith('/');
export function resolve(...parts: string[]): string {
  let r = '';
  for (const p of parts) r = isAbsolute(p) ? p : `${r}/${p}`;
  return normalize(isAbsolute(r) ? r : `/${r}`);
}
export function dirname(p: string): string {
  const n = normalize(p), i = n.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : n.slice(0, i);
}
export function basename(p: string, ext?: string): string {
  const b = normalize(p).split('/').pop() ?? '';
  return ext && b.endsWith(ext) ? b.slice(0, -ext.length) : b;
}
export function extname(p: string): string {
  const b = basename(p), i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i);
}
export function relative(from: string, to: string): string {
  const a = resolve(from).split('/').filter(Boolean), b = resolve(to).split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/');
}

export default { sep, normalize, join, isAbsolute, resolve, dirname, basename, extname, relative };
