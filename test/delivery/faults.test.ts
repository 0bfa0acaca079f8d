import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent, Bundle, Communication, Parameters, Subscription } from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMockReceiver, type MockReceiver } from '../../bench/mock-receiver.js';
import {
  dedupeKey,
  fhirRequest,
  listenDeliveryApp,
  progressCommunication,
  SECRET,
  sleep,
  startCaptureServer,
  topicSubscription,
  waitFor,
  type DeliveryApp,
} from '../support/delivery-app.js';
import {
  freePort,
  killAllChildren,
  startReceiverProcess,
  startServiceProcess,
  type ReceiverProcess,
} from '../support/delivery-processes.js';

/**
 * Delivery under faults, with the receiver as a real separate process (bench/mock-receiver.ts):
 * it refuses connections, answers 503, or hangs past the sender's timeout for a while, then
 * recovers — every Communication arrives, each once, numbered without gaps. The service is killed
 * with SIGKILL between committing Communications and delivering them — all arrive after the
 * restart. A receiver that refuses for good puts its Subscription in error without a retry storm,
 * and polling still works.
 */

/** How long a transient fault lasts. */
const FAULT_MS = 1_200;
const COUNT = 20;
const RETRY = { baseDelayMs: 50, maxDelayMs: 500, giveUpAfterMs: 3_600_000 };
const TIMEOUT_MS = 300;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killAllChildren();
});
afterAll(async () => {
  await killAllChildren();
});

async function post<T>(fhirBase: string, resource: { resourceType: string }): Promise<T> {
  const res = await fhirRequest<T>('POST', `${fhirBase}/${resource.resourceType}`, resource);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Creates `count` Communications to `recipient`, 5 at a time; answers their identifier values. */
async function createCommunications(fhirBase: string, prefix: string, recipient: string, count = COUNT) {
  const values = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
  for (let i = 0; i < values.length; i += 5) {
    await Promise.all(
      values.slice(i, i + 5).map((v) => post<Communication>(fhirBase, progressCommunication(v, recipient))),
    );
  }
  return values;
}

async function auditEvents(fhirBase: string, subscriptionId: string): Promise<AuditEvent[]> {
  const res = await fhirRequest<Bundle>(
    'GET',
    `${fhirBase}/AuditEvent?entity=Subscription/${subscriptionId}&_count=1000`,
  );
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e) => e.resource as AuditEvent);
}

/** Every identifier arrived, none twice, and the event numbers are exactly 1..n. */
function expectExactlyOnce(receiver: ReceiverProcess, values: string[]): void {
  expect([...receiver.unique].sort()).toEqual(values.map(dedupeKey).sort());
  expect(receiver.duplicates).toBe(0);
  const numbers = receiver.received.flatMap((n) => n.eventNumbers).sort((a, b) => a - b);
  expect(numbers).toEqual(Array.from({ length: values.length }, (_, i) => i + 1));
  expect(receiver.received.every((n) => n.signatureValid)).toBe(true);
}

describe('transient receiver faults, then recovery (in-process service, receiver process)', () => {
  let app: DeliveryApp;
  beforeAll(async () => {
    app = await listenDeliveryApp({ retry: RETRY, timeoutMs: TIMEOUT_MS });
    app.worker.start();
  });
  afterAll(async () => {
    await app?.close();
  });

  /**
   * Runs one fault: subscribes `endpoint`, commits COUNT Communications while the fault lasts,
   * ends the fault, and checks that each arrived exactly once. Answers the failed attempts.
   */
  async function throughFault(
    name: string,
    endpoint: string,
    endFault: () => Promise<ReceiverProcess>,
  ): Promise<number> {
    const recipient = `Practitioner/dr-${name}`;
    const subscription = await post<Subscription>(
      app.fhirBase,
      topicSubscription(endpoint, { filter: `Communication?recipient=${recipient}` }),
    );
    const faultStart = Date.now();
    const values = await createCommunications(app.fhirBase, name, recipient);
    await sleep(FAULT_MS);
    // The fault is real: every notification has failed at least once before the receiver recovers.
    await waitFor('a failed attempt for every notification', async () => {
      const failed = (await auditEvents(app.fhirBase, subscription.id as string)).filter(
        (e) => e.outcome !== '0',
      );
      return new Set(failed.map((e) => /^Notification (\d+) /.exec(e.outcomeDesc ?? '')?.[1])).size === COUNT;
    });
    const receiver = await endFault();
    const faultMs = Date.now() - faultStart;
    await waitFor(
      `${COUNT} unique Communications at the receiver`,
      () => receiver.unique.size >= COUNT,
      15_000,
    );
    await sleep(300); // a duplicate, if any, would arrive now
    expectExactlyOnce(receiver, values);
    // Every attempt is audited: the failed ones, then exactly one success per notification.
    await waitFor('the last AuditEvents', async () => {
      const events = await auditEvents(app.fhirBase, subscription.id as string);
      return events.filter((e) => e.outcome === '0').length === COUNT;
    });
    const events = await auditEvents(app.fhirBase, subscription.id as string);
    const failed = events.filter((e) => e.outcome !== '0');
    // The retries were paced by the backoff, not a storm: with a 50 ms base and a 500 ms
    // cap, full jitter averages ~4 attempts in the first 400 ms and then one per ~250 ms; allow
    // twice that (a storm, retrying on every loop, would make hundreds each).
    expect(failed.length).toBeLessThanOrEqual(COUNT * Math.ceil(4 + faultMs / 125));
    expect(
      (await fhirRequest<Subscription>('GET', `${app.fhirBase}/Subscription/${subscription.id}`)).body.status,
    ).toBe('active');
    return failed.length;
  }

  it('a receiver refusing connections, then started on the same port', async () => {
    const port = await freePort();
    const failed = await throughFault('refused', `http://127.0.0.1:${port}/notify`, () =>
      startReceiverProcess({ port, secret: SECRET }),
    );
    expect(failed).toBeGreaterThanOrEqual(COUNT);
  });

  it('a receiver answering 503, then 200', async () => {
    const receiver = await startReceiverProcess({ secret: SECRET });
    receiver.setMode({ mode: 'status', status: 503 });
    await sleep(100); // the command is read from stdin asynchronously
    await throughFault('unavailable', receiver.url, async () => {
      expect(receiver.received).toEqual([]);
      receiver.setMode({ mode: 'ok' });
      return receiver;
    });
  });

  it('a receiver hanging past the timeout, then answering', async () => {
    const receiver = await startReceiverProcess({ secret: SECRET });
    receiver.setMode({ mode: 'hang' });
    await sleep(100);
    await throughFault('hanging', receiver.url, async () => {
      expect(receiver.received).toEqual([]);
      receiver.setMode({ mode: 'ok' });
      return receiver;
    });
    const timeouts = (
      await auditEvents(app.fhirBase, (await subscriptionFor(app, 'hanging')).id as string)
    ).filter((e) => e.outcomeDesc?.endsWith(`no answer within ${TIMEOUT_MS} ms`));
    expect(timeouts.length).toBeGreaterThanOrEqual(COUNT);
  });
});

async function subscriptionFor(app: DeliveryApp, name: string): Promise<Subscription> {
  const res = await fhirRequest<Bundle>('GET', `${app.fhirBase}/Subscription?_count=100`);
  const found = (res.body.entry ?? [])
    .map((e) => e.resource as Subscription)
    .find((s) => JSON.stringify(s).includes(`recipient=Practitioner/dr-${name}`));
  expect(found).toBeDefined();
  return found as Subscription;
}

describe('the service killed between commit and delivery', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'delivery-sigkill-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL after committing 10 Communications: each delivered exactly once after the restart', async () => {
    const env = { DATABASE_URL: `sqlite:${join(dir, 'referrals.sqlite')}`, LOG_LEVEL: 'warn' };
    const receiver = await startReceiverProcess({ secret: SECRET });
    // First run: no worker, so nothing can be delivered before the kill.
    const first = await startServiceProcess({ ...env, DELIVERY_WORKER: 'off' });
    const recipient = 'Practitioner/dr-crash';
    const subscription = await post<Subscription>(
      first.fhirBase,
      topicSubscription(receiver.url, { filter: `Communication?recipient=${recipient}` }),
    );
    expect(subscription.status).toBe('active');
    const values = await createCommunications(first.fhirBase, 'crash', recipient, 10);
    await first.kill('SIGKILL');
    expect(receiver.received).toEqual([]);

    const second = await startServiceProcess({
      ...env,
      DELIVERY_WORKER: 'on',
      DELIVERY_BASE_BACKOFF_MS: '50',
      DELIVERY_MAX_BACKOFF_MS: '500',
      DELIVERY_TIMEOUT_MS: '2000',
    });
    try {
      await waitFor('10 unique Communications after the restart', () => receiver.unique.size >= 10, 15_000);
      await sleep(300);
      expectExactlyOnce(receiver, values);
      // The data survived the kill as well: the Communications and the events.
      const search = await fhirRequest<Bundle>(
        'GET',
        `${second.fhirBase}/Communication?recipient=${recipient}&_summary=count`,
      );
      expect(search.body.total).toBe(10);
      const status = await fhirRequest<Bundle>(
        'GET',
        `${second.fhirBase}/Subscription/${subscription.id}/$status`,
      );
      expect(JSON.stringify(status.body)).toContain(
        '"name":"events-since-subscription-start","valueString":"10"',
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nservice output:\n${second.output()}`, { cause: err });
    } finally {
      await second.kill('SIGTERM');
    }
  });
});

describe('a permanently failing receiver', () => {
  let app: DeliveryApp;
  beforeAll(async () => {
    app = await listenDeliveryApp({ retry: RETRY, timeoutMs: TIMEOUT_MS });
    app.worker.start();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('400 puts the Subscription in error after one request, no storm; others and pull unaffected', async () => {
    // In process, because the receiver process reports only what it accepts: the request count
    // on the refusing side comes from MockReceiver.refused.
    const refusing: MockReceiver = await startMockReceiver({ secret: SECRET });
    cleanups.push(() => refusing.close());
    refusing.setMode({ mode: 'status', status: 400 });
    const healthy = await startCaptureServer();
    cleanups.push(() => healthy.close());
    const recipient = 'Practitioner/dr-permanent';
    const filter = `Communication?recipient=${recipient}`;
    const failing = await post<Subscription>(app.fhirBase, topicSubscription(refusing.url, { filter }));
    const other = await post<Subscription>(app.fhirBase, topicSubscription(healthy.url, { filter }));

    await post(app.fhirBase, progressCommunication('permanent-1', recipient));
    const read = async (id: string) =>
      (await fhirRequest<Subscription>('GET', `${app.fhirBase}/Subscription/${id}`)).body;
    await waitFor(
      'the Subscription in error',
      async () => (await read(failing.id as string)).status === 'error',
    );
    const inError = await read(failing.id as string);
    expect(inError.error).toBe('Delivery stopped: the endpoint refused the notification (HTTP 400)');
    expect(refusing.refused).toBe(1);

    // More Communications, and time for several max backoffs: still that one request.
    await createCommunications(app.fhirBase, 'permanent-more', recipient, 5);
    await sleep(1_500);
    expect(refusing.refused).toBe(1);
    expect(refusing.received).toEqual([]);
    expect((await read(failing.id as string)).status).toBe('error');
    const audits = await auditEvents(app.fhirBase, failing.id as string);
    expect(audits).toHaveLength(1);
    expect(audits[0]?.outcome).toBe('8');

    // $status reports the error; no events were announced to it while in error.
    const status = await fhirRequest<Bundle>('GET', `${app.fhirBase}/Subscription/${failing.id}/$status`);
    const parameters = status.body.entry?.[0]?.resource as Parameters;
    const p = (name: string) => parameters.parameter?.find((x) => x.name === name);
    expect(p('status')?.valueCode).toBe('error');
    expect(p('error')?.valueCodeableConcept?.text).toBe(inError.error);
    expect(p('events-since-subscription-start')?.valueString).toBe('1');

    // The healthy subscription on the same filter got all six.
    await waitFor('6 notifications to the healthy receiver', () => healthy.requests.length >= 6);
    expect((await read(other.id as string)).status).toBe('active');

    // Pull still works for the receiver in error.
    const pulled = await fhirRequest<Bundle>(
      'GET',
      `${app.fhirBase}/Communication?recipient=${recipient}&_count=100`,
    );
    expect(pulled.status).toBe(200);
    expect(pulled.body.entry).toHaveLength(6);

    // Once the receiver is fixed, the referrer re-requests the Subscription and delivery resumes.
    refusing.setMode({ mode: 'ok' });
    const reactivated = await fhirRequest<Subscription>('PUT', `${app.fhirBase}/Subscription/${failing.id}`, {
      ...inError,
      status: 'requested',
    });
    expect(reactivated.status, JSON.stringify(reactivated.body)).toBe(200);
    expect(reactivated.body.status).toBe('active');
    await post(app.fhirBase, progressCommunication('permanent-after', recipient));
    await waitFor('delivery after re-activation', () => refusing.received.length >= 1);
    expect(refusing.received[0]?.eventNumbers).toEqual([2]);
    expect([...refusing.unique.keys()]).toEqual([dedupeKey('permanent-after')]);
  });
});
