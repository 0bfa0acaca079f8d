import { LruMap } from './lru-map.js';

/**
 * A token bucket per key: `perMinute` on average, bursts up to the same number. The buckets are
 * an LRU of at most `maxKeys` (least recently seen evicted first): a flood of new keys forgets
 * only the keys idle longest (whose buckets had refilled, or nearly), never everyone's at once.
 */
export const MAX_BUCKETS = 10_000;

export type Take = { ok: true } | { ok: false; retryAfterSeconds: number };

export class TokenBuckets {
  private readonly buckets: LruMap<string, { tokens: number; at: number }>;
  private readonly refillPerMs: number;

  constructor(
    readonly perMinute: number,
    private readonly now: () => number = Date.now,
    maxKeys = MAX_BUCKETS,
  ) {
    this.buckets = new LruMap(maxKeys);
    this.refillPerMs = perMinute / 60_000;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token from `key`'s bucket, or says how long until there is one. */
  take(key: string): Take {
    const t = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.perMinute, at: t };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (t - bucket.at) * this.refillPerMs);
    bucket.at = t;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) {
      return {
        ok: false,
        retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.refillPerMs / 1000)),
      };
    }
    bucket.tokens -= 1;
    return { ok: true };
  }
}
