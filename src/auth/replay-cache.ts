import { OAuthError } from './oauth-error.js';

/**
 * The assertions already used (RFC 7523 §3: "the authorization server MAY ensure that JWTs are not
 * replayed", SMART Backend Services: jti must not be reused). Each entry lives until its
 * assertion's `exp` (at most 5 minutes ahead), then is forgotten: a replay after that is refused
 * as expired anyway. A hard cap bounds the memory; when it is full of live entries the service
 * refuses new assertions (429, until the earliest entry expires) rather than forget one, which
 * would let that assertion be replayed.
 */
export const DEFAULT_REPLAY_CACHE_SIZE = 100_000;
const PURGE_EVERY_MS = 1_000;

export class ReplayCache {
  private readonly seen = new Map<string, number>();
  private lastPurge = 0;
  private earliest = Infinity;

  constructor(
    readonly capacity = DEFAULT_REPLAY_CACHE_SIZE,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /** Remembers `key` until `expiresAtMs`; throws if it was seen (a replay) or the cache is full. */
  remember(key: string, expiresAtMs: number): void {
    const t = this.now();
    if (t - this.lastPurge >= PURGE_EVERY_MS || this.seen.size >= this.capacity) this.purge(t);
    const known = this.seen.get(key);
    if (known !== undefined && known >= t) {
      throw new OAuthError(401, 'invalid_client', 'client_assertion jti was already used (replay)');
    }
    if (this.seen.size >= this.capacity) {
      throw new OAuthError(
        429,
        'invalid_request',
        'Too many client assertions in use at once; retry shortly',
        Math.max(1, Math.ceil((this.earliest - t) / 1000)),
      );
    }
    this.seen.set(key, expiresAtMs);
    this.earliest = Math.min(this.earliest, expiresAtMs);
  }

  private purge(t: number): void {
    this.lastPurge = t;
    let earliest = Infinity;
    for (const [key, exp] of this.seen) {
      if (exp < t) this.seen.delete(key);
      else earliest = Math.min(earliest, exp);
    }
    this.earliest = earliest;
  }
}
