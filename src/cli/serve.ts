/**
 * `minke serve [MODEL…]`: the DeepSeek API (OpenAI-, Anthropic- and Responses-compatible) on this
 * machine. Models are files or directories (served under their base name, or NAME=PATH), upstream
 * endpoints (--upstream NAME=URL), or both, from flags or a JSON config file.
 */
import * as fs from 'node:fs';
import { parseArgs, flag, UsageError, type FlagSpec } from './args.js';
import { startServer, type ModelSpec, type ServeConfig } from '../server/index.js';
import { defaultModelPath, modelPathOf, NANO_MODEL_NAME } from '../models/shipped.js';

export const SERVE_USAGE = `usage: minke serve [MODEL…] [options]
  MODEL                  a model file or directory, served as its base name; NAME=PATH to name it
                         (default: the shipped minke-nano; the name minke-nano works as a MODEL)
  --upstream NAME=URL    also serve NAME from an OpenAI/DeepSeek-compatible endpoint (repeatable)
  --config FILE          JSON: {"models": [{"name", "path"} | {"name", "upstream", "apiKey", "model"}], …options}
  --host HOST            address to listen on (default 127.0.0.1: this machine only)
  --port PORT            (default 8080; 0 = any free port)
  --api-key KEY          require this key (Bearer or x-api-key; repeatable; also MINKE_API_KEY)
  --ctx N                context per sequence (default: the model's default)
  --parallel N           sequences generated at once per model (default 16)
  --queue N              requests waiting per model before 429 (default 64)
  --max-body BYTES       largest request body (default 16 MiB)
  --max-tokens N         largest max_tokens a request may ask (default 393216)
  --rpm N                requests per minute per key (default unlimited)
  --no-cache             no prefix cache on disk (default: MINKE_HOME/prefix-cache)
  --threads N            CPU threads (default: all cores)
  --backend B            cpu (default) or webgpu (any GPU; falls back to the CPU with a warning)
Prints the URL on stderr when ready; stops cleanly on SIGTERM or Ctrl-C.
`;

const FLAGS: Record<string, FlagSpec> = {
  upstream: { kind: 'list' },
  config: { kind: 'string' },
  host: { kind: 'string' },
  port: { kind: 'int', min: 0 },
  'api-key': { kind: 'list' },
  ctx: { kind: 'int', min: 1 },
  parallel: { kind: 'int', min: 1 },
  queue: { kind: 'int', min: 1 },
  'max-body': { kind: 'int', min: 1024 },
  'max-tokens': { kind: 'int', min: 1 },
  rpm: { kind: 'int', min: 1 },
  'keep-alive-ms': { kind: 'int', min: 10 },
  'no-cache': { kind: 'boolean' },
  threads: { kind: 'int', min: 1, short: 't' },
  backend: { kind: 'string' },
  help: { kind: 'boolean', short: 'h' },
};

export async function serveCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(SERVE_USAGE); return 0; }
  const file = flag.str(args, 'config');
  const fromFile = file ? readConfig(file) : {};
  const models: ModelSpec[] = [...(fromFile.models ?? [])];
  for (const p of args.positionals) {
    const eq = p.indexOf('=');
    if (eq > 0 && !fs.existsSync(p)) {
      models.push({ name: p.slice(0, eq), path: modelPathOf(p.slice(eq + 1)) });
      continue;
    }
    const resolved = modelPathOf(p);
    models.push(resolved === p ? { path: p } : { name: p, path: resolved }); // a store name is served under that name
  }
  for (const u of flag.list(args, 'upstream')) {
    const eq = u.indexOf('=');
    if (eq <= 0) throw new UsageError(`--upstream needs NAME=URL, got ${JSON.stringify(u)}`);
    models.push({ name: u.slice(0, eq), upstream: u.slice(eq + 1) });
  }
  if (!models.length) models.push({ name: NANO_MODEL_NAME, path: defaultModelPath('serve') });
  const keys = [...flag.list(args, 'api-key'), ...(process.env.MINKE_API_KEY ? [process.env.MINKE_API_KEY] : []), ...(fromFile.apiKeys ?? [])];
  const config: ServeConfig = {
    ...fromFile,
    models,
    host: flag.str(args, 'host') ?? fromFile.host,
    port: flag.num(args, 'port') ?? fromFile.port,
    apiKeys: keys,
    contextLength: flag.num(args, 'ctx') ?? fromFile.contextLength,
    parallel: flag.num(args, 'parallel') ?? fromFile.parallel,
    queue: flag.num(args, 'queue') ?? fromFile.queue,
    maxBodyBytes: flag.num(args, 'max-body') ?? fromFile.maxBodyBytes,
    maxTokens: flag.num(args, 'max-tokens') ?? fromFile.maxTokens,
    requestsPerMinute: flag.num(args, 'rpm') ?? fromFile.requestsPerMinute,
    keepAliveMs: flag.num(args, 'keep-alive-ms') ?? fromFile.keepAliveMs,
    prefixCache: flag.bool(args, 'no-cache') ? false : fromFile.prefixCache,
    threads: flag.num(args, 'threads') ?? fromFile.threads,
    backend: flag.backend(args) ?? fromFile.backend,
    log: process.stderr,
  };
  const host = config.host ?? '127.0.0.1';
  if (!isLoopback(host) && !keys.length) process.stderr.write(`warning: listening on ${host} without --api-key: anyone who can reach this machine can use it\n`);
  const { url, server } = await startServer(config);
  process.stderr.write(`minke serve: listening on ${url} (models: ${server.context.registry.names().join(', ')})\n` +
    `  chat in the browser: ${url}/   API base URL: ${url} (OpenAI/DeepSeek), ${url}/anthropic (Anthropic)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => { process.stderr.write('minke serve: stopping\n'); void server.close().then(resolve); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

function readConfig(file: string): Partial<ServeConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: the config must be a JSON object`);
  const c = raw as Partial<ServeConfig>;
  if (c.models !== undefined && !Array.isArray(c.models)) throw new Error(`${file}: "models" must be an array`);
  for (const [i, m] of (c.models ?? []).entries()) {
    const ok = typeof m === 'object' && m !== null && (typeof (m as { path?: unknown }).path === 'string' || (typeof (m as { upstream?: unknown }).upstream === 'string' && typeof m.name === 'string'));
    if (!ok) throw new Error(`${file}: models[${i}] needs "path", or "name" and "upstream"`);
  }
  return c;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
