import type { Bundle, OperationOutcome, Subscription } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fhirRequest,
  listenDeliveryApp,
  progressCommunication,
  topicSubscription,
  type DeliveryApp,
} from '../support/delivery-app.js';
import { testStoreUrl } from '../support/postgres.js';
import { REFERRER_A, startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * Issue 11, item 6: every active subscription is matched. The announce read only the first
 * 1,000 active Subscriptions, so 1,000 created by one referrer starved everyone created after.
 * Matching goes through an index (recipient → subscriptions) with no cap, and one client may hold
 * at most DELIVERY_MAX_SUBSCRIPTIONS_PER_CLIENT (default 50) active Subscriptions.
 */
const ENDPOINT = 'http://127.0.0.1:9/hook';

describe('every active subscription is matched', () => {
  let app: DeliveryApp;
  beforeAll(async () => {
    app = await listenDeliveryApp({
      databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('with 1,000 active subscriptions created before it, the last-created one still gets its event', async () => {
    // 1,000 Subscriptions of another recipient, through the write path in transaction Bundles.
    for (let batch = 0; batch < 10; batch++) {
      const bundle: Bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: Array.from({ length: 100 }, () => ({
          resource: topicSubscription(ENDPOINT, { filter: 'Communication?recipient=Practitioner/dr-crowd' }),
          request: { method: 'POST', url: 'Subscription' },
        })),
      };
      const res = await fhirRequest<Bundle>('POST', app.fhirBase, bundle);
      expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
    }
    const last = await fhirRequest<Subscription>(
      'POST',
      `${app.fhirBase}/Subscription`,
      topicSubscription(ENDPOINT, { filter: 'Communication?recipient=Practitioner/dr-last' }),
    );
    expect(last.status).toBe(201);
    const crowd = await fhirRequest<Bundle>(
      'GET',
      `${app.fhirBase}/Subscription?status=active&_count=0&_total=accurate`,
    );
    expect(crowd.body.total).toBeGreaterThan(1000);
    const res = await fhirRequest(
      'POST',
      `${app.fhirBase}/Communication`,
      progressCommunication('last-one', 'Practitioner/dr-last'),
    );
    expect(res.status).toBe(201);
    expect(await app.store.subscriptionEventCount(last.body.id as string)).toBe(1);
  }, 120_000);
});

describe('active Subscriptions are limited per client', () => {
  let t: SecureApp;
  beforeAll(async () => {
    t = await startSecureApp({
      databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the 51st active Subscription of one client is refused (422) until one is deleted', async () => {
    const token = await t.token(REFERRER_A.clientId);
    const body = topicSubscription(ENDPOINT, {
      filter: `Communication?recipient=${REFERRER_A.practitioner}`,
    });
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await t.fhir('POST', '/fhir/Subscription', { token, body });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      ids.push((res.body as Subscription).id as string);
    }
    const over = await t.fhir('POST', '/fhir/Subscription', { token, body });
    expect(over.status, JSON.stringify(over.body)).toBe(422);
    const outcome = over.body as OperationOutcome;
    expect(outcome.issue?.[0]?.code).toBe('business-rule');
    expect(outcome.issue?.[0]?.expression).toEqual(['Subscription.status']);
    // The limit is per client: another client still subscribes.
    const practice = await t.token('practice');
    expect((await t.fhir('POST', '/fhir/Subscription', { token: practice, body })).status).toBe(201);
    expect((await t.fhir('DELETE', `/fhir/Subscription/${ids[0]}`, { token })).status).toBeLessThan(300);
    expect((await t.fhir('POST', '/fhir/Subscription', { token, body })).status).toBe(201);
  }, 60_000);
});
