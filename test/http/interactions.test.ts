import type { Bundle, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readExample, skipWithoutExamples } from '../support/examples.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import {
  create,
  createReferralParties,
  expectNothingWritten,
  expectOutcome,
  patient,
  postResource,
  practitioner,
  putResource,
  referralServiceRequest,
} from './http-helpers.js';

/** create, read, vread, update and delete (https://hl7.org/fhir/R4/http.html). */

const noExamples = skipWithoutExamples('create: stores the official R4 patient-example.json');

describe('create', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('returns 201 with a server-assigned id, version 1, Location, ETag and Last-Modified', async () => {
    const res = await postResource(t.app, '/fhir/Patient', patient());
    expect(res.status).toBe(201);
    const body = res.body as Patient;
    expect(body.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(body.meta?.versionId).toBe('1');
    expect(res.headers.location).toMatch(new RegExp(`/fhir/Patient/${body.id}/_history/1$`));
    expect(res.headers.etag).toBe('W/"1"');
    expect(new Date(res.headers['last-modified'] as string).getTime()).toBe(
      Math.floor(Date.parse(body.meta?.lastUpdated as string) / 1000) * 1000,
    );
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  });

  it('ignores an id and meta.versionId/lastUpdated sent in the body', async () => {
    const res = await postResource(
      t.app,
      '/fhir/Patient',
      patient({ id: 'client-chosen', meta: { versionId: '42', lastUpdated: '2001-01-01T00:00:00Z' } }),
    );
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe('client-chosen');
    expect(res.body.meta.versionId).toBe('1');
    expect(res.body.meta.lastUpdated).not.toBe('2001-01-01T00:00:00Z');
    expect((await request(t.app).get('/fhir/Patient/client-chosen')).status).toBe(404);
  });

  it('assigns a fresh id to every create of the same body', async () => {
    const body = patient();
    const a = await create(t.app, body);
    const b = await create(t.app, body);
    expect(a.id).not.toBe(b.id);
  });

  it.skipIf(noExamples)('stores a shared R4 example as sent, apart from server-managed fields', async () => {
    const example = readExample<Patient>('r4-core/patient-example.json');
    const created = await create(t.app, example);
    const read = await request(t.app).get(`/fhir/Patient/${created.id}`);
    expect(read.status).toBe(200);
    const { id: _id, meta: _meta, ...rest } = read.body as Patient;
    const { id: _eid, meta: _emeta, ...expected } = example;
    expect(rest).toEqual(expected);
  });
});

describe('read and vread', () => {
  let t: TestApp;
  let pt: Patient;
  beforeAll(async () => {
    t = await startTestApp();
    pt = await create(t.app, patient({ name: [{ family: 'Haddad', given: ['Omar'] }] }));
    await putResource(t.app, `/fhir/Patient/${pt.id}`, { ...pt, gender: 'male' });
  });
  afterAll(() => t.close());

  it('reads the current version with its ETag and Last-Modified', async () => {
    const res = await request(t.app).get(`/fhir/Patient/${pt.id}`);
    expect(res.status).toBe(200);
    expect(res.body.gender).toBe('male');
    expect(res.body.meta.versionId).toBe('2');
    expect(res.headers.etag).toBe('W/"2"');
    expect(res.headers['last-modified']).toBe(new Date(res.body.meta.lastUpdated).toUTCString());
  });

  it('returns 404 resource-not-found for an id that was never written', async () => {
    expectOutcome(
      await request(t.app).get('/fhir/Patient/no-such-patient'),
      404,
      'not-found',
      'resource-not-found',
    );
  });

  it('reads an earlier version by vread', async () => {
    const res = await request(t.app).get(`/fhir/Patient/${pt.id}/_history/1`);
    expect(res.status).toBe(200);
    expect(res.body.gender).toBe('female');
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.etag).toBe('W/"1"');
  });

  it('returns 404 version-not-found for a version that does not exist', async () => {
    expectOutcome(
      await request(t.app).get(`/fhir/Patient/${pt.id}/_history/9`),
      404,
      'not-found',
      'version-not-found',
    );
  });

  it('returns 400 invalid-version-id for a version id that is not a number', async () => {
    expectOutcome(
      await request(t.app).get(`/fhir/Patient/${pt.id}/_history/latest`),
      400,
      'value',
      'invalid-version-id',
    );
  });

  it('returns 304 without a body when If-None-Match names the current version', async () => {
    const res = await request(t.app).get(`/fhir/Patient/${pt.id}`).set('If-None-Match', 'W/"2"');
    expect(res.status).toBe(304);
    expect(res.text ?? '').toBe('');
    expect(res.headers.etag).toBe('W/"2"');
  });

  it('returns 200 when If-None-Match names an older version', async () => {
    const res = await request(t.app).get(`/fhir/Patient/${pt.id}`).set('If-None-Match', 'W/"1"');
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
  });

  it('returns 304 when If-Modified-Since is not before Last-Modified', async () => {
    const first = await request(t.app).get(`/fhir/Patient/${pt.id}`);
    const res = await request(t.app)
      .get(`/fhir/Patient/${pt.id}`)
      .set('If-Modified-Since', first.headers['last-modified'] as string);
    expect(res.status).toBe(304);
  });
});

describe('update', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('writes a new version and returns 200 with the new ETag', async () => {
    const pt = await create(t.app, patient());
    const res = await putResource(t.app, `/fhir/Patient/${pt.id}`, { ...pt, active: false });
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
    expect(res.body.active).toBe(false);
    expect(res.headers.etag).toBe('W/"2"');
    expect(res.headers.location).toBeUndefined();
  });

  it('accepts If-Match with the current weak ETag', async () => {
    const pt = await create(t.app, patient());
    const res = await putResource(
      t.app,
      `/fhir/Patient/${pt.id}`,
      { ...pt, active: false },
      { 'If-Match': 'W/"1"' },
    );
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('W/"2"');
  });

  it('returns 412 when If-Match names an old version, and writes nothing', async () => {
    const pt = await create(t.app, patient());
    await putResource(t.app, `/fhir/Patient/${pt.id}`, { ...pt, active: false });
    const res = await expectNothingWritten(t.app, () =>
      putResource(t.app, `/fhir/Patient/${pt.id}`, { ...pt, gender: 'other' }, { 'If-Match': 'W/"1"' }),
    );
    expectOutcome(res, 412, 'conflict', 'precondition-failed');
    const read = await request(t.app).get(`/fhir/Patient/${pt.id}`);
    expect(read.body.gender).toBe('female');
    expect(read.body.meta.versionId).toBe('2');
  });

  it('returns 412 when If-Match is sent for a resource that does not exist', async () => {
    const res = await expectNothingWritten(t.app, () =>
      putResource(t.app, '/fhir/Patient/pt-missing-1', patient({ id: 'pt-missing-1' }), {
        'If-Match': 'W/"1"',
      }),
    );
    expectOutcome(res, 412, 'conflict', 'precondition-failed');
  });

  it('creates the resource with the client-chosen id (update as create) and returns 201', async () => {
    const res = await putResource(t.app, '/fhir/Practitioner/pt-dpt-lindqvist', {
      ...practitioner(),
      id: 'pt-dpt-lindqvist',
    });
    expect(res.status).toBe(201);
    expect(res.body.id).toBe('pt-dpt-lindqvist');
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.location).toMatch(/\/fhir\/Practitioner\/pt-dpt-lindqvist\/_history\/1$/);
    expect((await request(t.app).get('/fhir/Practitioner/pt-dpt-lindqvist')).status).toBe(200);
  });

  it('ignores meta.versionId in the body: the server assigns the next version', async () => {
    const pt = await create(t.app, patient());
    const res = await putResource(t.app, `/fhir/Patient/${pt.id}`, { ...pt, meta: { versionId: '77' } });
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
  });
});

describe('delete', () => {
  let t: TestApp;
  let sr: { id?: string };
  beforeAll(async () => {
    t = await startTestApp();
    const { patientRef, requesterRef } = await createReferralParties(t.app);
    sr = await create(t.app, referralServiceRequest({ subject: patientRef, requester: requesterRef }));
    const del = await request(t.app).delete(`/fhir/ServiceRequest/${sr.id}`);
    expect(del.status).toBe(204);
    expect(del.text ?? '').toBe('');
  });
  afterAll(() => t.close());

  it('answers 410 resource-deleted to a read after delete', async () => {
    expectOutcome(
      await request(t.app).get(`/fhir/ServiceRequest/${sr.id}`),
      410,
      'deleted',
      'resource-deleted',
    );
  });

  it('still serves the earlier version by vread', async () => {
    const res = await request(t.app).get(`/fhir/ServiceRequest/${sr.id}/_history/1`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('active');
  });

  it('answers 410 to a vread of the deletion version itself', async () => {
    expectOutcome(
      await request(t.app).get(`/fhir/ServiceRequest/${sr.id}/_history/2`),
      410,
      'deleted',
      'resource-deleted',
    );
  });

  it('records the delete as the newest entry of the instance history', async () => {
    const res = await request(t.app).get(`/fhir/ServiceRequest/${sr.id}/_history`);
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.total).toBe(2);
    expect(bundle.entry?.[0]?.request).toEqual({ method: 'DELETE', url: `ServiceRequest/${sr.id}` });
    expect(bundle.entry?.[0]?.resource).toBeUndefined();
    expect(bundle.entry?.[1]?.request?.method).toBe('POST');
  });

  it('leaves the deleted resource out of search results', async () => {
    const res = await request(t.app).get(`/fhir/ServiceRequest?_id=${sr.id}`);
    expect(res.body.total).toBe(0);
  });

  it('succeeds with 204 and writes nothing when the resource is already deleted', async () => {
    const res = await expectNothingWritten(t.app, () =>
      request(t.app).delete(`/fhir/ServiceRequest/${sr.id}`),
    );
    expect(res.status).toBe(204);
  });

  it('succeeds with 204 and writes nothing when the resource never existed', async () => {
    const res = await expectNothingWritten(t.app, () =>
      request(t.app).delete('/fhir/ServiceRequest/never-was'),
    );
    expect(res.status).toBe(204);
  });

  it('brings a deleted resource back with a PUT, as a new version (201)', async () => {
    const pt = await create(t.app, patient());
    await request(t.app).delete(`/fhir/Patient/${pt.id}`);
    const res = await putResource(t.app, `/fhir/Patient/${pt.id}`, { ...pt, meta: undefined });
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('3');
  });
});
