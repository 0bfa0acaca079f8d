import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Resource, Task } from '@medplum/fhirtypes';
import type { Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.js';
import { expectOutcome, patient, referralServiceRequest } from '../http/http-helpers.js';
import { FAST_RETRY, progressCommunication, topicSubscription } from '../support/delivery-app.js';
import { errorCode, PUBLIC_ORIGIN, startSecureApp, type SecureApp } from '../support/secure-app.js';
import { buildWorld, created, type Side, type World } from './world.js';

/**
 * Acceptance (issue 5, item 2): two referrer clients with overlapping patients (one Patient
 * referred by both, each with its own referrals). Neither can read, search, include, history,
 * subscribe to or transact on the other's data, and what it cannot see is indistinguishable from
 * what does not exist: the same 404 (or 204, or absence) as for an id nobody ever used. Every
 * check runs in both directions. A practice client sees everything; only admin sees AuditEvents.
 */
let t: SecureApp;
let world: World;

beforeAll(async () => {
  t = await startSecureApp();
  world = await buildWorld(t);
});
afterAll(async () => {
  await world?.close();
  await t?.close();
});

const idOf = (ref: string): string => ref.split('/')[1] as string;
const typeOf = (ref: string): string => ref.split('/')[0] as string;

/** The answer for `ref`, with its id replaced by `missingId`, equals the answer for `missingId`. */
function expectSameAsMissing(hidden: Response, missing: Response, ref: string, missingId: string): void {
  expect(hidden.status, `${ref}: ${JSON.stringify(hidden.body)}`).toBe(missing.status);
  const normalise = (res: Response, id: string): string =>
    (res.text ?? '').replaceAll(id, '<id>').replace(/"lastUpdated":"[^"]+"/g, '');
  expect(normalise(hidden, idOf(ref))).toBe(normalise(missing, missingId));
  expect(hidden.headers['location']).toBeUndefined();
  expect(hidden.headers['last-modified']).toBeUndefined();
}

/** No trace of `other` in a response: none of its ids, nor the references it acts for. */
function expectNoTraceOf(res: Response, other: Side): void {
  const text = res.text ?? '';
  for (const ref of other.everything) expect(text, `${ref} leaked`).not.toContain(idOf(ref));
  expect(text, 'the other referrer’s practitioner leaked').not.toContain(other.practitioner);
  expect(text, 'the other referrer’s organization leaked').not.toContain(other.organization);
}

const matches = (res: Response, mode = 'match'): string[] =>
  ((res.body as Bundle).entry ?? [])
    .filter((e) => e.search?.mode === mode)
    .map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);

describe.each([
  ['referrer-a', 'referrer-b'],
  ['referrer-b', 'referrer-a'],
])('%s cannot reach the data of %s', (meId) => {
  const me = (): Side => (meId === 'referrer-a' ? world.a : world.b);
  const other = (): Side => (meId === 'referrer-a' ? world.b : world.a);
  const as = (method: string, path: string, body?: unknown) =>
    t.fhir(method, path, { token: me().token, body });

  it('sees its own referrals, tasks, episodes, communications and both of its patients', async () => {
    for (const ref of [...me().everything, world.shared]) {
      const res = await as('GET', `/fhir/${ref}`);
      expect(res.status, ref).toBe(200);
    }
  });

  it('read: every resource of the other answers exactly as a missing id does (404)', async () => {
    for (const ref of other().everything) {
      const missingId = randomUUID();
      const hidden = await as('GET', `/fhir/${ref}`);
      const missing = await as('GET', `/fhir/${typeOf(ref)}/${missingId}`);
      expectOutcome(hidden, 404, 'not-found', 'resource-not-found');
      expectSameAsMissing(hidden, missing, ref, missingId);
    }
  });

  it('vread and instance history: as for a missing id', async () => {
    for (const ref of other().everything) {
      const missingId = randomUUID();
      for (const suffix of ['/_history/1', '/_history']) {
        const hidden = await as('GET', `/fhir/${ref}${suffix}`);
        const missing = await as('GET', `/fhir/${typeOf(ref)}/${missingId}${suffix}`);
        expect(hidden.status).toBe(404);
        expectSameAsMissing(hidden, missing, ref, missingId);
      }
    }
  });

  it('search: absent by _id, by identifier, by subject, in GET and POST _search, and in counts', async () => {
    for (const ref of other().everything) {
      const byId = await as('GET', `/fhir/${typeOf(ref)}?_id=${idOf(ref)}`);
      expect(byId.status).toBe(200);
      expect(byId.body.total).toBe(0);
      expect(byId.body.entry).toBeUndefined();
      const posted = await t.fhir('POST', `/fhir/${typeOf(ref)}/_search`, {
        token: me().token,
        body: `_id=${idOf(ref)}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(posted.status).toBe(200);
      expect(posted.body.total).toBe(0);
    }
    // Whole types: only its own (and the shared patient).
    for (const type of [
      'ServiceRequest',
      'Task',
      'EpisodeOfCare',
      'Communication',
      'Subscription',
      'Patient',
    ]) {
      const res = await as('GET', `/fhir/${type}?_count=1000&_total=accurate`);
      expect(res.status).toBe(200);
      expectNoTraceOf(res, other());
      const mine = me().everything.filter((r) => typeOf(r) === type);
      expect(matches(res)).toEqual(expect.arrayContaining(mine));
      const count = await as('GET', `/fhir/${type}?_summary=count`);
      expect(count.body.total).toBe(matches(res).length);
    }
    // The shared patient's referrals: its own only.
    const bySubject = await as('GET', `/fhir/ServiceRequest?subject=${world.shared}`);
    expect(matches(bySubject)).toEqual([me().referrals[0]]);
    const byRequester = await as('GET', `/fhir/ServiceRequest?requester=${other().practitioner}`);
    expect(byRequester.body.total).toBe(0);
    const byRecipient = await as('GET', `/fhir/Communication?recipient=${other().practitioner}`);
    expect(byRecipient.body.total).toBe(0);
  });

  it('search cannot probe access labels (_security) for the other referrer', async () => {
    for (const query of [
      `_security=${other().practitioner}`,
      `_security=https://ptreferral.dev/fhir/CodeSystem/referrer-access|${other().organization}`,
      `_security:not=${other().practitioner}`,
    ]) {
      const res = await as('GET', `/fhir/Patient?${query}`);
      // Either refused outright, or an answer that does not depend on the other's labels.
      if (res.status === 200) {
        const all = await as('GET', '/fhir/Patient');
        expect(matches(res).length === 0 || matches(res).length === matches(all).length, query).toBe(true);
      } else {
        expectOutcome(res, 400, 'value', 'invalid-search-parameter');
      }
    }
  });

  it('_include and _revinclude (also :iterate) never bring in the other’s resources', async () => {
    const queries = [
      `Patient?_id=${idOf(world.shared)}&_revinclude=ServiceRequest:subject&_revinclude=EpisodeOfCare:patient&_revinclude=Communication:subject&_revinclude=Task:patient`,
      `ServiceRequest?_revinclude=Task:focus&_revinclude=EpisodeOfCare:incoming-referral&_include=ServiceRequest:subject&_include=ServiceRequest:requester`,
      `Task?_include=Task:focus&_include:iterate=ServiceRequest:subject&_revinclude:iterate=ServiceRequest:subject&_revinclude:iterate=EpisodeOfCare:patient`,
      `Communication?_include=Communication:based-on&_include=Communication:recipient&_include:iterate=ServiceRequest:subject&_revinclude:iterate=Communication:subject`,
      `EpisodeOfCare?_include=EpisodeOfCare:patient&_revinclude:iterate=ServiceRequest:subject`,
    ];
    for (const query of queries) {
      const res = await as('GET', `/fhir/${query}`);
      expect(res.status, `${query}: ${JSON.stringify(res.body)}`).toBe(200);
      expectNoTraceOf(res, other());
    }
    // The shared patient's revinclude brings its own referral, so the include path is exercised.
    const shared = await as('GET', `/fhir/${queries[0]}`);
    expect(matches(shared, 'include')).toContain(me().referrals[0]);
  });

  it('type and system history show none of the other’s versions', async () => {
    for (const path of [
      '/fhir/_history?_count=1000',
      '/fhir/ServiceRequest/_history?_count=1000',
      '/fhir/Task/_history?_count=1000',
      '/fhir/Communication/_history?_count=1000',
      '/fhir/EpisodeOfCare/_history?_count=1000',
      '/fhir/Patient/_history?_count=1000',
      `/fhir/${world.shared}/_history`,
    ]) {
      const res = await as('GET', path);
      expect(res.status, path).toBe(200);
      expectNoTraceOf(res, other());
    }
    const system = await as('GET', '/fhir/_history?_count=1000');
    const seen = ((system.body as Bundle).entry ?? []).map((e) => e.fullUrl ?? '');
    for (const ref of me().referrals)
      expect(
        seen.some((u) => u.endsWith(ref)),
        ref,
      ).toBe(true);
  });

  it('reads of the shared patient carry no sign of the other referrer (labels, history)', async () => {
    for (const path of [
      `/fhir/${world.shared}`,
      `/fhir/${world.shared}/_history`,
      `/fhir/Patient?_id=${idOf(world.shared)}`,
    ]) {
      const res = await as('GET', path);
      expect(res.status).toBe(200);
      expect(res.text, path).not.toContain(other().practitioner);
      expect(res.text, path).not.toContain(other().organization);
    }
  });

  it('updating the shared patient: the answer shows no sign of the other, who keeps seeing it', async () => {
    const current = (await as('GET', `/fhir/${world.shared}`)).body as Resource;
    const res = await as('PUT', `/fhir/${world.shared}`, { ...current, gender: 'female' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.text).not.toContain(other().practitioner);
    expect(res.text).not.toContain(other().organization);
    expect((await t.fhir('GET', `/fhir/${world.shared}`, { token: other().token })).status).toBe(200);
    const labels = (
      await t.fhir('GET', `/fhir/${world.shared}`, { token: world.practice })
    ).body.meta.security.map((c: { code: string }) => c.code);
    // The creator's labels (A registered the shared patient) stay, the writer's are added.
    expect(labels).toEqual(expect.arrayContaining([world.a.practitioner, me().practitioner]));
  });

  it('access labels sent by a client are not taken: they cannot open a resource to the other', async () => {
    const label = {
      system: 'https://ptreferral.dev/fhir/CodeSystem/referrer-access',
      code: other().practitioner,
    };
    const byMe = await created(t, me().token, patient({ meta: { security: [label] } }));
    const byPractice = await created(t, world.practice, patient({ meta: { security: [label] } }));
    for (const p of [byMe, byPractice]) {
      expect((await t.fhir('GET', `/fhir/Patient/${p.id}`, { token: other().token })).status).toBe(404);
    }
    expect(JSON.stringify(byPractice.meta)).not.toContain(other().practitioner);
  });

  it('subscribe: a filter on the other’s practitioner, on both, or on none is refused (403)', async () => {
    const hook = 'http://127.0.0.1:9/hook';
    for (const filter of [
      `Communication?recipient=${other().practitioner}`,
      `Communication?recipient=${me().practitioner},${other().practitioner}`,
      `Communication?recipient=${me().practitioner}&recipient=${other().practitioner}`,
      `Communication?subject=${world.shared}`,
      `Communication?recipient:missing=false`,
    ]) {
      const res = await as('POST', '/fhir/Subscription', topicSubscription(hook, { filter }));
      expectOutcome(res, 403, 'forbidden', 'forbidden');
    }
    // Nor can its own subscription be turned onto the other's practitioner.
    const mine = (await as('GET', `/fhir/${me().subscription}`)).body as Resource;
    const moved = topicSubscription(hook, { filter: `Communication?recipient=${other().practitioner}` });
    const res = await as('PUT', `/fhir/${me().subscription}`, { ...moved, id: mine.id });
    expectOutcome(res, 403, 'forbidden', 'forbidden');
  });

  it('$status and $events of the other’s subscription: as for a missing one', async () => {
    const missingId = randomUUID();
    for (const op of ['$status', '$events', '$events?content=full-resource']) {
      const hidden = await as('GET', `/fhir/${other().subscription}/${op}`);
      const missing = await as('GET', `/fhir/Subscription/${missingId}/${op}`);
      expectOutcome(hidden, 404, 'not-found', 'resource-not-found');
      expectSameAsMissing(hidden, missing, other().subscription, missingId);
    }
    const own = await as('GET', `/fhir/${me().subscription}/$events?content=full-resource`);
    expect(own.status).toBe(200);
    expectNoTraceOf(own, other());
  });

  it('update and delete of the other’s resources: 404 and 204 as for a missing id; nothing changes', async () => {
    for (const ref of [other().referrals[0] as string, other().ownPatient, other().tasks[0] as string]) {
      const current = (await t.fhir('GET', `/fhir/${ref}`, { token: world.practice })).body as Resource;
      const put = await as('PUT', `/fhir/${ref}`, { ...current, meta: undefined });
      expectOutcome(put, 404, 'not-found', 'resource-not-found');
      const missingId = randomUUID();
      const del = await as('DELETE', `/fhir/${ref}`);
      const delMissing = await as('DELETE', `/fhir/${typeOf(ref)}/${missingId}`);
      expect(del.status).toBe(204);
      expectSameAsMissing(del, delMissing, ref, missingId);
      const after = (await t.fhir('GET', `/fhir/${ref}`, { token: world.practice })).body as Resource;
      expect(after.meta?.versionId, ref).toBe(current.meta?.versionId);
    }
  });

  it('conditional update and delete match none of the other’s resources', async () => {
    const theirs = (await t.fhir('GET', `/fhir/${other().ownPatient}`, { token: world.practice }))
      .body as Resource & {
      identifier: { system: string; value: string }[];
    };
    const criteria = `identifier=${encodeURIComponent(`${theirs.identifier[0]?.system}|${theirs.identifier[0]?.value}`)}`;
    const del = await as('DELETE', `/fhir/Patient?${criteria}`);
    expect(del.status).toBe(204);
    const put = await as('PUT', `/fhir/Patient?${criteria}`, patient({ identifier: theirs.identifier }));
    expect(put.status).toBe(201);
    expect(put.body.id).not.toBe(theirs.id);
    const after = (await t.fhir('GET', `/fhir/${other().ownPatient}`, { token: world.practice }))
      .body as Resource;
    expect(after.meta?.versionId).toBe(theirs.meta?.versionId);
  });

  it('transaction and batch entries reading or updating the other’s resources answer 404', async () => {
    const ref = other().referrals[1] as string;
    const current = (await t.fhir('GET', `/fhir/${ref}`, { token: world.practice })).body as Resource;
    const batch = await as('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: ref } },
        { request: { method: 'GET', url: `${ref}/_history/1` } },
        { request: { method: 'PUT', url: ref }, resource: { ...current, meta: undefined } },
        { request: { method: 'GET', url: `ServiceRequest?_id=${idOf(ref)}` } },
        { request: { method: 'GET', url: `${typeOf(ref)}/${randomUUID()}` } },
      ],
    } satisfies Bundle);
    expect(batch.status).toBe(200);
    const statuses = (batch.body as Bundle).entry?.map((e) => e.response?.status);
    expect(statuses?.[0]).toMatch(/^404/);
    expect(statuses?.[1]).toMatch(/^404/);
    expect(statuses?.[2]).toMatch(/^404/);
    expect(statuses?.[3]).toMatch(/^200/);
    expect(statuses?.[4]).toBe(statuses?.[0]);
    expect(((batch.body as Bundle).entry?.[3]?.resource as Bundle).total).toBe(0);
    // Nothing of theirs in the answer: only outcomes and the empty searchset.
    expect(
      (batch.body as Bundle).entry?.map((e) => e.resource?.resourceType ?? e.response?.outcome?.resourceType),
    ).toEqual(['OperationOutcome', 'OperationOutcome', 'OperationOutcome', 'Bundle', 'OperationOutcome']);
    expect(batch.text).not.toContain(other().practitioner);

    for (const entry of [
      { request: { method: 'GET', url: ref } },
      { request: { method: 'PUT', url: ref }, resource: { ...current, meta: undefined } },
    ] as BundleEntry[]) {
      const tx = await as('POST', '/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [entry] });
      expect(tx.status, JSON.stringify(tx.body)).toBe(404);
      expect(errorCode(tx)).toBe('resource-not-found');
    }
    const after = (await t.fhir('GET', `/fhir/${ref}`, { token: world.practice })).body as Resource;
    expect(after.meta?.versionId).toBe(current.meta?.versionId);
  });

  it('creating a referral as a practitioner it does not act for: 403, directly and in a transaction', async () => {
    const referral = referralServiceRequest({ subject: world.shared, requester: other().practitioner });
    expectOutcome(await as('POST', '/fhir/ServiceRequest', referral), 403, 'forbidden', 'forbidden');
    const organization = referralServiceRequest({ subject: world.shared, requester: other().organization });
    expectOutcome(await as('POST', '/fhir/ServiceRequest', organization), 403, 'forbidden', 'forbidden');
    const tx = await as('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:7f1c6f57-3f0b-4a4e-9c3c-1d2e3f405162',
          resource: patient(),
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: referralServiceRequest({
            subject: 'urn:uuid:7f1c6f57-3f0b-4a4e-9c3c-1d2e3f405162',
            requester: other().practitioner,
          }),
          request: { method: 'POST', url: 'ServiceRequest' },
        },
      ],
    });
    expectOutcome(tx, 403, 'forbidden', 'forbidden');
  });

  it('$progress-report and a cancellation request on the other’s referral: as for a missing one', async () => {
    const missingId = randomUUID();
    const hidden = await as('POST', `/fhir/${other().episodes[0]}/$progress-report`);
    const missing = await as('POST', `/fhir/EpisodeOfCare/${missingId}/$progress-report`);
    expect(hidden.status).toBe(404);
    expectSameAsMissing(hidden, missing, other().episodes[0] as string, missingId);
    const abort = (focus: string): Task => ({
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'abort' }] },
      focus: { reference: focus },
    });
    const hiddenAbort = await as('POST', '/fhir/Task', abort(other().tasks[0] as string));
    const missingAbort = await as('POST', '/fhir/Task', abort(`Task/${missingId}`));
    expectSameAsMissing(hiddenAbort, missingAbort, other().tasks[0] as string, missingId);
    const task = (await t.fhir('GET', `/fhir/${other().tasks[0]}`, { token: world.practice })).body as Task;
    expect(task.status).toBe('accepted');
  });

  it('AuditEvents are not for referrers: 403 on the type, nothing through includes or history', async () => {
    await t.audit.flush();
    expectOutcome(await as('GET', '/fhir/AuditEvent'), 403, 'forbidden', 'forbidden');
    const rev = await as(
      'GET',
      `/fhir/${typeOf(world.shared)}?_id=${idOf(world.shared)}&_revinclude=AuditEvent:entity`,
    );
    expect(rev.text).not.toContain('"AuditEvent"');
    const history = await as('GET', '/fhir/_history?_count=1000');
    expect(history.text).not.toContain('"AuditEvent"');
  });

  // Last in the block: its Task names the other's ids, which the checks above look for.
  it('a resource of its own cannot point at the other’s data: refused as for missing ids', async () => {
    // Naming a resource grants nothing (issue 11): a Task about the other's referral and patient is
    // refused exactly as one about ids nobody ever used, and leaves nothing in the other's view.
    const missing = [randomUUID(), randomUUID()];
    const task = (focus: string, subject: string): Task => ({
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      code: { text: 'Phone the practice' },
      focus: { reference: focus },
      for: { reference: subject },
    });
    const hidden = await as('POST', '/fhir/Task', task(other().referrals[0] as string, other().ownPatient));
    const absent = await as(
      'POST',
      '/fhir/Task',
      task(`ServiceRequest/${missing[0]}`, `Patient/${missing[1]}`),
    );
    expectOutcome(hidden, 422, 'business-rule', 'business-rule');
    const normalise = (res: Response, ids: string[]): string =>
      ids.reduce((text, id, i) => text.replaceAll(id, `<id${i}>`), res.text ?? '');
    expect(normalise(hidden, [idOf(other().referrals[0] as string), idOf(other().ownPatient)])).toBe(
      normalise(absent, missing),
    );
    const theirSearch = await t.fhir('GET', `/fhir/Task?focus=${other().referrals[0]}`, {
      token: other().token,
    });
    expect(matches(theirSearch)).toEqual([other().tasks[0]]);
  });
});

describe('notifications', () => {
  it('each referrer’s payloads carry its own Communications only, never the other’s', async () => {
    // One more progress note per referrer about the shared patient, written by the practice.
    for (const side of [world.a, world.b]) {
      const note = progressCommunication(`note-${side.clientId}-${randomUUID()}`, side.practitioner);
      note.subject = { reference: world.shared };
      const stored = await created(t, world.practice, note);
      side.communications.push(`Communication/${stored.id}`);
      side.everything.push(`Communication/${stored.id}`);
    }
    const worker = t.service.createWorker({
      logger: createLogger('silent'),
      baseUrl: `${PUBLIC_ORIGIN}/fhir`,
      retry: FAST_RETRY,
      timeoutMs: 2_000,
    });
    for (let i = 0; i < 20 && (await worker.runOnce()) > 0; i++);
    for (const [me, other] of [
      [world.a, world.b],
      [world.b, world.a],
    ] as const) {
      const bodies = me.hook.requests.map((r) => r.body);
      expect(bodies.length).toBeGreaterThanOrEqual(3);
      const delivered = new Set<string>();
      for (const body of bodies) {
        for (const ref of other.everything) expect(body).not.toContain(idOf(ref));
        expect(body).not.toContain(other.practitioner);
        const bundle = JSON.parse(body) as Bundle;
        for (const e of bundle.entry ?? []) {
          if (e.resource?.resourceType === 'Communication') delivered.add(`Communication/${e.resource.id}`);
        }
      }
      // Every Communication addressed to it (acceptances, the progress note) was delivered to it.
      expect([...delivered].sort()).toEqual([...me.communications].sort());
    }
  });
});

describe('who sees what', () => {
  it('a practice client sees every referral, task, episode, communication and patient', async () => {
    for (const ref of [...world.a.everything, ...world.b.everything, world.shared]) {
      expect((await t.fhir('GET', `/fhir/${ref}`, { token: world.practice })).status, ref).toBe(200);
    }
    const referrals = await t.fhir('GET', '/fhir/ServiceRequest?_count=1000', { token: world.practice });
    expect(matches(referrals)).toEqual(expect.arrayContaining([...world.a.referrals, ...world.b.referrals]));
  });

  it('only admin sees AuditEvents; a practice client gets 403 and nothing through includes or history', async () => {
    await t.audit.flush();
    const admin = await t.fhir('GET', '/fhir/AuditEvent?_count=5', { token: world.admin });
    expect(admin.status).toBe(200);
    expect(admin.body.entry.length).toBe(5);
    const id = admin.body.entry[0].resource.id as string;
    expect((await t.fhir('GET', `/fhir/AuditEvent/${id}`, { token: world.admin })).status).toBe(200);
    for (const path of [
      '/fhir/AuditEvent',
      `/fhir/AuditEvent/${id}`,
      `/fhir/AuditEvent/${id}/_history`,
      '/fhir/AuditEvent/_history',
    ]) {
      expectOutcome(await t.fhir('GET', path, { token: world.practice }), 403, 'forbidden', 'forbidden');
    }
    const batch = await t.fhir('POST', '/fhir', {
      token: world.practice,
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ request: { method: 'GET', url: `AuditEvent/${id}` } }],
      },
    });
    expectOutcome(batch, 403, 'forbidden', 'forbidden');
    const rev = await t.fhir('GET', `/fhir/Patient?_id=${idOf(world.shared)}&_revinclude=AuditEvent:entity`, {
      token: world.practice,
    });
    expect(rev.status).toBe(200);
    expect(rev.text).not.toContain('"AuditEvent"');
    const history = await t.fhir('GET', '/fhir/_history?_count=1000', { token: world.practice });
    expect(history.text).not.toContain('"AuditEvent"');
    const adminHistory = await t.fhir('GET', '/fhir/_history?_count=1000', { token: world.admin });
    expect(adminHistory.text).toContain('"AuditEvent"');
    // Nor can a non-admin write one (forged audit records), directly or in a Bundle.
    const forged = {
      resourceType: 'AuditEvent',
      type: { code: 'rest' },
      recorded: new Date().toISOString(),
      agent: [],
      source: { observer: { display: 'x' } },
    };
    expectOutcome(
      await t.fhir('POST', '/fhir/AuditEvent', { token: world.practice, body: forged }),
      403,
      'forbidden',
      'forbidden',
    );
    const inBundle = await t.fhir('POST', '/fhir', {
      token: world.practice,
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ request: { method: 'POST', url: 'AuditEvent?x=/fhir/Patient' }, resource: forged }],
      },
    });
    expectOutcome(inBundle, 403, 'forbidden', 'forbidden');
  });

  it('Task transitions follow the client role: the referrer cancels, the practice accepts and completes', async () => {
    const side = world.a;
    const referral = await created(
      t,
      side.token,
      referralServiceRequest({ subject: side.ownPatient, requester: side.practitioner }),
    );
    const taskOf = async (): Promise<Task> => {
      const res = await t.fhir(
        'GET',
        `/fhir/Task?focus=ServiceRequest/${referral.id}&code=http://hl7.org/fhir/CodeSystem/task-code|fulfill`,
        {
          token: world.practice,
        },
      );
      return res.body.entry[0].resource as Task;
    };
    const task = await taskOf();
    // A referrer cannot accept its own referral.
    const selfAccept = await t.fhir('PUT', `/fhir/Task/${task.id}`, {
      token: side.token,
      body: { ...task, status: 'accepted' },
    });
    expectOutcome(selfAccept, 422, 'business-rule', 'business-rule');
    // The practice cannot cancel on the referrer's behalf.
    const practiceCancel = await t.fhir('PUT', `/fhir/Task/${task.id}`, {
      token: world.practice,
      body: { ...task, status: 'cancelled' },
    });
    expectOutcome(practiceCancel, 422, 'business-rule', 'business-rule');
    // The practice accepts.
    const accepted = await t.fhir('PUT', `/fhir/Task/${task.id}`, {
      token: world.practice,
      body: { ...task, status: 'accepted' },
    });
    expect(accepted.status).toBe(200);
    // The referrer cancels.
    const current = await taskOf();
    const cancelled = await t.fhir('PUT', `/fhir/Task/${task.id}`, {
      token: side.token,
      body: { ...current, status: 'cancelled' },
    });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    expect((await taskOf()).status).toBe('cancelled');
  });

  it('a referrer sees the practitioner and clinic it acts for, and not the other’s', async () => {
    for (const [side, other] of [
      [world.a, world.b],
      [world.b, world.a],
    ] as const) {
      for (const ref of [side.practitioner, side.organization]) {
        expect((await t.fhir('GET', `/fhir/${ref}`, { token: side.token })).status, ref).toBe(200);
      }
      for (const ref of [other.practitioner, other.organization]) {
        expect((await t.fhir('GET', `/fhir/${ref}`, { token: side.token })).status, ref).toBe(404);
      }
    }
  });
});

describe('referral intake by a referrer client', () => {
  let fresh: SecureApp;
  beforeAll(async () => {
    fresh = await startSecureApp();
  });
  afterAll(() => fresh.close());

  // The acknowledgement is composed through the server's own view (WriteContext.system), which
  // sees the practice Organization that the referrer's view does not.
  it('a referral sent by a referrer client is acknowledged (referral-received)', async () => {
    const admin = await fresh.token('admin');
    await created(
      fresh,
      admin,
      { resourceType: 'Practitioner', id: 'dr-a' } as Resource,
      '/fhir/Practitioner/dr-a',
      'PUT',
    );
    const a = await fresh.token('referrer-a');
    const p = await created(fresh, a, patient());
    const referral = await created(
      fresh,
      a,
      referralServiceRequest({ subject: `Patient/${p.id}`, requester: 'Practitioner/dr-a' }),
    );
    const acks = await fresh.fhir(
      'GET',
      `/fhir/Communication?based-on=ServiceRequest/${referral.id}&category=referral-received`,
      {
        token: admin,
      },
    );
    expect(acks.body.total).toBe(1);
  });
});
