import type { AuditEvent, Subscription } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import { storeResource } from '../rest/internal-write.js';
import type { ServerWriter } from '../rest/unit-of-work.js';
import type { FhirStore, OutboxNotification } from '../store/fhir-store.js';
import { buildNotificationBundle } from './notification-bundle.js';
import { decide, DEFAULT_RETRY_POLICY, type AttemptOutcome, type RetryPolicy } from './retry-policy.js';
import { signBody, SIGNATURE_HEADER } from './signature.js';
import { tryReadSettings, type SubscriptionSettings } from './subscription-settings.js';

/**
 * The delivery worker: takes due notifications from the outbox, POSTs each to its subscription's
 * rest-hook endpoint, and records the outcome. It only sends and retries — everything it sends
 * was committed by a write. Several workers (several instances) can run: claims are leases, so a
 * notification is handed to one worker at a time, and one whose worker died becomes due again.
 * Each attempt is recorded as an AuditEvent, so delivery is visible through FHIR.
 */
export interface DeliveryWorkerOptions {
  store: FhirStore;
  /** The worker's own writes (Subscription status, AuditEvents) go through the write path. */
  writer: ServerWriter;
  logger: Logger;
  baseUrl: string;
  retry?: RetryPolicy;
  /** Per-attempt timeout unless the Subscription sets backport-timeout. */
  timeoutMs?: number;
  /** Longest sleep between outbox checks when nothing is due (retries, other instances' writes). */
  pollMs?: number;
  batchSize?: number;
  /** Who the AuditEvents name as the sender. */
  practice: { reference: string };
  fetchImpl?: typeof fetch;
}

export class DeliveryWorker {
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly lastSent = new Map<string, number>();
  private readonly retry: RetryPolicy;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: DeliveryWorkerOptions) {
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.fetchImpl = options.fetchImpl ?? fetch;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  /** Called after a commit that queued notifications: deliver now rather than at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Delivers everything due now; answers how many notifications it attempted. */
  async runOnce(nowMs = Date.now()): Promise<number> {
    const batch = await this.options.store.claimNotifications(nowMs, this.options.batchSize ?? 50, 60_000);
    // Subscriptions in parallel, each one's notifications in order: a receiver sees events in
    // sequence, and one that refuses for good gets one request, not a batch of them.
    const bySubscription = new Map<string, OutboxNotification[]>();
    for (const n of batch)
      bySubscription.set(n.subscriptionId, [...(bySubscription.get(n.subscriptionId) ?? []), n]);
    await Promise.all(
      [...bySubscription.values()].map(async (queue) => {
        for (const n of queue.sort((a, b) => a.eventNumber - b.eventNumber)) await this.deliver(n);
      }),
    );
    await this.sendHeartbeats(nowMs);
    return batch.length;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const attempted = await this.runOnce();
        if (attempted > 0) continue;
      } catch (err) {
        this.options.logger.error({ err: { type: (err as Error).name } }, 'delivery loop failed; retrying');
      }
      await this.sleep();
    }
  }

  private async sleep(): Promise<void> {
    const pollMs = this.options.pollMs ?? 1_000;
    let due: number | undefined;
    try {
      due = await this.options.store.nextNotificationDueMs();
    } catch {
      due = undefined;
    }
    const wait = Math.max(10, Math.min(pollMs, due !== undefined ? due - Date.now() : pollMs));
    await new Promise<void>((resolve) => {
      this.wakeUp = resolve;
      this.timer = setTimeout(resolve, wait);
    });
    clearTimeout(this.timer);
    this.wakeUp = undefined;
  }

  private async deliver(notification: OutboxNotification): Promise<void> {
    const { store } = this.options;
    const current = await store.read('Subscription', notification.subscriptionId);
    const subscription = current?.resource as Subscription | undefined;
    const settings = subscription && !current?.deleted ? tryReadSettings(subscription) : undefined;
    if (!subscription || !settings || subscription.status !== 'active') {
      await store.finishNotification(notification.id, {
        status: 'failed',
        error: 'the subscription is no longer active',
      });
      return;
    }
    const [type, id, , versionId] = notification.focus.split('/');
    const focus =
      settings.content === 'full-resource'
        ? (await store.vread(type as string, id as string, versionId as string))?.resource
        : undefined;
    const bundle = buildNotificationBundle({
      baseUrl: this.options.baseUrl,
      subscription,
      type: 'event-notification',
      eventCount: notification.eventNumber,
      events: [{ event: notification, resource: focus }],
      content: settings.content,
      now: new Date().toISOString(),
    });
    const outcome = await this.post(settings, JSON.stringify(bundle));
    const nowMs = Date.now();
    const decision = decide(outcome, notification.attempts, notification.createdMs, nowMs, this.retry);
    await this.audit(subscription, notification, outcome, decision.action === 'delivered');
    if (decision.action === 'delivered') {
      this.lastSent.set(notification.subscriptionId, nowMs);
      await store.finishNotification(notification.id, { status: 'delivered', atMs: nowMs });
    } else if (decision.action === 'retry') {
      await store.finishNotification(notification.id, {
        status: 'retry',
        nextAttemptMs: decision.atMs,
        error: decision.reason,
      });
    } else {
      await store.finishNotification(notification.id, { status: 'failed', error: decision.reason });
      await this.setError(subscription, decision.reason);
    }
  }

  private async post(settings: SubscriptionSettings, body: string): Promise<AttemptOutcome> {
    const headers: Record<string, string> = { 'content-type': 'application/fhir+json' };
    for (const header of settings.headers) {
      const i = header.indexOf(':');
      if (i > 0) headers[header.slice(0, i).trim().toLowerCase()] = header.slice(i + 1).trim();
    }
    if (settings.secret) {
      headers[SIGNATURE_HEADER] = signBody(settings.secret, body, Math.floor(Date.now() / 1000));
    }
    const timeoutMs = settings.timeoutSeconds
      ? settings.timeoutSeconds * 1000
      : (this.options.timeoutMs ?? 10_000);
    try {
      const res = await this.fetchImpl(settings.endpoint, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      return { kind: 'http', status: res.status, retryAfter: res.headers.get('retry-after') ?? undefined };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return {
        kind: 'network',
        error: e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.name),
      };
    }
  }

  /** Gives up on a subscription: status error with the reason, and no more attempts for it. */
  private async setError(subscription: Subscription, reason: string): Promise<void> {
    const { store } = this.options;
    const abandoned = await store.abandonNotifications(subscription.id as string, reason);
    await this.options.writer(async (uow) => {
      const current = (await uow.system.read('Subscription', subscription.id as string))?.resource as
        Subscription | undefined;
      if (!current || current.status === 'error') return;
      await storeResource(uow, { ...current, status: 'error', error: `Delivery stopped: ${reason}` });
    });
    this.options.logger.warn({ subscription: subscription.id, abandoned }, 'subscription set to error');
  }

  private async sendHeartbeats(nowMs: number): Promise<void> {
    // Heartbeats are best-effort and per instance: a missed one says "check $status", nothing is lost.
    for (const [id, last] of this.lastSent) {
      const current = await this.options.store.read('Subscription', id);
      const subscription = current?.resource as Subscription | undefined;
      const settings = subscription ? tryReadSettings(subscription) : undefined;
      if (!subscription || subscription.status !== 'active' || !settings?.heartbeatSeconds) continue;
      if (nowMs - last < settings.heartbeatSeconds * 1000) continue;
      const bundle = buildNotificationBundle({
        baseUrl: this.options.baseUrl,
        subscription,
        type: 'heartbeat',
        eventCount: await this.options.store.subscriptionEventCount(id),
        events: [],
        content: settings.content,
        now: new Date(nowMs).toISOString(),
      });
      this.lastSent.set(id, nowMs);
      await this.post(settings, JSON.stringify(bundle));
    }
  }

  /** Tracks subscriptions for heartbeats from their activation, not only after a first event. */
  track(subscriptionId: string, nowMs = Date.now()): void {
    if (!this.lastSent.has(subscriptionId)) this.lastSent.set(subscriptionId, nowMs);
  }

  private async audit(
    subscription: Subscription,
    notification: OutboxNotification,
    outcome: AttemptOutcome,
    delivered: boolean,
  ): Promise<void> {
    const event: AuditEvent = {
      resourceType: 'AuditEvent',
      type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110106', display: 'Export' },
      subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'create', display: 'create' }],
      action: 'C',
      recorded: new Date().toISOString(),
      outcome: delivered
        ? '0'
        : outcome.kind === 'http' && outcome.status < 500 && outcome.status !== 408 && outcome.status !== 429
          ? '8'
          : '4',
      outcomeDesc: `Notification ${notification.eventNumber} attempt ${notification.attempts}: ${outcome.kind === 'http' ? `HTTP ${outcome.status}` : outcome.error}`,
      agent: [
        { type: { text: 'sender' }, who: { reference: this.options.practice.reference }, requestor: true },
        {
          type: { text: 'receiver' },
          who: { display: new URL(tryReadSettings(subscription)?.endpoint ?? 'http://unknown').host },
          requestor: false,
        },
      ],
      source: {
        observer: { reference: this.options.practice.reference },
        type: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/security-source-type',
            code: '4',
            display: 'Application Server',
          },
        ],
      },
      entity: [
        {
          what: { reference: `Subscription/${subscription.id}` },
          type: {
            system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
            code: '2',
            display: 'System Object',
          },
        },
        {
          what: { reference: notification.focus },
          detail: [{ type: 'event-number', valueString: String(notification.eventNumber) }],
        },
      ],
    };
    try {
      await this.options.writer((uow) => storeResource(uow, event, { built: true }));
    } catch (err) {
      this.options.logger.warn(
        { err: { type: (err as Error).name } },
        'could not record a delivery AuditEvent',
      );
    }
  }
}
