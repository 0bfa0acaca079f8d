import { describe, expect, it } from 'vitest';
import {
  decide,
  DEFAULT_RETRY_POLICY,
  parseRetryAfter,
  type AttemptOutcome,
  type Decision,
  type RetryPolicy,
} from '../../src/delivery/retry-policy.js';

/**
 * The retry policy is pure: every case is decided from the outcome, the attempt number, the
 * queue time, "now" and an injected random source — no clocks, no sockets.
 */

const NOW = Date.parse('2026-11-03T10:00:00.000Z');
const POLICY: RetryPolicy = { baseDelayMs: 1_000, maxDelayMs: 60_000, giveUpAfterMs: 24 * 3_600_000 };
/** The largest value Math.random can answer: the top of the jitter range. */
const TOP = 1 - Number.EPSILON;
const http = (status: number, retryAfter?: string): AttemptOutcome => ({ kind: 'http', status, retryAfter });
const network = (error = 'ECONNREFUSED'): AttemptOutcome => ({ kind: 'network', error });

/** The delay a retry decision asks for, failing the test when the decision is not a retry. */
function delayOf(decision: Decision): number {
  expect(decision.action).toBe('retry');
  return decision.action === 'retry' ? decision.atMs - NOW : NaN;
}

describe('decide: delivered', () => {
  it.each([200, 201, 202, 204, 299])('HTTP %i is delivered', (status) => {
    expect(decide(http(status), 1, NOW, NOW, POLICY)).toEqual({ action: 'delivered' });
  });

  it('a 2xx is delivered even past the give-up deadline', () => {
    expect(decide(http(200), 40, NOW - 48 * 3_600_000, NOW, POLICY)).toEqual({ action: 'delivered' });
  });
});

describe('decide: transient or permanent', () => {
  it.each([408, 429, 500, 502, 503, 504, 599])('HTTP %i is transient: retried', (status) => {
    const decision = decide(http(status), 1, NOW, NOW, POLICY, () => 0.5);
    expect(decision).toMatchObject({ action: 'retry', reason: `HTTP ${status}` });
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'no answer within 300 ms'])(
    'a network failure (%s) is transient: retried',
    (error) => {
      expect(decide(network(error), 1, NOW, NOW, POLICY, () => 0.5)).toMatchObject({
        action: 'retry',
        reason: error,
      });
    },
  );

  it.each([400, 401, 403, 404, 405, 409, 410, 413, 415, 422])(
    'HTTP %i is permanent: given up at once, without waiting for the deadline',
    (status) => {
      const decision = decide(http(status), 1, NOW, NOW, POLICY, () => 0.5);
      expect(decision.action).toBe('give-up');
      expect(decision.action === 'give-up' && decision.reason).toContain(`HTTP ${status}`);
    },
  );

  it('a permanent 4xx is not turned into a retry by Retry-After', () => {
    expect(decide(http(400, '1'), 1, NOW, NOW, POLICY).action).toBe('give-up');
  });

  it('a redirect is not followed and not retried (the worker posts with redirect: manual)', () => {
    expect(decide(http(301), 1, NOW, NOW, POLICY).action).toBe('give-up');
    expect(decide(http(307), 1, NOW, NOW, POLICY).action).toBe('give-up');
  });
});

describe('decide: capped exponential backoff with full jitter', () => {
  it('the top of the jitter range doubles with every attempt from the base delay', () => {
    const tops = [1, 2, 3, 4, 5].map((attempt) =>
      delayOf(decide(http(503), attempt, NOW, NOW, POLICY, () => TOP)),
    );
    expect(tops).toEqual([999, 1_999, 3_999, 7_999, 15_999]);
  });

  it('the backoff is capped at maxDelayMs, even for very high attempt numbers', () => {
    for (const attempt of [7, 8, 20, 100, 10_000]) {
      expect(delayOf(decide(http(503), attempt, NOW, NOW, POLICY, () => TOP))).toBe(59_999);
    }
  });

  it('attempt 0 (never claimed) is treated as the first attempt', () => {
    expect(delayOf(decide(http(503), 0, NOW, NOW, POLICY, () => TOP))).toBe(999);
  });

  it('full jitter: the delay is random * backoff, over the whole range, with a 50 ms floor', () => {
    const attempt = 4; // backoff 8 s
    expect(delayOf(decide(http(503), attempt, NOW, NOW, POLICY, () => 0))).toBe(50);
    expect(delayOf(decide(http(503), attempt, NOW, NOW, POLICY, () => 0.25))).toBe(2_000);
    expect(delayOf(decide(http(503), attempt, NOW, NOW, POLICY, () => 0.5))).toBe(4_000);
    expect(delayOf(decide(http(503), attempt, NOW, NOW, POLICY, () => 0.75))).toBe(6_000);
    expect(delayOf(decide(http(503), attempt, NOW, NOW, POLICY, () => TOP))).toBe(7_999);
    // Every draw of a seeded sequence falls in [50, 8000).
    let seed = 42;
    const lcg = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const delays = Array.from({ length: 500 }, () =>
      delayOf(decide(network(), attempt, NOW, NOW, POLICY, lcg)),
    );
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(50);
    expect(Math.max(...delays)).toBeLessThan(8_000);
    // ... and spread over it: jitter, not a fixed delay.
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(6_000);
  });

  it('without an injected random source, delays still stay within the range', () => {
    for (let i = 0; i < 200; i++) {
      const delay = delayOf(decide(http(500), 3, NOW, NOW, POLICY));
      expect(delay).toBeGreaterThanOrEqual(50);
      expect(delay).toBeLessThan(4_000);
    }
  });

  it('the default policy starts at 1 s and caps at 10 min', () => {
    expect(delayOf(decide(http(503), 1, NOW, NOW, DEFAULT_RETRY_POLICY, () => TOP))).toBe(999);
    expect(delayOf(decide(http(503), 50, NOW, NOW, DEFAULT_RETRY_POLICY, () => TOP))).toBe(599_999);
  });
});

describe('decide: Retry-After (RFC 9110 §10.2.3)', () => {
  it('delay-seconds are honoured when longer than the jittered backoff', () => {
    expect(delayOf(decide(http(503, '7'), 1, NOW, NOW, POLICY, () => 0))).toBe(7_000);
    expect(delayOf(decide(http(429, '30'), 1, NOW, NOW, POLICY, () => TOP))).toBe(30_000);
  });

  it('the jittered backoff wins when it is longer than Retry-After', () => {
    expect(delayOf(decide(http(503, '1'), 5, NOW, NOW, POLICY, () => 0.5))).toBe(8_000);
  });

  it('an HTTP-date is honoured as the time until that date', () => {
    const in45s = new Date(NOW + 45_000).toUTCString();
    expect(delayOf(decide(http(503, in45s), 1, NOW, NOW, POLICY, () => 0))).toBe(45_000);
  });

  it('Retry-After is capped at maxDelayMs, as seconds and as a date', () => {
    expect(delayOf(decide(http(503, '86400'), 1, NOW, NOW, POLICY, () => 0))).toBe(60_000);
    const tomorrow = new Date(NOW + 86_400_000).toUTCString();
    expect(delayOf(decide(http(429, tomorrow), 1, NOW, NOW, POLICY, () => 0))).toBe(60_000);
  });

  it('a date in the past and an unparseable value leave the jittered backoff alone', () => {
    const past = new Date(NOW - 60_000).toUTCString();
    expect(delayOf(decide(http(503, past), 2, NOW, NOW, POLICY, () => 0.5))).toBe(1_000);
    expect(delayOf(decide(http(503, 'soon'), 2, NOW, NOW, POLICY, () => 0.5))).toBe(1_000);
    expect(delayOf(decide(http(503, ''), 2, NOW, NOW, POLICY, () => 0.5))).toBe(1_000);
  });

  it('parseRetryAfter reads seconds (trimmed) and dates, and answers undefined otherwise', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter(' 12 ', NOW)).toBe(12_000);
    expect(parseRetryAfter('Tue, 03 Nov 2026 10:01:00 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Tue, 03 Nov 2026 09:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('next week', NOW)).toBeUndefined();
  });

  it('values outside the grammar never shorten the backoff nor lengthen it past the cap', () => {
    // Date.parse is lenient ('-5' and '1.5' parse as dates in 2001), so such values read as
    // "now": the jittered backoff stands.
    for (const value of ['-5', '1.5', '2099', 'Mon, 99 Foo 2026']) {
      const delay = delayOf(decide(http(503, value), 2, NOW, NOW, POLICY, () => 0.5));
      expect(delay).toBeGreaterThanOrEqual(1_000);
      expect(delay).toBeLessThanOrEqual(POLICY.maxDelayMs);
    }
  });
});

describe('decide: give up after the deadline', () => {
  const policy: RetryPolicy = { baseDelayMs: 1_000, maxDelayMs: 60_000, giveUpAfterMs: 3_600_000 };

  it('a transient failure is retried while the retry would still fall within the deadline', () => {
    const queued = NOW - 3_600_000 + 10_000; // 10 s of the hour left
    expect(decide(http(503), 3, queued, NOW, policy, () => 0.5).action).toBe('retry'); // +2 s
  });

  it('a transient failure is given up when the next attempt would fall past the deadline', () => {
    const queued = NOW - 3_600_000 + 10_000;
    const decision = decide(http(503), 7, queued, NOW, policy, () => 0.5); // +30 s
    expect(decision).toEqual({ action: 'give-up', reason: 'still failing after 1 h (HTTP 503)' });
  });

  it('a network failure past the deadline is given up with its reason', () => {
    const decision = decide(network('ECONNREFUSED'), 40, NOW - 2 * 3_600_000, NOW, policy, () => 0);
    expect(decision).toEqual({ action: 'give-up', reason: 'still failing after 1 h (ECONNREFUSED)' });
  });

  it('a Retry-After that reaches past the deadline gives up rather than retrying late', () => {
    const queued = NOW - 3_600_000 + 5_000;
    expect(decide(http(503, '30'), 1, queued, NOW, policy, () => 0).action).toBe('give-up');
    expect(decide(http(503, '2'), 1, queued, NOW, policy, () => 0).action).toBe('retry');
  });
});
