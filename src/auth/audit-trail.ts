import type { AuditEvent } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import { storeResource } from '../rest/internal-write.js';
import type { ServerWriter } from '../rest/unit-of-work.js';
import { CoalescedFailures } from './audit-coalescing.js';

/**
 * One AuditEvent per request, shaped after IHE Basic Audit Log Patterns (who: client and role and
 * source address; what: interaction and resource; which patient; when; outcome). Events are
 * written in batches (one transaction per ~100 ms) so auditing does not double the cost of every
 * read; `flush()` writes what is pending (on shutdown, and in tests). The Express middleware that
 * records each request is src/auth/audit-middleware.ts.
 */
export const CLIENT_ID_SYSTEM = 'https://ptreferral.dev/fhir/client-id';

export class AuditTrail {
  private pending: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly failures = new CoalescedFailures();
  private windowTimer: NodeJS.Timeout | undefined;

  constructor(
    /** AuditEvents go through the write path like every other write (one unit per batch). */
    private readonly writer: ServerWriter,
    private readonly logger: Logger,
    private readonly delayMs = 100,
    /** How long failed authentications of one address and status share one AuditEvent. */
    private readonly failureWindowMs = 60_000,
  ) {}

  /**
   * Records `event`; a failed authentication (an unauthenticated 401 or 429, on any endpoint) is
   * coalesced with the others of its address, event type and status in the current window
   * (audit-coalescing.ts), so a flood of bad tokens is a few rows, not one per request.
   */
  record(event: AuditEvent): void {
    const key = failedAuthenticationKey(event);
    if (key !== undefined) {
      this.recordFailure(key, event);
      return;
    }
    this.append(event);
  }

  private append(event: AuditEvent): void {
    this.pending.push(event);
    this.timer ??= setTimeout(() => void this.flush(), this.delayMs);
  }

  private recordFailure(key: string, event: AuditEvent): void {
    if (this.failures.add(key, event)) {
      this.closeFailureWindows();
      return;
    }
    this.windowTimer ??= setTimeout(() => this.closeFailureWindows(), this.failureWindowMs).unref();
  }

  private closeFailureWindows(): void {
    clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    for (const event of this.failures.drain()) this.append(event);
  }

  /** An event that could not even be described: logged by its error type only (no patient data). */
  lost(err: unknown): void {
    try {
      this.logger.error(
        { err: { type: (err as Error)?.name ?? typeof err }, lost: 1 },
        'could not record an AuditEvent',
      );
    } catch {
      // Nothing more can be done from inside a response listener.
    }
  }

  /** Writes what is pending, the failure windows still open included (shutdown, tests). */
  async flush(): Promise<void> {
    if (this.failures.size > 0) this.closeFailureWindows();
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.splice(0);
    const previous = this.flushing;
    this.flushing = (async () => {
      await previous;
      if (batch.length === 0) return;
      try {
        await this.writer(async (uow) => {
          for (const event of batch) await storeResource(uow, event, { built: true });
        });
      } catch (err) {
        this.logger.error(
          { err: { type: (err as Error).name }, lost: batch.length },
          'could not write AuditEvents',
        );
      }
    })();
    await this.flushing;
  }
}

/** `address|type|status` of an unauthenticated 401 or 429, the requests coalesced; else undefined. */
function failedAuthenticationKey(event: AuditEvent): string | undefined {
  const agent = event.agent?.[0];
  if (agent?.who?.identifier || agent?.who?.display !== 'unauthenticated') return undefined;
  if (event.outcomeDesc !== 'HTTP 401' && event.outcomeDesc !== 'HTTP 429') return undefined;
  return `${agent.network?.address ?? 'unknown'}|${event.type?.code ?? ''}|${event.outcomeDesc}`;
}
