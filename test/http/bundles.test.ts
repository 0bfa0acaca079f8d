import type { Bundle, Patient, ServiceRequest, Task } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODE_SYSTEM } from '../../src/fhir/errors.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import {
  bookingTask,
  create,
  expectIntake,
  expectNothingWritten,
  expectOutcome,
  MRN_SYSTEM,
  patient,
  postBundle,
  practitioner,
  putResource,
  referralServiceRequest,
  resourceCount,
  transaction,
  versionCount,
} from './http-helpers.js';

/** Transaction Bundles at POST [base] (https://hl7.org/fhir/R4/http.html#transaction). */

const mrn = (value: string) => [{ system: MRN_SYSTEM, value }];

const PT_UUID = 'urn:uuid:5f0e4a1c-2b3d-4c5e-8f90-0a1b2c3d4e5f';
const SR_UUID = 'urn:uuid:9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d';
const DR_UUID = 'urn:uuid:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const TASK_UUID = 'urn:uuid:3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b';

/**
 * A complete referral package: patient, referring practitioner, the PT referral (with its own
 * identifier) and a booking Task about it. The server adds the referral's EpisodeOfCare and
 * fulfilment Task itself.
 */
function referralPackage(mrnValue: string): Bundle {
  return transaction([
    {
      fullUrl: PT_UUID,
      resource: patient({ identifier: mrn(mrnValue) }),
      request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN_SYSTEM}|${mrnValue}` },
    },
    {
      fullUrl: DR_UUID,
      resource: practitioner('Ferreira'),
      request: { method: 'POST', url: 'Practitioner' },
    },
    {
      fullUrl: SR_UUID,
      resource: referralServiceRequest({ subject: PT_UUID, requester: DR_UUID }),
      request: { method: 'POST', url: 'ServiceRequest' },
    },
    {
      fullUrl: TASK_UUID,
      resource: bookingTask(SR_UUID, { for: { reference: PT_UUID } }),
      request: { method: 'POST', url: 'Task' },
    },
  ]);
}

describe('transaction', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('creates every entry and rewrites urn:uuid references to Type/id', async () => {
    const before = await versionCount(t.app);
    const res = await postBundle(t, referralPackage('TX-1'));
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.type).toBe('transaction-response');
    expect(bundle.entry?.map((e) => e.response?.status)).toEqual([
      '201 Created',
      '201 Created',
      '201 Created',
      '201 Created',
    ]);
    const [pt, dr, sr, task] = (bundle.entry ?? []).map((e) => e.resource);
    for (const entry of bundle.entry ?? []) {
      const r = entry.resource;
      expect(entry.response?.location).toBe(`${r?.resourceType}/${r?.id}/_history/1`);
      expect(entry.response?.etag).toBe('W/"1"');
      expect(entry.fullUrl).toMatch(new RegExp(`/fhir/${r?.resourceType}/${r?.id}$`));
    }
    const storedSr = (await request(t.app).get(`/fhir/ServiceRequest/${sr?.id}`)).body as ServiceRequest;
    expect(storedSr.subject?.reference).toBe(`Patient/${pt?.id}`);
    expect(storedSr.requester?.reference).toBe(`Practitioner/${dr?.id}`);
    const storedTask = (await request(t.app).get(`/fhir/Task/${task?.id}`)).body as Task;
    expect(storedTask.focus?.reference).toBe(`ServiceRequest/${sr?.id}`);
    expect(storedTask.for?.reference).toBe(`Patient/${pt?.id}`);
    // The four entries, plus the referral's EpisodeOfCare and fulfilment Task, and nothing else.
    // ... plus the acknowledgement Communication to the referrer.
    expect(await versionCount(t.app)).toBe(before + 7);
    const intake = await expectIntake(t.app, storedSr);
    const search = await request(t.app).get(`/fhir/Task?focus=ServiceRequest/${sr?.id}`);
    expect(search.body.total).toBe(2);
    expect((search.body as Bundle).entry?.map((e) => e.resource?.id).sort()).toEqual(
      [task?.id, intake.tasks[0]?.id].sort(),
    );
  });

  it('honours ifNoneExist: an existing patient is reused and references point at it', async () => {
    const existing = await create(t.app, patient({ identifier: mrn('TX-2') }));
    const before = await resourceCount(t.app, 'Patient');
    const res = await postBundle(t, referralPackage('TX-2'));
    expect(res.status).toBe(200);
    const first = (res.body as Bundle).entry?.[0];
    expect(first?.response?.status).toBe('200 OK');
    expect(first?.resource?.id).toBe(existing.id);
    expect(await resourceCount(t.app, 'Patient')).toBe(before);
    const sr = (res.body as Bundle).entry?.[2]?.resource as ServiceRequest;
    expect(sr.subject?.reference).toBe(`Patient/${existing.id}`);
    await expectIntake(t.app, sr);
  });

  it('honours a conditional PUT: it updates the single match, or creates when none', async () => {
    const existing = await create(t.app, patient({ identifier: mrn('TX-3') }));
    const dr = await create(t.app, practitioner('Conditional'));
    const res = await postBundle(
      t,
      transaction([
        {
          resource: patient({ identifier: mrn('TX-3'), active: false }),
          request: { method: 'PUT', url: `Patient?identifier=${MRN_SYSTEM}|TX-3` },
        },
        {
          fullUrl: PT_UUID,
          resource: patient({ identifier: mrn('TX-4') }),
          request: { method: 'PUT', url: `Patient?identifier=${MRN_SYSTEM}|TX-4` },
        },
        {
          resource: referralServiceRequest({ subject: PT_UUID, requester: `Practitioner/${dr.id}` }),
          request: { method: 'POST', url: 'ServiceRequest' },
        },
      ]),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [updated, created, sr] = (res.body as Bundle).entry ?? [];
    expect(updated?.response?.status).toBe('200 OK');
    expect(updated?.resource?.id).toBe(existing.id);
    expect(updated?.resource?.meta?.versionId).toBe('2');
    expect(created?.response?.status).toBe('201 Created');
    expect((sr?.resource as ServiceRequest).subject?.reference).toBe(`Patient/${created?.resource?.id}`);
    await expectIntake(t.app, sr?.resource as ServiceRequest);
  });

  it('writes nothing when one entry is invalid, and names the failing entry', async () => {
    const bundle = referralPackage('TX-5');
    delete (bundle.entry?.[2]?.resource as unknown as Record<string, unknown>).status;
    const res = await expectNothingWritten(t.app, () => postBundle(t, bundle));
    const outcome = expectOutcome(res, 400, 'structure', 'invalid-resource');
    expect(outcome.issue?.[0]?.expression?.[0]).toBe('Bundle.entry[2].resource.status');
    const search = await request(t.app).get(`/fhir/Patient?identifier=${MRN_SYSTEM}|TX-5`);
    expect(search.body.total).toBe(0);
  });

  it('rolls back earlier writes when a later entry fails its If-Match', async () => {
    const pt = await create(t.app, patient({ identifier: mrn('TX-6') }));
    await putResource(t.app, `/fhir/Patient/${pt.id}`, { ...pt, active: false });
    const res = await expectNothingWritten(t.app, () =>
      postBundle(
        t,
        transaction([
          { resource: practitioner('Rollback'), request: { method: 'POST', url: 'Practitioner' } },
          { request: { method: 'DELETE', url: `Patient/${pt.id}` } },
          {
            resource: { ...patient({ identifier: mrn('TX-6') }), id: pt.id },
            request: { method: 'PUT', url: `Patient/${pt.id}-twin`, ifMatch: 'W/"1"' },
          },
        ]),
      ),
    );
    expectOutcome(res, 400, 'invalid', 'resource-id-mismatch');
    const ifMatch = await expectNothingWritten(t.app, () =>
      postBundle(
        t,
        transaction([
          { resource: practitioner('Rollback'), request: { method: 'POST', url: 'Practitioner' } },
          {
            resource: { ...pt, gender: 'other' },
            request: { method: 'PUT', url: `Patient/${pt.id}`, ifMatch: 'W/"1"' },
          },
        ]),
      ),
    );
    expectOutcome(ifMatch, 412, 'conflict', 'precondition-failed');
    expect((await request(t.app).get(`/fhir/Patient/${pt.id}`)).body.meta.versionId).toBe('2');
  });

  it('rejects a urn:uuid reference that names no entry (400) and writes nothing', async () => {
    const dr = await create(t.app, practitioner('Unresolved'));
    const res = await expectNothingWritten(t.app, () =>
      postBundle(
        t,
        transaction([
          {
            resource: referralServiceRequest({
              subject: 'urn:uuid:00000000-0000-4000-8000-000000000000',
              requester: `Practitioner/${dr.id}`,
            }),
            request: { method: 'POST', url: 'ServiceRequest' },
          },
        ]),
      ),
    );
    // The whole transaction is validated first; its Bundle rules report the dangling reference
    // as invalid-bundle (fixtures/invalid/expected.json, Bundle-unresolved-reference.json).
    const outcome = expectOutcome(res, 400, 'not-found', 'invalid-bundle');
    expect(outcome.issue?.[0]?.expression?.[0]).toBe('Bundle.entry[0].resource.subject.reference');
  });

  it('rejects two entries that change the same resource (400 duplicate) and writes nothing', async () => {
    const pt = await create(t.app, patient());
    const res = await expectNothingWritten(t.app, () =>
      postBundle(
        t,
        transaction([
          { resource: { ...pt, active: false }, request: { method: 'PUT', url: `Patient/${pt.id}` } },
          { request: { method: 'DELETE', url: `Patient/${pt.id}` } },
        ]),
      ),
    );
    expectOutcome(res, 400, 'duplicate', 'duplicate-bundle-entry');
  });

  it('rejects a PUT by id and a conditional PUT that resolve to the same resource, writing nothing', async () => {
    const pt = await create(t.app, patient({ identifier: mrn('DUP-1') }));
    const res = await expectNothingWritten(t.app, () =>
      postBundle(
        t,
        transaction([
          { resource: { ...pt, active: false }, request: { method: 'PUT', url: `Patient/${pt.id}` } },
          {
            resource: patient({ identifier: mrn('DUP-1'), gender: 'other' }),
            request: { method: 'PUT', url: `Patient?identifier=${MRN_SYSTEM}|DUP-1` },
          },
        ]),
      ),
    );
    const outcome = expectOutcome(res, 400, 'duplicate', 'duplicate-bundle-entry');
    expect(outcome.issue?.[0]?.expression).toEqual(['Bundle.entry[1].request.url']);
  });

  it('rejects a conditional DELETE that resolves to a resource another entry updates, writing nothing', async () => {
    const pt = await create(t.app, patient({ identifier: mrn('DUP-2') }));
    const res = await expectNothingWritten(t.app, () =>
      postBundle(
        t,
        transaction([
          { resource: { ...pt, active: false }, request: { method: 'PUT', url: `Patient/${pt.id}` } },
          { request: { method: 'DELETE', url: `Patient?identifier=${MRN_SYSTEM}|DUP-2` } },
        ]),
      ),
    );
    expectOutcome(res, 400, 'duplicate', 'duplicate-bundle-entry');
    expect((await request(t.app).get(`/fhir/Patient/${pt.id}`)).status).toBe(200);
  });

  it('honours a conditional DELETE entry', async () => {
    const pt = await create(t.app, patient({ identifier: mrn('TX-DEL') }));
    const res = await postBundle(
      t,
      transaction([{ request: { method: 'DELETE', url: `Patient?identifier=${MRN_SYSTEM}|TX-DEL` } }]),
    );
    expect(res.status).toBe(200);
    expect((res.body as Bundle).entry?.[0]?.response?.status).toBe('204 No Content');
    expect((await request(t.app).get(`/fhir/Patient/${pt.id}`)).status).toBe(410);
  });

  it('rejects two entries with the same fullUrl (400 duplicate) and writes nothing', async () => {
    const res = await expectNothingWritten(t.app, () =>
      postBundle(
        t,
        transaction([
          { fullUrl: PT_UUID, resource: patient(), request: { method: 'POST', url: 'Patient' } },
          { fullUrl: PT_UUID, resource: patient(), request: { method: 'POST', url: 'Patient' } },
        ]),
      ),
    );
    // The whole transaction is validated first: the base invariant bdl-7 comes first, then the
    // Bundle rule naming the duplicate (fixtures/invalid/expected.json, Bundle-duplicate-fullurl.json).
    const outcome = expectOutcome(res, 400, 'invariant', 'invalid-resource');
    expect(outcome.issue?.[0]?.expression).toEqual(['Bundle']);
    expect(outcome.issue?.[0]?.details?.text).toMatch(/^Constraint bdl-7 /);
    expect(outcome.issue?.[1]).toMatchObject({
      severity: 'error',
      code: 'duplicate',
      details: { coding: [{ system: ERROR_CODE_SYSTEM, code: 'invalid-bundle' }] },
      expression: ['Bundle.entry[1].fullUrl'],
    });
  });

  it('processes DELETE, then POST, then PUT, then GET, answering in request order', async () => {
    const doomed = await create(t.app, patient({ identifier: mrn('ORD-0') }));
    const kept = await create(t.app, patient({ identifier: mrn('ORD-1') }));
    const res = await postBundle(
      t,
      transaction([
        { request: { method: 'GET', url: `Patient?identifier=${MRN_SYSTEM}|ORD-2,${MRN_SYSTEM}|ORD-0` } },
        { resource: { ...kept, active: false }, request: { method: 'PUT', url: `Patient/${kept.id}` } },
        { resource: patient({ identifier: mrn('ORD-2') }), request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'DELETE', url: `Patient/${doomed.id}` } },
        { request: { method: 'GET', url: `Patient/${kept.id}` } },
      ]),
    );
    expect(res.status).toBe(200);
    const entries = (res.body as Bundle).entry ?? [];
    expect(entries.map((e) => e.response?.status)).toEqual([
      '200 OK',
      '200 OK',
      '201 Created',
      '204 No Content',
      '200 OK',
    ]);
    // The search ran after the POST and the DELETE: it sees ORD-2 and not ORD-0.
    const searchset = entries[0]?.resource as Bundle;
    expect(searchset.total).toBe(1);
    expect((searchset.entry?.[0]?.resource as Patient).identifier?.[0]?.value).toBe('ORD-2');
    // The read ran after the PUT.
    expect((entries[4]?.resource as Patient).active).toBe(false);
  });

  it('runs DELETE before a conditional create, so ifNoneExist does not match the deleted resource', async () => {
    const old = await create(t.app, patient({ identifier: mrn('ORD-3') }));
    const res = await postBundle(
      t,
      transaction([
        {
          resource: patient({ identifier: mrn('ORD-3'), name: [{ family: 'Replacement' }] }),
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN_SYSTEM}|ORD-3` },
        },
        { request: { method: 'DELETE', url: `Patient/${old.id}` } },
      ]),
    );
    expect(res.status).toBe(200);
    const created = (res.body as Bundle).entry?.[0];
    expect(created?.response?.status).toBe('201 Created');
    expect(created?.resource?.id).not.toBe(old.id);
    expect((await request(t.app).get(`/fhir/Patient/${old.id}`)).status).toBe(410);
    const search = await request(t.app).get(`/fhir/Patient?identifier=${MRN_SYSTEM}|ORD-3`);
    expect(search.body.total).toBe(1);
  });

  it('leaves resources out of the response under Prefer: return=minimal', async () => {
    const res = await postBundle(t, referralPackage('TX-7'), { Prefer: 'return=minimal' });
    expect(res.status).toBe(200);
    for (const entry of (res.body as Bundle).entry ?? []) {
      expect(entry.resource).toBeUndefined();
      expect(entry.response?.location).toMatch(/^[A-Za-z]+\/[^/]+\/_history\/1$/);
    }
  });

  it('rejects a PATCH entry with 405 and writes nothing', async () => {
    const pt = await create(t.app, patient());
    const res = await expectNothingWritten(t.app, () =>
      postBundle(
        t,
        transaction([
          { resource: practitioner(), request: { method: 'POST', url: 'Practitioner' } },
          {
            resource: { resourceType: 'Binary', contentType: 'application/json-patch+json' },
            request: { method: 'PATCH', url: `Patient/${pt.id}` },
          },
        ]),
      ),
    );
    expectOutcome(res, 405, 'not-supported', 'method-not-allowed');
  });
});
