import type { Subscription } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { compose, type Composition } from '../../src/compose.js';
import { RECIPIENT_TAG_SYSTEM } from '../../src/delivery/subscription-index.js';
import { openStore } from '../../src/store/open-store.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { progressCommunication, topicSubscription } from '../support/delivery-app.js';
import { testStoreUrl } from '../support/postgres.js';
import { FHIR_JSON, sharedValidator } from '../support/test-app.js';
import { captureLogs, testConfig } from '../support/test-config.js';

/**
 * Subscriptions stored before the recipient index (issue 11) carry no index tags. The announce
 * looks candidates up by tag only, so start-up tags them (src/delivery/subscription-backfill.ts):
 * a Subscription written straight into the store, untagged, still gets its event.
 */
describe('Subscriptions stored before the recipient index', () => {
  let store: FhirStore | undefined;
  let service: Composition | undefined;
  afterAll(async () => {
    await service?.close();
    await store?.close();
  });

  it('are tagged at start-up, and the announce finds them', async () => {
    store = await openStore(testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'));
    // As an earlier version stored it: active, no meta.tag.
    const legacy: Subscription = {
      ...topicSubscription('http://127.0.0.1:9/hook', {
        filter: 'Communication?recipient=Practitioner/dr-old',
      }),
      id: 'legacy-1',
      status: 'active',
    };
    await store.transaction((tx) =>
      tx.write({ resourceType: 'Subscription', id: 'legacy-1', resource: legacy }),
    );

    service = await compose(testConfig({ DELIVERY_WORKER: 'off' }), {
      store,
      validator: sharedValidator(),
      logSink: captureLogs().sink,
      audit: false,
      version: 'test',
    });
    const read = await request(service.app).get('/fhir/Subscription/legacy-1');
    expect(read.status).toBe(200);
    expect((read.body as Subscription).meta?.tag).toEqual(
      expect.arrayContaining([{ system: RECIPIENT_TAG_SYSTEM, code: 'Practitioner/dr-old' }]),
    );
    const posted = await request(service.app)
      .post('/fhir/Communication')
      .set('content-type', FHIR_JSON)
      .send(progressCommunication('legacy', 'Practitioner/dr-old'));
    expect(posted.status, JSON.stringify(posted.body)).toBe(201);
    expect(await store.subscriptionEventCount('legacy-1')).toBe(1);
  });
});
