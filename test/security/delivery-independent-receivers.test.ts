import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OperationOutcome, Subscription } from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BACKPORT,
  fhirRequest,
  listenDeliveryApp,
  progressCommunication,
  startCaptureServer,
  topicSubscription,
  waitFor,
  type DeliveryApp,
} from '../support/delivery-app.js';
import { testStoreUrl } from '../support/postgres.js';

/**
 * Issue 11, item 5: one receiver cannot delay another's notifications. A hanging endpoint
 * (accepts the request, never answers) held the whole worker pass; with `backport-timeout`
 * accepted up to 2,000,000,000 s it delayed another referrer's notification by 38 s.
 */
interface HangingServer {
  url: string;
  /** Requests received and never answered. */
  pending: IncomingMessage[];
  close(): Promise<void>;
}

async function startHangingServer(): Promise<HangingServer> {
  const pending: IncomingMessage[] = [];
  const server: Server = createServer((req) => {
    pending.push(req);
    req.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    pending,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function withChannelExtension(s: Subscription, url: string, value: number): Subscription {
  return {
    ...s,
    channel: { ...s.channel, extension: [{ url: `${BACKPORT}/${url}`, valueUnsignedInt: value }] },
  } as Subscription;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function subscribe(app: DeliveryApp, body: Subscription): Promise<Subscription> {
  const res = await fhirRequest<Subscription>('POST', `${app.fhirBase}/Subscription`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function communicate(app: DeliveryApp, value: string, recipient: string): Promise<void> {
  const res = await fhirRequest(
    'POST',
    `${app.fhirBase}/Communication`,
    progressCommunication(value, recipient),
  );
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

describe('deliveries run independently per subscription', () => {
  let app: DeliveryApp;
  beforeAll(async () => {
    app = await listenDeliveryApp({
      databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
    });
    app.worker.start();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('a hanging receiver of referrer A does not delay referrer B’s notification beyond a small bound', async () => {
    const hanging = await startHangingServer();
    cleanups.push(() => hanging.close());
    const b = await startCaptureServer();
    cleanups.push(() => b.close());
    await subscribe(
      app,
      withChannelExtension(
        topicSubscription(hanging.url, { filter: 'Communication?recipient=Practitioner/dr-hang-a' }),
        'backport-timeout',
        30,
      ),
    );
    await subscribe(
      app,
      topicSubscription(b.url, { filter: 'Communication?recipient=Practitioner/dr-fast-b' }),
    );
    for (let i = 0; i < 3; i++) await communicate(app, `hang-${i}`, 'Practitioner/dr-hang-a');
    await waitFor('A’s receiver holding a request', () => hanging.pending.length > 0, 5_000);
    const sentAt = Date.now();
    await communicate(app, 'fast-1', 'Practitioner/dr-fast-b');
    await waitFor('B’s notification', () => b.requests.length > 0, 3_000);
    expect(b.requests[0]!.receivedAt - sentAt).toBeLessThan(1_500);
    // A is still hanging: one request at a time for its subscription, in order.
    expect(hanging.pending).toHaveLength(1);
  });

  it.each([
    ['a backport-timeout above the 30 s ceiling', 'backport-timeout', 31],
    ['a backport-timeout of 2,000,000,000 s', 'backport-timeout', 2_000_000_000],
    ['a heartbeat period below the 60 s minimum', 'backport-heartbeat-period', 1],
  ])('refuses %s (422)', async (_what, url, value) => {
    const res = await fhirRequest<OperationOutcome>(
      'POST',
      `${app.fhirBase}/Subscription`,
      withChannelExtension(topicSubscription('http://127.0.0.1:9/hook'), url, value),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.issue?.[0]?.expression).toEqual(['Subscription.channel.extension']);
  });
});

describe('bounded concurrency', () => {
  it('with DELIVERY_CONCURRENCY=2, three hanging receivers hold at most two requests at once', async () => {
    const app = await listenDeliveryApp({
      databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
      env: { DELIVERY_CONCURRENCY: '2' },
    });
    cleanups.push(() => app.close());
    app.worker.start();
    const servers = await Promise.all([0, 1, 2].map(() => startHangingServer()));
    for (const server of servers) cleanups.push(() => server.close());
    for (const [i, server] of servers.entries()) {
      await subscribe(
        app,
        topicSubscription(server.url, { filter: `Communication?recipient=Practitioner/dr-cc-${i}` }),
      );
      await communicate(app, `cc-${i}`, `Practitioner/dr-cc-${i}`);
    }
    await waitFor(
      'two requests in flight',
      () => servers.filter((s) => s.pending.length > 0).length >= 2,
      5_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(servers.reduce((n, s) => n + s.pending.length, 0)).toBe(2);
  });
});
