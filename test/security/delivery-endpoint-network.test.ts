import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { OperationOutcome, Subscription } from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BACKPORT,
  fhirRequest,
  listenDeliveryApp,
  progressCommunication,
  sleep,
  startCaptureServer,
  topicSubscription,
  waitFor,
  type DeliveryApp,
} from '../support/delivery-app.js';
import { testStoreUrl } from '../support/postgres.js';
import { withIndexTags } from '../../src/delivery/subscription-index.js';
import { readSubscriptionSettings } from '../../src/delivery/subscription-settings.js';

/**
 * Issue 11, item 9: rest-hook endpoints cannot reach inside the network. https only; the address
 * actually connected to is checked at send time against loopback, private, link-local, CGNAT,
 * unique-local and metadata ranges, unless the operator allows the host (DELIVERY_ALLOWED_HOSTS);
 * loopback is allowed outside production only (DELIVERY_ALLOW_LOOPBACK, with a warning).
 * Client headers cannot replace the service's, and Subscription.error does not tell apart why an
 * endpoint could not be reached.
 */
const storeUrl = () => testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A TCP listener that counts the connections made to it. */
async function countingListener(): Promise<{
  port: number;
  connections: () => number;
  close(): Promise<void>;
}> {
  let n = 0;
  const server: TcpServer = createTcpServer((socket) => {
    n++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => n,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function post(app: DeliveryApp, body: unknown) {
  return fhirRequest<OperationOutcome & Omit<Subscription, 'resourceType'>>(
    'POST',
    `${app.fhirBase}/Subscription`,
    body,
  );
}

describe('in production (loopback not allowed)', () => {
  let app: DeliveryApp;
  beforeAll(async () => {
    app = await listenDeliveryApp({ databaseUrl: storeUrl(), env: { DELIVERY_ALLOW_LOOPBACK: 'off' } });
    app.worker.start();
  });
  afterAll(async () => {
    await app?.close();
  });

  it.each([
    ['plain http', 'http://referrer.example.org/hook'],
    ['a loopback address', 'https://127.0.0.1:8443/hook'],
    ['an IPv4-mapped loopback address', 'https://[::ffff:127.0.0.1]/hook'],
    ['localhost', 'https://localhost/hook'],
    ['a private address', 'https://10.1.2.3/hook'],
    ['a CGNAT address', 'https://100.64.0.1/hook'],
    ['the cloud metadata address', 'https://169.254.169.254/latest/meta-data'],
    ['the IPv6 metadata address', 'https://[fd00:ec2::254]/latest'],
    ['a link-local IPv6 address', 'https://[fe80::1]/hook'],
  ])('refuses an endpoint on %s (422)', async (_what, endpoint) => {
    const res = await post(
      app,
      topicSubscription(endpoint, { filter: 'Communication?recipient=Practitioner/dr-n' }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.issue?.[0]?.expression).toEqual(['Subscription.channel.endpoint']);
  });

  it('accepts a public https endpoint', async () => {
    const res = await post(
      app,
      topicSubscription('https://referrer.example.org/hook', {
        filter: 'Communication?recipient=Practitioner/dr-pub',
      }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });

  it('checks the address actually connected at send time: a name resolving to loopback gets no connection', async () => {
    const listener = await countingListener();
    cleanups.push(() => listener.close());
    // Stored as a Subscription written before the rule, or whose name resolves inside since.
    const id = randomUUID();
    const subscription = {
      ...topicSubscription(`https://localhost:${listener.port}/hook`, {
        filter: 'Communication?recipient=Practitioner/dr-rebind',
      }),
      id,
      status: 'active',
    } as Subscription;
    // Straight into the store, past the endpoint rule, with the index tags the write path adds.
    const tagged = withIndexTags(subscription, readSubscriptionSettings(subscription), undefined, undefined);
    await app.store.transaction((tx) => tx.write({ resourceType: 'Subscription', id, resource: tagged }));
    const res = await fhirRequest(
      'POST',
      `${app.fhirBase}/Communication`,
      progressCommunication('rebind', 'Practitioner/dr-rebind'),
    );
    expect(res.status).toBe(201);
    await waitFor('the Subscription in error', async () => {
      const s = await fhirRequest<Subscription>('GET', `${app.fhirBase}/Subscription/${id}`);
      return s.body.status === 'error';
    });
    expect(listener.connections()).toBe(0);
  });
});

describe('DELIVERY_ALLOWED_HOSTS', () => {
  it.each([
    ['an address', '127.0.0.1'],
    ['a CIDR', '127.0.0.0/8'],
  ])('allows %s the operator lists, over http too', async (_what, allowed) => {
    const app = await listenDeliveryApp({
      databaseUrl: storeUrl(),
      env: { DELIVERY_ALLOW_LOOPBACK: 'off', DELIVERY_ALLOWED_HOSTS: `receiver.internal, ${allowed}` },
    });
    cleanups.push(() => app.close());
    app.worker.start();
    const hook = await startCaptureServer();
    cleanups.push(() => hook.close());
    const res = await post(
      app,
      topicSubscription(hook.url, { filter: 'Communication?recipient=Practitioner/dr-allowed' }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await fhirRequest(
      'POST',
      `${app.fhirBase}/Communication`,
      progressCommunication('allowed', 'Practitioner/dr-allowed'),
    );
    await waitFor('the notification', () => hook.requests.length > 0);
  });
});

describe('outside production (loopback allowed by default)', () => {
  let app: DeliveryApp;
  beforeAll(async () => {
    app = await listenDeliveryApp({
      databaseUrl: storeUrl(),
      retry: { baseDelayMs: 10, maxDelayMs: 20, giveUpAfterMs: 300 },
    });
    app.worker.start();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('reaches a receiver by a name that resolves to loopback (the guarded lookup answers it)', async () => {
    const hook = await startCaptureServer();
    cleanups.push(() => hook.close());
    const endpoint = hook.url.replace('127.0.0.1', 'localhost');
    const res = await post(
      app,
      topicSubscription(endpoint, { filter: 'Communication?recipient=Practitioner/dr-name' }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await fhirRequest(
      'POST',
      `${app.fhirBase}/Communication`,
      progressCommunication('by-name', 'Practitioner/dr-name'),
    );
    await waitFor('the notification', () => hook.requests.length > 0);
  });

  it('warns at start-up that loopback endpoints are allowed', () => {
    expect(app.logs.some((l) => l.level === 40 && String(l.msg).includes('loopback'))).toBe(true);
  });

  it.each([
    ['Cookie: session=1'],
    ['Host: internal.example'],
    ['X-Signature: t=1,v1=forged'],
    ['Content-Type: text/html'],
  ])('refuses a channel header the service owns or that redirects the request: %s', async (header) => {
    const s = topicSubscription('http://127.0.0.1:9/hook', {
      filter: 'Communication?recipient=Practitioner/dr-h',
    });
    const res = await post(app, { ...s, channel: { ...s.channel, header: [header] } });
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.issue?.[0]?.expression).toEqual(['Subscription.channel.header']);
  });

  it('refuses two Authorization headers', async () => {
    const s = topicSubscription('http://127.0.0.1:9/hook', {
      filter: 'Communication?recipient=Practitioner/dr-h',
    });
    const res = await post(app, {
      ...s,
      channel: { ...s.channel, header: ['Authorization: Bearer a', 'authorization: Bearer b'] },
    });
    expect(res.status).toBe(422);
  });

  it('Subscription.error reads the same for a refused connection and a timeout (no port scanning)', async () => {
    const closed = await countingListener();
    const port = closed.port;
    await closed.close(); // nothing listens there now: connection refused
    const sockets = new Set<import('node:net').Socket>();
    const hanging = createTcpServer((socket) => void sockets.add(socket)); // accepts, never answers
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          hanging.close(() => resolve());
          for (const socket of sockets) socket.destroy();
        }),
    );
    const refusedSub = await post(
      app,
      topicSubscription(`http://127.0.0.1:${port}/hook`, {
        filter: 'Communication?recipient=Practitioner/dr-scan-1',
      }),
    );
    const base = topicSubscription(`http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hook`, {
      filter: 'Communication?recipient=Practitioner/dr-scan-2',
    });
    const hangingSub = await post(app, {
      ...base,
      channel: { ...base.channel, extension: [{ url: `${BACKPORT}/backport-timeout`, valueUnsignedInt: 1 }] },
    });
    expect([refusedSub.status, hangingSub.status]).toEqual([201, 201]);
    for (const recipient of ['Practitioner/dr-scan-1', 'Practitioner/dr-scan-2']) {
      await fhirRequest(
        'POST',
        `${app.fhirBase}/Communication`,
        progressCommunication(`scan-${recipient}`, recipient),
      );
    }
    const errorOf = async (id: string) =>
      (await fhirRequest<Subscription>('GET', `${app.fhirBase}/Subscription/${id}`)).body.error;
    await waitFor(
      'both in error',
      async () =>
        (await errorOf(refusedSub.body.id as string)) !== undefined &&
        (await errorOf(hangingSub.body.id as string)) !== undefined,
      15_000,
    );
    await sleep(50);
    const [a, b] = [await errorOf(refusedSub.body.id as string), await errorOf(hangingSub.body.id as string)];
    expect(a).toBe(b);
    expect(a).not.toMatch(/ECONN|refused|timeout|no answer|\d+ ms|TLS/i);
  }, 30_000);
});
