/**
 * Per-key limits: requests in flight at once (DeepSeek's limits are concurrency limits) and,
 * optionally, requests per minute. Over either → 429 with Retry-After.
 */
import { ApiError } from './errors.js';

export class RateLimiter {
  private readonly inFlight = new Map<string, number>();
  private readonly recent = new Map<string, number[]>();

  constructor(private readonly maxConcurrent: number, private readonly perMinute?: number) {}

  /** Counts one request of `key` in; the returned function counts it out. */
  acquire(key: string): () => void {
    const n = this.inFlight.get(key) ?? 0;
    if (n >= this.maxConcurrent) throw new ApiError(429, `Rate Limit Reached: ${n} requests of this key are already in flight (limit ${this.maxConcurrent})`, { retryAfter: 1 });
    if (this.perMinute !== undefined) {
      const now = Date.now();
      const times = (this.recent.get(key) ?? []).filter((t) => now - t < 60_000);
      if (times.length >= this.perMinute) {
        this.recent.set(key, times);
        throw new ApiError(429, `Rate Limit Reached: ${this.perMinute} requests per minute for this key`, { retryAfter: Math.max(1, Math.ceil((times[0] + 60_000 - now) / 1000)) });
      }
      times.push(now);
      this.recent.set(key, times);
    }
    this.inFlight.set(key, n + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const m = (this.inFlight.get(key) ?? 1) - 1;
      if (m > 0) this.inFlight.set(key, m);
      else this.inFlight.delete(key);
    };
  }
}
