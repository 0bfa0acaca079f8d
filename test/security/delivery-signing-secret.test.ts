import type { Bundle, Subscription } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/delivery/signature.js';
import {
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
 * Issue 11, item 22: a Subscription's signing secret is write-only. It signs every notification
 * but no response carries it: create, read, vread, search, history, includes, Bundle responses.
 * An update that leaves it out keeps it (a client that never reads it back cannot resend it).
 */
const SECRET = `write-only-${Math.random().toString(36).slice(2)}`;

let app: DeliveryApp;
let hook: Awaited<ReturnType<typeof startCaptureServer>>;
let id: string;
beforeAll(async () => {
  app = await listenDeliveryApp({
    databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
  });
  app.worker.start();
  hook = await startCaptureServer();
});
afterAll(async () => {
  await hook?.close();
  await app?.close();
});

function expectNoSecret(what: string, body: unknown): void {
  expect(JSON.stringify(body), what).not.toContain(SECRET);
}

describe('the signing secret is never returned', () => {
  it('not in the create response, and every read path leaves it out', async () => {
    const created = await fhirRequest<Subscription>(
      'POST',
      `${app.fhirBase}/Subscription`,
      topicSubscription(hook.url, {
        filter: 'Communication?recipient=Practitioner/dr-secret',
        secret: SECRET,
      }),
    );
    expect(created.status).toBe(201);
    expectNoSecret('create', created.body);
    id = created.body.id as string;
    // A delivery, so that an AuditEvent references the Subscription (for _include).
    await fhirRequest(
      'POST',
      `${app.fhirBase}/Communication`,
      progressCommunication('secret-1', 'Practitioner/dr-secret'),
    );
    await waitFor('the notification', () => hook.requests.length > 0);
    const reads: [string, string][] = [
      ['read', `Subscription/${id}`],
      ['vread', `Subscription/${id}/_history/1`],
      ['search', 'Subscription?status=active'],
      ['search with _elements', `Subscription?_id=${id}&_elements=extension,channel`],
      ['instance history', `Subscription/${id}/_history`],
      ['type history', 'Subscription/_history'],
      ['system history', '_history'],
      ['_include', `AuditEvent?entity=Subscription/${id}&_include=AuditEvent:entity`],
      ['$status', `Subscription/${id}/$status`],
      ['$events', `Subscription/${id}/$events`],
    ];
    for (const [what, path] of reads) {
      const res = await fhirRequest('GET', `${app.fhirBase}/${path}`);
      expect(res.status, `${what}: ${JSON.stringify(res.body).slice(0, 300)}`).toBe(200);
      expectNoSecret(what, res.body);
    }
    const included = await fhirRequest<Bundle>(
      'GET',
      `${app.fhirBase}/AuditEvent?entity=Subscription/${id}&_include=AuditEvent:entity`,
    );
    expect(included.body.entry?.some((e) => e.resource?.resourceType === 'Subscription')).toBe(true);
    const batch = await fhirRequest<Bundle>('POST', app.fhirBase, {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: `Subscription/${id}` } },
        { request: { method: 'GET', url: 'Subscription' } },
      ],
    });
    expect(batch.status).toBe(200);
    expect(JSON.stringify(batch.body)).toContain(`"id":"${id}"`);
    expectNoSecret('batch', batch.body);
  });

  it('a transaction response with the written Subscription leaves it out', async () => {
    const res = await fhirRequest<Bundle>('POST', app.fhirBase, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: topicSubscription(hook.url, {
            filter: 'Communication?recipient=Practitioner/dr-secret-2',
            secret: SECRET,
          }),
          request: { method: 'POST', url: 'Subscription' },
        },
      ],
    });
    expect(res.status).toBe(200);
    expectNoSecret('transaction', res.body);
  });

  it('an update that leaves the secret out keeps signing with it', async () => {
    const current = (await fhirRequest<Subscription>('GET', `${app.fhirBase}/Subscription/${id}`)).body;
    const put = await fhirRequest<Subscription>('PUT', `${app.fhirBase}/Subscription/${id}`, {
      ...current,
      reason: 'updated',
    });
    expect(put.status).toBe(200);
    expectNoSecret('update', put.body);
    const before = hook.requests.length;
    await fhirRequest(
      'POST',
      `${app.fhirBase}/Communication`,
      progressCommunication('secret-2', 'Practitioner/dr-secret'),
    );
    await waitFor('the next notification', () => hook.requests.length > before);
    const last = hook.requests[hook.requests.length - 1]!;
    expect(
      verifySignature(SECRET, last.body, String(last.headers['x-signature']), Math.floor(Date.now() / 1000)),
    ).toBe(true);
  });
});
