/**
 * `minke serve` as a library: load the configured models (local files, or upstream endpoints),
 * put each local one behind an engine with a prefix cache on disk, and start the HTTP server.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../engine/engine.js';
import { PrefixCache } from '../engine/prefix-cache.js';
import { loadForCli } from '../cli/load.js';
import type { BackendKind } from '../kernels/create-backend.js';
import type { Out } from '../cli/display.js';
import { appRoutes } from '../app/api.js';
import { Replies } from '../app/reply.js';
import { staticRoutes } from '../app/static.js';
import { ChatStore } from '../app/store.js';
import { ApiServer, type Route, type ServerOptions } from './http.js';
import { LocalBackend } from './local-backend.js';
import { Metrics } from './metrics.js';
import { ModelRegistry } from './registry.js';
import { ROUTES } from './routes.js';
import { UpstreamBackend } from './upstream.js';
import { minkeHome } from '../store/names.js';

export type ModelSpec =
  | { readonly name?: string; readonly path: string }
  | {
    readonly name: string; readonly upstream: string; readonly apiKey?: string; readonly model?: string;
    /** Until the upstream's response headers, and the longest silence mid-stream (ms). */
    readonly timeoutMs?: number; readonly readTimeoutMs?: number;
    /** Where prefix completion and FIM go (vLLM and SGLang have no /beta: give their /v1). */
    readonly betaUrl?: string;
  };

export interface ServeConfig extends ServerOptions {
  readonly models: readonly ModelSpec[];
  readonly threads?: number;
  /** Where models run: cpu (default) or webgpu. */
  readonly backend?: BackendKind;
  /** Context per sequence (default: the model's default). */
  readonly contextLength?: number;
  /** Sequences generated at once per model (default 16). */
  readonly parallel?: number;
  /** Requests waiting per model before 429 (default 64). */
  readonly queue?: number;
  /** The on-disk prefix cache (default on, under MINKE_HOME/prefix-cache). */
  readonly prefixCache?: boolean;
  readonly prefixCacheBytes?: number;
  /** Where loading progress goes. */
  readonly log?: Out;
  /** The chat app's database (default MINKE_HOME/minke.db); false: no app (no /app/api, nothing at /). */
  readonly store?: string | false;
  /** The built web app served at / (default dist/app/web). */
  readonly webDir?: string;
}

/** The name a model file or directory is served under: its base name without the extension. */
export function defaultModelName(file: string): string {
  const base = path.basename(path.resolve(file));
  return base.replace(/\.(gguf|safetensors|bin)$/i, '');
}

export { minkeHome };

export async function startServer(config: ServeConfig): Promise<{ url: string; server: ApiServer }> {
  if (!config.models.length) throw new Error('no model to serve: give MODEL paths or a config file with "models"');
  const registry = new ModelRegistry();
  const metrics = new Metrics();
  try {
    for (const spec of config.models) {
      if ('upstream' in spec) {
        registry.add(new UpstreamBackend({ ...spec, url: spec.upstream }));
        continue;
      }
      const name = spec.name ?? defaultModelName(spec.path);
      const model = await loadForCli(spec.path, { threads: config.threads, backend: config.backend, contextLength: config.contextLength, log: config.log });
      const cache = config.prefixCache === false ? undefined : new PrefixCache(path.join(minkeHome(), 'prefix-cache'), {
        fingerprint: fingerprint(spec.path, config.contextLength), maxBytes: config.prefixCacheBytes,
      });
      const engine = new Engine(model, { maxSequences: config.parallel, maxQueue: config.queue, contextLength: config.contextLength, prefixCache: cache });
      const backend = new LocalBackend(name, model, engine);
      registry.add(backend);
      metrics.model(name, () => ({ ...engine.load, ...engine.stats }));
    }
  } catch (err) {
    await registry.close();
    throw err;
  }
  let app: { store: ChatStore; replies: Replies } | undefined;
  if (config.store !== false) {
    try {
      const store = ChatStore.open(config.store ?? ChatStore.defaultPath());
      app = { store, replies: new Replies(store) };
    } catch (err) {
      await registry.close();
      throw err;
    }
  }
  const routes: readonly Route[] = app ? [...ROUTES, ...appRoutes(app.store, app.replies), ...staticRoutes(config.webDir)] : ROUTES;
  const server = new ApiServer(registry, metrics, config, routes);
  if (app) {
    const { store, replies } = app;
    // Replies still running end 'interrupted' (their text kept) while the models are still there.
    server.onClose(async () => { await replies.stopAll(); store.close(); });
  }
  let url: string;
  try {
    url = await server.listen();
  } catch (err) {
    await server.close();
    throw err;
  }
  return { url, server };
}

/** Identifies a model's weights on disk (path, sizes and times of its files) for the prefix cache. */
function fingerprint(file: string, ctx?: number): string {
  const abs = path.resolve(file);
  const st = fs.statSync(abs);
  const files = st.isDirectory() ? fs.readdirSync(abs).sort().map((f) => path.join(abs, f)) : [abs];
  const parts = files.map((f) => { const s = fs.statSync(f); return `${f}:${s.size}:${s.mtimeMs}`; });
  return JSON.stringify({ parts, ctx: ctx ?? null });
}
