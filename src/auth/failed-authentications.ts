import { LruMap } from './lru-map.js';

/**
 * Failed authentications (401) per address, in fixed windows: past `limit` failures in one
 * window the address is answered 429 with Retry-After (RFC 6585 §4) until the window ends, so a
 * flood of bad tokens costs neither token verification nor audit rows without end. A valid
 * token from the same address is still served: a shared NAT address does not lock out the
 * clients behind it. The table of addresses is bounded (least recently seen evicted first).
 */
export const DEFAULT_AUTH_FAILURE_LIMIT = 100;
export const DEFAULT_AUTH_FAILURE_WINDOW_SECONDS = 60;
const MAX_ADDRESSES = 10_000;

export interface FailureLimitOptions {
  /** Failures an address may have in one window (AUTH_FAILURE_LIMIT). */
  limit?: number;
  /** The window, in seconds (AUTH_FAILURE_WINDOW_SECONDS). */
  windowSeconds?: number;
  now?: () => number;
}

export type FailureVerdict = { limited: false } | { limited: true; retryAfterSeconds: number };

export class FailedAuthentications {
  readonly limit: number;
  readonly windowSeconds: number;
  private readonly windows = new LruMap<string, { start: number; count: number }>(MAX_ADDRESSES);
  private readonly now: () => number;

  constructor(options: FailureLimitOptions = {}) {
    this.limit = options.limit ?? DEFAULT_AUTH_FAILURE_LIMIT;
    this.windowSeconds = options.windowSeconds ?? DEFAULT_AUTH_FAILURE_WINDOW_SECONDS;
    this.now = options.now ?? Date.now;
  }

  /** Counts one failure of `address`; limited once it has had `limit` in the current window. */
  fail(address: string): FailureVerdict {
    const t = this.now();
    const windowMs = this.windowSeconds * 1000;
    let window = this.windows.get(address);
    if (!window || t - window.start >= windowMs) {
      window = { start: t, count: 0 };
    }
    window.count += 1;
    this.windows.set(address, window);
    if (window.count <= this.limit) return { limited: false };
    return {
      limited: true,
      retryAfterSeconds: Math.max(1, Math.ceil((window.start + windowMs - t) / 1000)),
    };
  }
}
