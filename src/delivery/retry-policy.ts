/**
 * When to try a notification again. Pure, so the policy is tested without clocks or sockets.
 * - 2xx: delivered.
 * - 408 Request Timeout, 429 Too Many Requests, 5xx, timeouts and network errors: transient —
 *   retry with capped exponential backoff and full jitter (AWS Architecture Blog, "Exponential
 *   Backoff And Jitter", 2015), honouring Retry-After (RFC 9110 §10.2.3) within the cap.
 * - an endpoint whose address the endpoint policy forbids: permanent, nothing was sent.
 * - any other 4xx: permanent — the receiver refuses what we send; retrying would only storm it.
 * After `giveUpAfterMs` since the notification was queued, transient failures become permanent.
 */
export interface RetryPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
  giveUpAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  baseDelayMs: 1_000,
  maxDelayMs: 10 * 60_000,
  giveUpAfterMs: 24 * 60 * 60_000,
};

export type AttemptOutcome =
  | { kind: 'http'; status: number; retryAfter?: string }
  | { kind: 'network'; error: string }
  /** Not attempted: the endpoint resolves to an address the endpoint policy forbids (permanent). */
  | { kind: 'blocked'; error: string };

export type Decision =
  | { action: 'delivered' }
  | { action: 'retry'; atMs: number; reason: string }
  | { action: 'give-up'; reason: string };

export function decide(
  outcome: AttemptOutcome,
  attempt: number,
  queuedAtMs: number,
  nowMs: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): Decision {
  if (outcome.kind === 'http' && outcome.status >= 200 && outcome.status < 300) {
    return { action: 'delivered' };
  }
  if (outcome.kind === 'blocked') {
    return { action: 'give-up', reason: `the endpoint is not allowed (${outcome.error})` };
  }
  const reason = outcome.kind === 'http' ? `HTTP ${outcome.status}` : outcome.error;
  const transient =
    outcome.kind === 'network' || outcome.status === 408 || outcome.status === 429 || outcome.status >= 500;
  if (!transient) {
    return { action: 'give-up', reason: `the endpoint refused the notification (${reason})` };
  }
  const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  let delay = Math.floor(random() * backoff);
  const retryAfter = outcome.kind === 'http' ? parseRetryAfter(outcome.retryAfter, nowMs) : undefined;
  if (retryAfter !== undefined) {
    delay = Math.min(policy.maxDelayMs, Math.max(delay, retryAfter));
  }
  const atMs = nowMs + Math.max(delay, 50);
  if (atMs - queuedAtMs > policy.giveUpAfterMs) {
    return {
      action: 'give-up',
      reason: `still failing after ${Math.round(policy.giveUpAfterMs / 3_600_000)} h (${reason})`,
    };
  }
  return { action: 'retry', atMs, reason };
}

/** Retry-After is either delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
