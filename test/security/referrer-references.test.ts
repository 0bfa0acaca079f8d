import { randomUUID } from 'node:crypto';
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';
import type { Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patient, referralServiceRequest } from '../http/http-helpers.js';
import { toMessage } from '../referral/referral-fixtures.js';
import { startSecureApp, type SecureApp } from '../support/secure-app.js';
import { testStoreUrl } from '../support/postgres.js';
import { buildWorld, type World } from './world.js';

/**
 * Issue 11, item 2: naming a resource grants nothing. A referrer's write may reference only what
 * that referrer can already see, or what arrives in the same request; a refusal reads the same
 * whether the id exists for someone else or nobody; a referrer cannot PUT an id it cannot see, nor
 * create a resource under an id of its choosing.
 */
let t: SecureApp;
let world: World;

beforeAll(async () => {
  t = await startSecureApp({ databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:') });
  world = await buildWorld(t);
});
afterAll(async () => {
  await world?.close();
  await t?.close();
});

const idOf = (ref: string): string => ref.split('/')[1] as string;

/** Status and body equal once the probed id is replaced by a placeholder. */
function expectSameAnswer(hidden: Response, missing: Response, hiddenId: string, missingId: string): void {
  expect(hidden.status, JSON.stringify(hidden.body)).toBe(missing.status);
  // A batch answers 200 with the refusal in its entry (checked by the caller).
  const status =
    hidden.body?.type === 'batch-response'
      ? Number.parseInt(hidden.body.entry[0].response.status, 10)
      : hidden.status;
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
  const normalise = (res: Response, id: string): string => (res.text ?? '').replaceAll(id, '<id>');
  expect(normalise(hidden, hiddenId)).toBe(normalise(missing, missingId));
}

const observation = (subject: string): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'Pain score' },
  subject: { reference: subject },
  valueInteger: 4,
});

describe('naming a resource grants nothing', () => {
  it('refuses a referral naming another referrer’s patient exactly as one naming a missing patient', async () => {
    const victim = world.a.ownPatient;
    const missingId = randomUUID();
    const send = (subject: string) =>
      t.fhir('POST', '/fhir/ServiceRequest', {
        token: world.b.token,
        body: referralServiceRequest({ subject, requester: world.b.practitioner }),
      });
    const hidden = await send(victim);
    const missing = await send(`Patient/${missingId}`);
    expectSameAnswer(hidden, missing, idOf(victim), missingId);
    // Nothing was granted: the patient is still invisible and unwritable for B.
    expect((await t.fhir('GET', `/fhir/${victim}`, { token: world.b.token })).status).toBe(404);
    const search = await t.fhir('GET', `/fhir/ServiceRequest?subject=${victim}`, { token: world.practice });
    expect((search.body as Bundle).entry?.length ?? 0).toBe(1);
  });

  it('refuses any client write naming an invisible resource, at top level, in a batch and in a transaction', async () => {
    const victim = world.a.ownPatient;
    const missingId = randomUUID();
    const top = async (subject: string) =>
      t.fhir('POST', '/fhir/Observation', { token: world.b.token, body: observation(subject) });
    expectSameAnswer(await top(victim), await top(`Patient/${missingId}`), idOf(victim), missingId);
    for (const type of ['batch', 'transaction'] as const) {
      const bundle = async (subject: string) =>
        t.fhir('POST', '/fhir', {
          token: world.b.token,
          body: {
            resourceType: 'Bundle',
            type,
            entry: [{ resource: observation(subject), request: { method: 'POST', url: 'Observation' } }],
          } satisfies Bundle,
        });
      const hidden = await bundle(victim);
      const missing = await bundle(`Patient/${missingId}`);
      expectSameAnswer(hidden, missing, idOf(victim), missingId);
      if (type === 'batch') expect(hidden.body.entry[0].response.status).toMatch(/^4/);
    }
    const after = await t.fhir('GET', `/fhir/Observation?subject=${victim}`, { token: world.practice });
    expect((after.body as Bundle).entry ?? []).toHaveLength(0);
  });

  it('refuses a $process-message referral naming an invisible patient exactly as a missing one', async () => {
    const victim = world.a.ownPatient;
    const missingId = randomUUID();
    const send = (subject: string) =>
      t.fhir('POST', '/fhir/$process-message', {
        token: world.b.token,
        body: toMessage({
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            {
              fullUrl: `urn:uuid:${randomUUID()}`,
              resource: referralServiceRequest({ subject, requester: world.b.practitioner }),
            },
          ],
        }),
      });
    const hidden = await send(victim);
    const missing = await send(`Patient/${missingId}`);
    expectSameAnswer(hidden, missing, idOf(victim), missingId);
  });

  it('accepts references to what arrives in the same transaction, and to what the referrer sees', async () => {
    const fullUrl = `urn:uuid:${randomUUID()}`;
    const res = await t.fhir('POST', '/fhir', {
      token: world.b.token,
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            // Addressed to the practice, which every client may name without reading it.
            resource: referralServiceRequest(
              { subject: fullUrl, requester: world.b.practitioner },
              { performer: [{ reference: 'Organization/practice' }] },
            ),
            request: { method: 'POST', url: 'ServiceRequest' },
          },
          { fullUrl, resource: patient(), request: { method: 'POST', url: 'Patient' } },
          { resource: observation(world.b.ownPatient), request: { method: 'POST', url: 'Observation' } },
        ],
      } satisfies Bundle,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it('reads a reference as the search index does: a path ending in Type/id names that resource', async () => {
    const victim = world.a.ownPatient;
    const missingId = randomUUID();
    for (const prefix of ['x/', '../', '']) {
      const post = (subject: string) =>
        t.fhir('POST', '/fhir/Observation', {
          token: world.b.token,
          body: observation(`${prefix}${subject}/_history/1`),
        });
      expectSameAnswer(await post(victim), await post(`Patient/${missingId}`), idOf(victim), missingId);
    }
  });

  it('leaves contained, absolute and logical references alone', async () => {
    const res = await t.fhir('POST', '/fhir/Observation', {
      token: world.b.token,
      body: {
        ...observation(world.b.ownPatient),
        contained: [{ resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Contained' }] }],
        performer: [
          { reference: '#p1' },
          { reference: 'https://elsewhere.example.org/fhir/Practitioner/77' },
          { identifier: { system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' } },
        ],
      } satisfies Observation,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });

  it('answers a PUT to another referrer’s id exactly as a PUT to a missing id, and creates nothing', async () => {
    const victim = world.a.ownPatient;
    const missingId = randomUUID();
    const put = (id: string) =>
      t.fhir('PUT', `/fhir/Patient/${id}`, { token: world.b.token, body: patient({ id }) });
    expectSameAnswer(await put(idOf(victim)), await put(missingId), idOf(victim), missingId);
    expect((await t.fhir('GET', `/fhir/Patient/${missingId}`, { token: world.admin })).status).toBe(404);
  });

  it('refuses referrers creating under an id they choose (PUT, conditional PUT, transaction PUT); the practice may', async () => {
    const chosen = `chosen-${randomUUID()}`;
    const direct = await t.fhir('PUT', `/fhir/Patient/${chosen}`, {
      token: world.b.token,
      body: patient({ id: chosen }),
    });
    expect(direct.status).toBe(404);
    const conditional = await t.fhir('PUT', `/fhir/Patient?identifier=urn:x|${chosen}`, {
      token: world.b.token,
      body: patient({ id: chosen }),
    });
    expect(conditional.status).toBe(404);
    const transaction = await t.fhir('POST', '/fhir', {
      token: world.b.token,
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: patient({ id: chosen }), request: { method: 'PUT', url: `Patient/${chosen}` } }],
      } satisfies Bundle,
    });
    expect(transaction.status).toBe(404);
    expect((await t.fhir('GET', `/fhir/Patient/${chosen}`, { token: world.admin })).status).toBe(404);
    // A conditional PUT without an id still creates (the server picks the id).
    const serverId = await t.fhir('PUT', `/fhir/Patient?identifier=urn:x|${chosen}`, {
      token: world.b.token,
      body: patient({ identifier: [{ system: 'urn:x', value: chosen }] }),
    });
    expect(serverId.status, JSON.stringify(serverId.body)).toBe(201);
    const practice = await t.fhir('PUT', `/fhir/Patient/${chosen}`, {
      token: world.practice,
      body: patient({ id: chosen }),
    });
    expect(practice.status).toBe(201);
    // B can still update what it sees.
    const own = (await t.fhir('GET', `/fhir/${world.b.ownPatient}`, { token: world.b.token }))
      .body as Resource;
    const updated = await t.fhir('PUT', `/fhir/${world.b.ownPatient}`, { token: world.b.token, body: own });
    expect(updated.status).toBe(200);
  });
});
