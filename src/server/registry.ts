/**
 * The models a server answers for, by the name `/models` lists: local models (a ChatBackend over
 * the engine) and upstream endpoints (a ChatBackend over HTTP). Names are looked up, never
 * treated as paths.
 */
import type { ChatBackend, ModelInfo } from './chat.js';
import { ApiError } from './errors.js';

export class ModelRegistry {
  private readonly backends = new Map<string, ChatBackend>();

  add(backend: ChatBackend): void {
    const name = backend.info.id;
    if (this.backends.has(name)) throw new Error(`two models are named "${name}"; give one another name (NAME=PATH)`);
    this.backends.set(name, backend);
  }

  get size(): number { return this.backends.size; }

  list(): ModelInfo[] {
    return [...this.backends.values()].map((b) => b.info);
  }

  /** The backend serving `model`, or a 400 naming the models there are. */
  get(model: unknown): ChatBackend {
    if (typeof model !== 'string' || model === '') throw new ApiError(400, 'model is required (a name from GET /models)', { param: 'model' });
    const b = this.backends.get(model);
    if (!b) {
      const shown = JSON.stringify(model.length > 100 ? `${model.slice(0, 100)}…` : model);
      throw new ApiError(400, `Model Not Exist: ${shown}; this server has ${[...this.backends.keys()].map((n) => JSON.stringify(n)).join(', ')}`, { param: 'model' });
    }
    return b;
  }

  /** All backends; for dialects that map foreign model names (Anthropic's claude-*). */
  names(): string[] {
    return [...this.backends.keys()];
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.backends.values()].map((b) => b.close()));
  }
}
