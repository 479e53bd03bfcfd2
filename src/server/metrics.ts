/**
 * `GET /metrics` in the Prometheus text format: requests by endpoint and status, tokens, queue
 * and running sequences, prefix-cache hit rate, and generation speed over the last minute.
 */

/** Per-model figures a backend can report. */
export interface ModelStats {
  readonly waiting: number;
  readonly running: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly generatedTokens: number;
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly seconds = new Map<string, number>();
  private readonly sources = new Map<string, () => ModelStats>();
  /** (time, generated tokens total) samples for tokens/s. */
  private readonly samples: [number, number][] = [];

  request(endpoint: string, status: number, seconds: number): void {
    const k = `endpoint="${endpoint}",status="${status}"`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    this.seconds.set(endpoint, (this.seconds.get(endpoint) ?? 0) + seconds);
  }

  /** Registers a model's figures (read at each scrape). */
  model(name: string, stats: () => ModelStats): void {
    this.sources.set(name, stats);
  }

  render(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string, rows: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) out.push(`${name}${labels ? `{${labels}}` : ''} ${v}`);
    };
    family('minke_requests_total', 'counter', 'HTTP requests answered, by endpoint and status.', [...this.requests]);
    family('minke_request_seconds_total', 'counter', 'Time spent answering requests, by endpoint.', [...this.seconds].map(([e, s]) => [`endpoint="${e}"`, s]));
    const models = [...this.sources].map(([name, f]) => [name, f()] as const);
    const rows = (pick: (s: ModelStats) => number): [string, number][] => models.map(([n, s]) => [`model="${escape(n)}"`, pick(s)]);
    family('minke_queue_waiting', 'gauge', 'Requests waiting for a free sequence slot.', rows((s) => s.waiting));
    family('minke_sequences_running', 'gauge', 'Requests being generated.', rows((s) => s.running));
    family('minke_prompt_tokens_total', 'counter', 'Prompt tokens processed (computed or restored from the prefix cache).', rows((s) => s.promptTokens + s.cachedTokens));
    family('minke_prompt_cached_tokens_total', 'counter', 'Prompt tokens restored from the prefix cache.', rows((s) => s.cachedTokens));
    family('minke_generated_tokens_total', 'counter', 'Tokens generated.', rows((s) => s.generatedTokens));
    family('minke_prefix_cache_hit_ratio', 'gauge', 'Share of prompt tokens restored from the prefix cache.',
      rows((s) => (s.promptTokens + s.cachedTokens ? s.cachedTokens / (s.promptTokens + s.cachedTokens) : 0)));
    family('minke_generated_tokens_per_second', 'gauge', 'Tokens generated per second over the last minute, all models.', [['', this.rate(models.reduce((a, [, s]) => a + s.generatedTokens, 0))]]);
    return out.join('\n') + '\n';
  }

  private rate(total: number): number {
    const now = Date.now();
    this.samples.push([now, total]);
    while (this.samples.length > 1 && now - this.samples[0][0] > 60_000) this.samples.shift();
    const [t0, n0] = this.samples[0];
    return now > t0 ? ((total - n0) * 1000) / (now - t0) : 0;
  }
}

function escape(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
