/**
 * Command-line flags: `--name value`, `--name=value`, boolean `--name`, repeatable flags, and
 * positionals. Every mistake (unknown flag, missing or malformed value) is a UsageError whose
 * message is one line naming the flag.
 */
import { BACKEND_KINDS, type BackendKind } from '../kernels/create-backend.js';

export class UsageError extends Error {}

export type FlagKind = 'string' | 'number' | 'int' | 'boolean' | 'list';

export interface FlagSpec {
  readonly kind: FlagKind;
  /** One-letter alias, without the dash. */
  readonly short?: string;
  /** Smallest allowed value (number/int). */
  readonly min?: number;
}

export type FlagValue = string | number | boolean | string[];

export interface ParsedArgs {
  readonly positionals: string[];
  readonly flags: Map<string, FlagValue>;
}

export function parseArgs(argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, FlagValue>();
  const byShort = new Map(Object.entries(specs).filter(([, s]) => s.short).map(([n, s]) => [s.short!, n]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (!arg.startsWith('-') || arg === '-') { positionals.push(arg); continue; }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      const long = byShort.get(arg.slice(1));
      // A negative number is a positional (e.g. a prompt), not a flag.
      if (long === undefined && /^-\d/.test(arg)) { positionals.push(arg); continue; }
      name = long ?? arg.slice(1);
    }
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag ${arg.startsWith('--') ? `--${name}` : arg}`);
    if (spec.kind === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    if (spec.kind === 'list') {
      const prev = flags.get(name);
      flags.set(name, [...(Array.isArray(prev) ? prev : []), raw]);
    } else if (spec.kind === 'string') {
      flags.set(name, raw);
    } else {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${name} needs a number, got ${JSON.stringify(raw)}`);
      if (spec.kind === 'int' && !Number.isInteger(v)) throw new UsageError(`--${name} needs a whole number, got ${JSON.stringify(raw)}`);
      if (spec.min !== undefined && v < spec.min) throw new UsageError(`--${name} must be ≥ ${spec.min}, got ${raw}`);
      flags.set(name, v);
    }
  }
  return { positionals, flags };
}

/** Typed readers over ParsedArgs. */
export const flag = {
  num: (a: ParsedArgs, name: string): number | undefined => a.flags.get(name) as number | undefined,
  str: (a: ParsedArgs, name: string): string | undefined => a.flags.get(name) as string | undefined,
  bool: (a: ParsedArgs, name: string): boolean => a.flags.get(name) === true,
  list: (a: ParsedArgs, name: string): string[] => (a.flags.get(name) as string[] | undefined) ?? [],
  /** --backend: cpu or webgpu. */
  backend: (a: ParsedArgs): BackendKind | undefined => {
    const v = a.flags.get('backend') as string | undefined;
    if (v !== undefined && !(BACKEND_KINDS as readonly string[]).includes(v)) throw new UsageError(`--backend must be one of ${BACKEND_KINDS.join(', ')}, got "${v}"`);
    return v as BackendKind | undefined;
  },
};


/** `\n`, `\t`, `\\`, `\"`, `\'` and `\xNN` in a flag value, as llama.cpp reads reverse prompts. */
export function unescape(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (m, c: string) => {
    if (c[0] === 'x' && c.length === 3) return String.fromCharCode(parseInt(c.slice(1), 16));
    switch (c) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case '\\': return '\\';
      case '"': return '"';
      case "'": return "'";
      default: return m;
    }
  });
}
