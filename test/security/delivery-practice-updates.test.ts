import type { Communication, Subscription } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressCommunication, topicSubscription } from '../support/delivery-app.js';
import { testStoreUrl } from '../support/postgres.js';
import { REFERRER_A, REFERRER_B, startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * Issue 11, item 7 (the delivery side): only the practice speaks as the practice. The topic
 * delivers the practice's progress updates, signed by the service; a Communication a referrer
 * wrote is never announced as one, whatever it names as sender.
 */
let t: SecureApp;
beforeAll(async () => {
  t = await startSecureApp({ databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:') });
});
afterAll(async () => {
  await t?.close();
});

describe('only Communications from the practice are delivered as practice updates', () => {
  it('a referrer’s Communication to another referrer’s practitioner gets no event; the practice’s does', async () => {
    const a = await t.token(REFERRER_A.clientId);
    const b = await t.token(REFERRER_B.clientId);
    const practice = await t.token('practice');
    const sub = await t.fhir('POST', '/fhir/Subscription', {
      token: a,
      body: topicSubscription('http://127.0.0.1:9/hook', {
        filter: `Communication?recipient=${REFERRER_A.practitioner}`,
      }),
    });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const id = (sub.body as Subscription).id as string;
    // B writes as the practice (forged sender), and as itself; either may be refused by intake rules.
    for (const sender of ['Organization/practice', REFERRER_B.practitioner]) {
      const note: Communication = {
        ...progressCommunication(`from-b-${sender}`, REFERRER_A.practitioner),
        sender: { reference: sender },
      };
      const res = await t.fhir('POST', '/fhir/Communication', { token: b, body: note });
      expect(res.status).toBeLessThan(500);
    }
    // A itself writing to its own practitioner is not a practice update either.
    await t.fhir('POST', '/fhir/Communication', {
      token: a,
      body: progressCommunication('from-a', REFERRER_A.practitioner),
    });
    expect(await t.store.subscriptionEventCount(id)).toBe(0);
    const res = await t.fhir('POST', '/fhir/Communication', {
      token: practice,
      body: progressCommunication('from-practice', REFERRER_A.practitioner),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(await t.store.subscriptionEventCount(id)).toBe(1);
  });
});
