import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bundle, Communication, EpisodeOfCare, Resource, ServiceRequest } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compose, type Composition } from '../../src/compose.js';
import { getResourceTypeNames } from '../../src/fhir/definitions.js';
import type { Change, WriteModule } from '../../src/rest/unit-of-work.js';
import type { ObservableStore } from '../../src/store/fhir-store.js';
import { ResourceValidator } from '../../src/validation/resource-validator.js';
import { FAST_RETRY, topicSubscription } from '../support/delivery-app.js';
import { testStoreUrl } from '../support/postgres.js';
import { readFixture } from '../referral/referral-fixtures.js';
import { FHIR_JSON, sharedValidator } from '../support/test-app.js';
import { captureLogs, testConfig } from '../support/test-config.js';

/**
 * The one write path (src/rest/unit-of-work.ts), observed from outside: a module registered like
 * any other sees every version written, whoever writes it; a validator that counts its calls shows
 * what is validated; the store's own counter shows how often it indexes.
 */
interface Validation {
  resourceType: string;
  profilesOnly: boolean;
}

function countingValidator(real: ResourceValidator, calls: Validation[]): ResourceValidator {
  // ResourceValidator has private fields, so its methods run on the real instance.
  return new Proxy(real, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        // validateYielding is the same validation in slices (large batches and transactions).
        if (property === 'validate' || property === 'validateYielding') {
          const [resource, options] = args as [Resource, { profilesOnly?: boolean } | undefined];
          calls.push({ resourceType: resource.resourceType, profilesOnly: options?.profilesOnly === true });
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function observer(changes: Change[]): WriteModule {
  return {
    handlers: [
      {
        name: 'test.observer',
        phase: 'after-store',
        order: 1_000,
        types: [...getResourceTypeNames()],
        run: (_uow, change) => {
          changes.push({ ...change });
        },
      },
    ],
  };
}

describe('the one write path', () => {
  let service: Composition;
  let receiver: Server;
  let receiverUrl: string;
  const validations: Validation[] = [];
  const changes: Change[] = [];

  beforeAll(async () => {
    // A receiver that refuses for good (400), so the worker sets its Subscription to error.
    receiver = createServer((_req, res) => res.writeHead(400).end());
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    service = await compose(
      testConfig({ DATABASE_URL: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:') }),
      {
        logSink: captureLogs().sink,
        validator: countingValidator(sharedValidator(), validations),
        audit: { delayMs: 5 },
        version: 'test',
        worker: { baseUrl: 'http://127.0.0.1/fhir', retry: FAST_RETRY, timeoutMs: 2_000 },
        modules: { extra: [observer(changes)] },
      },
    );
  });

  afterAll(async () => {
    await service.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  const stats = (): ObservableStore['stats'] => (service.store as ObservableStore).stats;
  // The audit trail writes its batch a few ms after each response; flushing it first keeps a
  // batch indexed before the count from being observed after it.
  const fresh = async (): Promise<void> => {
    await service.audit?.flush();
    validations.splice(0);
    changes.splice(0);
  };

  it('validates a client-written referral once against base R4, and indexes each stored version once', async () => {
    await fresh();
    const indexedBefore = stats().indexComputations;
    const bundle = readFixture<Bundle>('Bundle-referral-knee-osteoarthritis.json');
    const res = await request(service.app).post('/fhir').set('content-type', FHIR_JSON).send(bundle);
    expect(res.status).toBe(200);
    // The transaction is validated as one Bundle; none of its entries, nor what the server
    // builds from them (EpisodeOfCare, Task, Communication), is validated against base R4 again.
    expect(validations.filter((v) => !v.profilesOnly)).toEqual([
      { resourceType: 'Bundle', profilesOnly: false },
    ]);
    // The referral profile is checked once, on the referral.
    expect(validations.filter((v) => v.profilesOnly)).toEqual([
      { resourceType: 'ServiceRequest', profilesOnly: true },
    ]);
    const written = changes.map((c) => c.resourceType);
    expect(written).toEqual(
      expect.arrayContaining(['ServiceRequest', 'EpisodeOfCare', 'Task', 'Communication']),
    );
    await service.audit?.flush();
    expect(stats().indexComputations - indexedBefore).toBe(
      changes.filter((c) => c.action !== 'delete').length,
    );
  });

  it('validates a single ServiceRequest POST once against base R4', async () => {
    const patient = await request(service.app)
      .post('/fhir/Patient')
      .set('content-type', FHIR_JSON)
      .send(readFixture('Patient-example-patient.json'));
    const practitioner = await request(service.app)
      .post('/fhir/Practitioner')
      .set('content-type', FHIR_JSON)
      .send(readFixture('Practitioner-example-practitioner.json'));
    await fresh();
    const referral = readFixture<ServiceRequest>('ServiceRequest-referral-knee-oa.json');
    const indexedBefore = stats().indexComputations;
    const res = await request(service.app)
      .post('/fhir/ServiceRequest')
      .set('content-type', FHIR_JSON)
      .send({
        ...referral,
        identifier: [{ system: 'https://ehr.example.org/referrals', value: 'write-path-1' }],
        subject: { reference: `Patient/${patient.body.id}` },
        requester: { reference: `Practitioner/${practitioner.body.id}` },
      });
    expect(res.status).toBe(201);
    expect(validations.filter((v) => !v.profilesOnly)).toEqual([
      { resourceType: 'ServiceRequest', profilesOnly: false },
    ]);
    await service.audit?.flush();
    expect(stats().indexComputations - indexedBefore).toBe(changes.length);
  });

  it('announces a Communication exactly once whichever path wrote it: the workflow, a client POST, $progress-report', async () => {
    const sub = await request(service.app)
      .post('/fhir/Subscription')
      .set('content-type', FHIR_JSON)
      .send(
        topicSubscription('http://127.0.0.1:9/never', {
          filter: 'Communication?sender=Organization/practice',
        }),
      );
    expect(sub.status).toBe(201);
    const subscriptionId = sub.body.id as string;
    const events = (): Promise<number> => service.store.subscriptionEventCount(subscriptionId);

    // The workflow: a new referral is acknowledged to the referrer.
    const bundle = readFixture<Bundle>('Bundle-referral-ankle-sprain.json');
    expect(
      (await request(service.app).post('/fhir').set('content-type', FHIR_JSON).send(bundle)).status,
    ).toBe(200);
    expect(await events()).toBe(1);

    // A client's own Communication.
    const referral = (await request(service.app).get('/fhir/ServiceRequest?_sort=-_lastUpdated&_count=1'))
      .body.entry[0].resource as ServiceRequest;
    const communication: Communication = {
      resourceType: 'Communication',
      status: 'completed',
      subject: referral.subject as Communication['subject'],
      sender: { reference: 'Organization/practice' },
      recipient: [referral.requester as NonNullable<ServiceRequest['requester']>],
      payload: [{ contentString: 'Seen today; doing well.' }],
    };
    const posted = await request(service.app)
      .post('/fhir/Communication')
      .set('content-type', FHIR_JSON)
      .send(communication);
    expect(posted.status).toBe(201);
    expect(await events()).toBe(2);

    // $progress-report on the referral's episode.
    const episode = (
      await request(service.app).get(`/fhir/EpisodeOfCare?incoming-referral=ServiceRequest/${referral.id}`)
    ).body.entry[0].resource as EpisodeOfCare;
    const report = await request(service.app)
      .post(`/fhir/EpisodeOfCare/${episode.id}/$progress-report`)
      .set('content-type', FHIR_JSON)
      .send({ resourceType: 'Parameters' });
    expect(report.status).toBe(200);
    expect(await events()).toBe(3);

    const announced = await service.store.subscriptionEvents(subscriptionId, 1, 3);
    const focuses = announced.map((e) => e.focus.split('/_history')[0]);
    expect(new Set(focuses).size).toBe(3);
    expect(focuses).toContain(`Communication/${posted.body.id}`);
    expect(focuses).toContain(`Communication/${report.body.id}`);
  });

  it('writes AuditEvents and the worker’s Subscription status change through the write path', async () => {
    await fresh();
    const sub = await request(service.app)
      .post('/fhir/Subscription')
      .set('content-type', FHIR_JSON)
      .send(topicSubscription(receiverUrl, { filter: 'Communication?sender=Organization/practice' }));
    expect(sub.status).toBe(201);
    const bundle = readFixture<Bundle>('Bundle-referral-plantar-fasciitis.json');
    expect(
      (await request(service.app).post('/fhir').set('content-type', FHIR_JSON).send(bundle)).status,
    ).toBe(200);
    await service.worker?.runOnce();
    await service.audit?.flush();
    const subscriptionChanges = changes.filter(
      (c) => c.resourceType === 'Subscription' && c.id === sub.body.id,
    );
    expect(
      subscriptionChanges.map((c) => [c.origin, c.action, (c.resource as { status?: string }).status]),
    ).toEqual([
      ['client', 'create', 'active'],
      ['server', 'update', 'error'],
    ]);
    const audits = changes.filter((c) => c.resourceType === 'AuditEvent');
    // One per request (three here) plus the worker's record of its delivery attempt.
    expect(audits.length).toBeGreaterThanOrEqual(3);
    expect(audits.every((c) => c.origin === 'server' && c.action === 'create')).toBe(true);
  });
});
