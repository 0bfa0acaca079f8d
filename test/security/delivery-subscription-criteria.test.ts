import type { OperationOutcome, Subscription } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BACKPORT,
  fhirRequest,
  listenDeliveryApp,
  topicSubscription,
  TOPIC,
  type DeliveryApp,
} from '../support/delivery-app.js';
import { testStoreUrl } from '../support/postgres.js';
import { REFERRER_A, REFERRER_B, startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * Issue 11, item 1: a Subscription is read once, and what cannot be read completely and
 * unambiguously is refused — so the ownership check and the delivery can never read two
 * different filters (a decoy filter extension before the real one passed the check while
 * delivery used the other).
 */
const FILTER = `${BACKPORT}/backport-filter-criteria`;
const ENDPOINT = 'http://127.0.0.1:9/hook';

function withFilters(...filters: string[]): Subscription {
  const s = topicSubscription(ENDPOINT);
  return {
    ...s,
    _criteria: { extension: filters.map((valueString) => ({ url: FILTER, valueString })) },
  } as Subscription;
}

let app: DeliveryApp;
let t: SecureApp;
beforeAll(async () => {
  app = await listenDeliveryApp({
    databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
  });
  t = await startSecureApp({ databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:') });
});
afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function refused(body: unknown, expression: string): Promise<void> {
  const res = await fhirRequest<OperationOutcome>('POST', `${app.fhirBase}/Subscription`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(422);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(
    res.body.issue?.some((i) => i.expression?.includes(expression)),
    JSON.stringify(res.body),
  ).toBe(true);
}

describe('a Subscription whose criteria cannot be read unambiguously is refused (422)', () => {
  it('refuses two filter extensions on Subscription._criteria, in either order', async () => {
    await refused(
      withFilters('Communication?recipient=Practitioner/dr-a', 'Communication?recipient=Practitioner/dr-b'),
      'Subscription._criteria',
    );
    await refused(
      withFilters('Communication?recipient=Practitioner/dr-b', 'Communication?recipient=Practitioner/dr-a'),
      'Subscription._criteria',
    );
  });

  it('refuses a filter extension placed outside Subscription._criteria', async () => {
    const s = topicSubscription(ENDPOINT, { filter: 'Communication?recipient=Practitioner/dr-a' });
    await refused(
      {
        ...s,
        extension: [
          ...(s.extension ?? []),
          { url: FILTER, valueString: 'Communication?recipient=Practitioner/dr-b' },
        ],
      },
      'Subscription.extension',
    );
  });

  it('refuses a criteria that disagrees with the topic on an otherwise topic-based Subscription', async () => {
    const s = topicSubscription(ENDPOINT, { filter: 'Communication?recipient=Practitioner/dr-a' });
    await refused({ ...s, criteria: 'Communication?recipient=Practitioner/dr-b' }, 'Subscription.criteria');
    await refused({ ...s, criteria: `${TOPIC}|2` }, 'Subscription.criteria');
  });

  it('refuses a filter that holds more than one search, or unknown parameters', async () => {
    await refused(
      withFilters('Communication?recipient=Practitioner/dr-a?recipient=Practitioner/dr-b'),
      'Subscription._criteria',
    );
    await refused(
      withFilters('Communication?recipient=Practitioner/dr-a&_sort=sent'),
      'Subscription._criteria',
    );
    await refused(
      withFilters('Communication?recipient=Practitioner/dr-a&status=completed'),
      'Subscription._criteria',
    );
  });

  it('refuses two payload-content extensions', async () => {
    const s = topicSubscription(ENDPOINT);
    const content = (valueCode: string) => ({ url: `${BACKPORT}/backport-payload-content`, valueCode });
    await refused(
      {
        ...s,
        channel: { ...s.channel, _payload: { extension: [content('id-only'), content('full-resource')] } },
      },
      'Subscription.channel._payload',
    );
  });
});

describe('a referrer subscribes only to its own recipients, on the one reading the delivery uses', () => {
  it('a decoy filter of its own before another referrer’s is refused, and nothing is stored', async () => {
    const token = await t.token(REFERRER_A.clientId);
    for (const order of [
      [REFERRER_A.practitioner, REFERRER_B.practitioner],
      [REFERRER_B.practitioner, REFERRER_A.practitioner],
    ]) {
      const res = await t.fhir('POST', '/fhir/Subscription', {
        token,
        body: withFilters(...order.map((p) => `Communication?recipient=${p}`)),
      });
      expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect((res.body as OperationOutcome).resourceType).toBe('OperationOutcome');
    }
    const mine = await t.fhir('GET', '/fhir/Subscription', { token });
    expect(mine.body.total ?? (mine.body.entry ?? []).length).toBe(0);
  });

  it('its own single filter is accepted and activated', async () => {
    const token = await t.token(REFERRER_A.clientId);
    const res = await t.fhir('POST', '/fhir/Subscription', {
      token,
      body: topicSubscription(ENDPOINT, { filter: `Communication?recipient=${REFERRER_A.practitioner}` }),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect((res.body as Subscription).status).toBe('active');
  });
});
