import type { NextFunction, Request, Response } from 'express';
import { fhirError } from '../fhir/errors.js';
import { clientAddress } from './client-address.js';
import { TokenBuckets } from './token-buckets.js';

/**
 * A token bucket per client (per address before authentication; the address as `trust proxy`
 * sees it, client-address.ts): `perMinute` requests a minute on average, bursts up to the same
 * number. Over it: 429 with Retry-After (RFC 6585 §4). The buckets are bounded (token-buckets.ts).
 */
export function rateLimit(perMinute: number, now: () => number = Date.now) {
  const buckets = new TokenBuckets(perMinute, now);
  return (req: Request, res: Response, next: NextFunction): void => {
    const key = req.auth?.clientId ?? `ip:${clientAddress(req)}`;
    const taken = buckets.take(key);
    if (!taken.ok) {
      res.setHeader('Retry-After', String(taken.retryAfterSeconds));
      return next(fhirError('rate-limited', `Too many requests: the limit is ${perMinute} a minute`));
    }
    next();
  };
}
