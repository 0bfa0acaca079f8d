import type { NextFunction, Request, Response } from 'express';
import { fhirError } from '../fhir/errors.js';

/**
 * A token bucket per client (per address before authentication): `perMinute` requests a minute
 * on average, bursts up to the same number. Over it: 429 with Retry-After (RFC 6585 §4).
 */
export function rateLimit(perMinute: number, now: () => number = Date.now) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const refillPerMs = perMinute / 60_000;
  return (req: Request, res: Response, next: NextFunction): void => {
    const key = req.auth?.clientId ?? `ip:${req.socket.remoteAddress ?? 'unknown'}`;
    const t = now();
    const bucket = buckets.get(key) ?? { tokens: perMinute, at: t };
    bucket.tokens = Math.min(perMinute, bucket.tokens + (t - bucket.at) * refillPerMs);
    bucket.at = t;
    if (bucket.tokens < 1) {
      buckets.set(key, bucket);
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerMs / 1000))));
      return next(fhirError('rate-limited', `Too many requests: the limit is ${perMinute} a minute`));
    }
    bucket.tokens -= 1;
    buckets.set(key, bucket);
    if (buckets.size > 10_000) buckets.clear();
    next();
  };
}
