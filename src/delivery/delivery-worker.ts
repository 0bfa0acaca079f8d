import type { AuditEvent, Subscription } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import { storeResource } from '../rest/internal-write.js';
import type { ServerWriter } from '../rest/unit-of-work.js';
import type { FhirStore, OutboxNotification } from '../store/fhir-store.js';
import { buildNotificationBundle } from './notification-bundle.js';
import { decide, DEFAULT_RETRY_POLICY, type AttemptOutcome, type RetryPolicy } from './retry-policy.js';
import { sendableHeaders } from './channel-headers.js';
import { EndpointRules, type EndpointPolicy } from './endpoint-policy.js';
import { createNotificationSender, type NotificationSender } from './send-notification.js';
import { signBody, SIGNATURE_HEADER } from './signature.js';
import { MAX_TIMEOUT_SECONDS, tryReadSettings, type SubscriptionSettings } from './subscription-settings.js';

/**
 * The delivery worker: takes due notifications from the outbox, POSTs each to its subscription's
 * rest-hook endpoint, and records the outcome. It only sends and retries — everything it sends
 * was committed by a write. Several workers (several instances) can run: claims are leases, so a
 * notification is handed to one worker at a time, and one whose worker died becomes due again.
 * Each attempt is recorded as an AuditEvent, so delivery is visible through FHIR.
 *
 * Subscriptions are delivered independently: each has a lane (its notifications in event order,
 * one at a time, so a receiver sees events in sequence), and at most `concurrency` attempts run
 * at once across lanes, taken round-robin. Nothing waits for a whole batch: a receiver that
 * hangs holds its own lane, for at most its timeout per attempt (MAX_TIMEOUT_SECONDS), while the
 * others keep being served.
 */
export interface DeliveryWorkerOptions {
  store: FhirStore;
  /** The worker's own writes (Subscription status, AuditEvents) go through the write path. */
  writer: ServerWriter;
  logger: Logger;
  baseUrl: string;
  retry?: RetryPolicy;
  /** Per-attempt timeout unless the Subscription sets backport-timeout; at most MAX_TIMEOUT_SECONDS. */
  timeoutMs?: number;
  /** Longest sleep between outbox checks when nothing is due (retries, other instances' writes). */
  pollMs?: number;
  batchSize?: number;
  /** Attempts in flight at once (default 32). */
  concurrency?: number;
  /** Where endpoints may point (endpoint-policy.ts); default: public addresses only. */
  endpoints?: EndpointPolicy;
  /** Who the AuditEvents name as the sender. */
  practice: { reference: string };
  /** Replaces the guarded sender (send-notification.ts): no address checks are made then. */
  fetchImpl?: typeof fetch;
}

/** A claim's lease: an attempt starts only while enough of it is left to finish inside it. */
const LEASE_MS = 60_000;
const LEASE_MARGIN_MS = 5_000;
const HEARTBEAT_CHECK_MS = 1_000;

type Task =
  | { kind: 'notification'; notification: OutboxNotification; claimedAtMs: number; done: () => void }
  | { kind: 'heartbeat'; done: () => void };

interface Lane {
  tasks: Task[];
  /** Waiting for a slot or attempting: a lane is never attempted twice at once. */
  scheduled: boolean;
}

export class DeliveryWorker {
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly lastSent = new Map<string, number>();
  private readonly retry: RetryPolicy;
  private readonly send: NotificationSender & { close?: () => void };
  private readonly endpoints: EndpointRules;
  private readonly concurrency: number;
  private readonly lanes = new Map<string, Lane>();
  /** Lanes waiting for a slot, oldest first. */
  private readonly ready: string[] = [];
  /** Notification ids claimed and not yet finished (or dropped) here. */
  private readonly held = new Set<number>();
  private readonly inFlight = new Set<Promise<void>>();
  private lastHeartbeatCheckMs = 0;
  /** Set by stop(): nothing new starts (a heartbeat check may still be finishing). */
  private stopped = false;

  constructor(private readonly options: DeliveryWorkerOptions) {
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.concurrency = Math.max(1, options.concurrency ?? 32);
    this.endpoints = new EndpointRules(options.endpoints ?? { allowedHosts: [], allowLoopback: false });
    this.send = options.fetchImpl ? fetchSender(options.fetchImpl) : createNotificationSender(this.endpoints);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    if (this.endpoints.policy.allowLoopback) {
      this.options.logger.warn(
        'delivery may POST to loopback endpoints (DELIVERY_ALLOW_LOOPBACK is on, the default outside production)',
      );
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopped = true;
    this.wake();
    await this.loop;
    // Waiting notifications stay leased and become due again; attempts in flight are cut short.
    for (const lane of this.lanes.values()) for (const task of lane.tasks.splice(0)) this.drop(task);
    this.send.close?.();
    await Promise.all([...this.inFlight]);
  }

  /** Called after a commit that queued notifications: deliver now rather than at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Delivers everything due now; answers how many notifications it attempted. */
  async runOnce(nowMs = Date.now()): Promise<number> {
    const done = await this.claim(nowMs, this.options.batchSize ?? 50);
    await Promise.all(done);
    await Promise.all(await this.queueHeartbeats(nowMs));
    return done.length;
  }

  /** Claims up to `limit` due notifications into their lanes; answers when each is finished. */
  private async claim(nowMs: number, limit: number): Promise<Promise<void>[]> {
    const batch = await this.options.store.claimNotifications(nowMs, limit, LEASE_MS);
    const finished: Promise<void>[] = [];
    for (const notification of batch.sort((a, b) => a.eventNumber - b.eventNumber)) {
      if (this.held.has(notification.id)) continue;
      this.held.add(notification.id);
      finished.push(
        new Promise<void>((done) =>
          this.enqueue(notification.subscriptionId, {
            kind: 'notification',
            notification,
            claimedAtMs: nowMs,
            done,
          }),
        ),
      );
    }
    this.pump();
    return finished;
  }

  private enqueue(subscriptionId: string, task: Task): void {
    let lane = this.lanes.get(subscriptionId);
    if (!lane) {
      lane = { tasks: [], scheduled: false };
      this.lanes.set(subscriptionId, lane);
    }
    lane.tasks.push(task);
    if (!lane.scheduled) {
      lane.scheduled = true;
      this.ready.push(subscriptionId);
    }
  }

  /** Starts attempts while slots are free: one task of each ready lane in turn. */
  private pump(): void {
    while (!this.stopped && this.inFlight.size < this.concurrency && this.ready.length > 0) {
      const id = this.ready.shift() as string;
      const lane = this.lanes.get(id);
      const task = lane?.tasks.shift();
      if (!lane || !task) {
        this.lanes.delete(id);
        continue;
      }
      const attempt = this.attempt(id, task)
        .catch((err: unknown) => {
          this.options.logger.error({ err: { type: (err as Error).name } }, 'delivery attempt failed');
        })
        .finally(() => {
          this.inFlight.delete(attempt);
          task.done();
          if (task.kind === 'notification') this.held.delete(task.notification.id);
          if (lane.tasks.length > 0) this.ready.push(id);
          else {
            lane.scheduled = false;
            this.lanes.delete(id);
          }
          this.pump();
          this.wake();
        });
      this.inFlight.add(attempt);
    }
  }

  private async attempt(subscriptionId: string, task: Task): Promise<void> {
    if (task.kind === 'heartbeat') return this.heartbeat(subscriptionId);
    // Too little of the lease left to finish: leave it to run out (it is claimed again then)
    // rather than risk two workers sending it at once.
    if (Date.now() + this.maxTimeoutMs() + LEASE_MARGIN_MS > task.claimedAtMs + LEASE_MS) return;
    await this.deliver(task.notification);
  }

  private drop(task: Task): void {
    task.done();
    if (task.kind === 'notification') this.held.delete(task.notification.id);
  }

  private maxTimeoutMs(): number {
    return MAX_TIMEOUT_SECONDS * 1000;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const room = Math.max(this.options.batchSize ?? 50, this.concurrency * 2) - this.held.size;
        const limit = Math.min(this.options.batchSize ?? 50, room);
        const claimed = limit > 0 ? (await this.claim(Date.now(), limit)).length : 0;
        if (Date.now() - this.lastHeartbeatCheckMs >= HEARTBEAT_CHECK_MS) {
          this.queueHeartbeats(Date.now()).catch((err: unknown) => {
            this.options.logger.warn({ err: { type: (err as Error).name } }, 'heartbeat check failed');
          });
        }
        if (claimed > 0 && claimed === limit) continue;
      } catch (err) {
        this.options.logger.error({ err: { type: (err as Error).name } }, 'delivery loop failed; retrying');
      }
      await this.sleep();
    }
  }

  private async sleep(): Promise<void> {
    const pollMs = Math.min(this.options.pollMs ?? 1_000, HEARTBEAT_CHECK_MS);
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
      await this.setError(subscription, publicReason(outcome));
    }
  }

  private post(settings: SubscriptionSettings, body: string): Promise<AttemptOutcome> {
    // The channel's own headers first, so none can replace the ones the service sets.
    const headers: Record<string, string> = {
      ...sendableHeaders(settings.headers),
      'content-type': 'application/fhir+json',
    };
    if (settings.secret) {
      headers[SIGNATURE_HEADER] = signBody(settings.secret, body, Math.floor(Date.now() / 1000));
    }
    const timeoutMs = Math.min(
      this.maxTimeoutMs(),
      settings.timeoutSeconds ? settings.timeoutSeconds * 1000 : (this.options.timeoutMs ?? 10_000),
    );
    return this.send(settings.endpoint, headers, body, timeoutMs);
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

  /** Queues a heartbeat on the lane of each subscription due one; answers when each is sent. */
  private async queueHeartbeats(nowMs: number): Promise<Promise<void>[]> {
    this.lastHeartbeatCheckMs = nowMs;
    // Heartbeats are best-effort and per instance: a missed one says "check $status", nothing is lost.
    const sent: Promise<void>[] = [];
    for (const [id, last] of this.lastSent) {
      const current = await this.options.store.read('Subscription', id);
      const subscription = current?.resource as Subscription | undefined;
      const settings = subscription ? tryReadSettings(subscription) : undefined;
      if (!subscription || subscription.status !== 'active' || !settings?.heartbeatSeconds) continue;
      if (nowMs - last < settings.heartbeatSeconds * 1000) continue;
      this.lastSent.set(id, nowMs);
      sent.push(new Promise<void>((done) => this.enqueue(id, { kind: 'heartbeat', done })));
    }
    this.pump();
    return sent;
  }

  private async heartbeat(id: string): Promise<void> {
    const current = await this.options.store.read('Subscription', id);
    const subscription = current?.resource as Subscription | undefined;
    const settings = subscription ? tryReadSettings(subscription) : undefined;
    if (!subscription || subscription.status !== 'active' || !settings) return;
    const bundle = buildNotificationBundle({
      baseUrl: this.options.baseUrl,
      subscription,
      type: 'heartbeat',
      eventCount: await this.options.store.subscriptionEventCount(id),
      events: [],
      content: settings.content,
      now: new Date().toISOString(),
    });
    await this.post(settings, JSON.stringify(bundle));
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

/**
 * What `Subscription.error` says — readable by the subscriber, so it must not map the network
 * for it: every failure to reach the endpoint (refused, reset, timeout, DNS, TLS, a forbidden
 * address) reads the same; a receiver's own HTTP refusal keeps its status, which is its answer.
 */
function publicReason(outcome: AttemptOutcome): string {
  if (outcome.kind === 'http') return `the endpoint refused the notification (HTTP ${outcome.status})`;
  return 'the endpoint could not be reached, or is not allowed';
}

/** The injected-fetch sender (tests, benchmarks): a plain fetch, without address checks. */
function fetchSender(fetchImpl: typeof fetch): NotificationSender {
  return async (endpoint, headers, body, timeoutMs) => {
    try {
      const res = await fetchImpl(endpoint, {
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
  };
}
