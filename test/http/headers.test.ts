import type { CapabilityStatement, OperationOutcome } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/test-app.js';
import {
  create,
  expectNothingWritten,
  patient,
  postResource,
  putResource,
  versionCount,
} from './http-helpers.js';

/**
 * `Prefer: return=` (https://hl7.org/fhir/R4/http.html#ops), X-Request-ID and the
 * CapabilityStatement at /metadata (https://hl7.org/fhir/R4/http.html#capabilities).
 */

describe('Prefer: return', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('return=minimal answers a create with headers and an empty body', async () => {
    const before = await versionCount(t.app);
    const res = await postResource(t.app, '/fhir/Patient', patient(), { Prefer: 'return=minimal' });
    expect(res.status).toBe(201);
    expect(res.text ?? '').toBe('');
    expect(res.headers.location).toMatch(/\/fhir\/Patient\/[^/]+\/_history\/1$/);
    expect(res.headers.etag).toBe('W/"1"');
    expect(await versionCount(t.app)).toBe(before + 1);
  });

  it('return=representation answers a create with the stored resource', async () => {
    const res = await postResource(t.app, '/fhir/Patient', patient(), { Prefer: 'return=representation' });
    expect(res.status).toBe(201);
    expect(res.body.resourceType).toBe('Patient');
    expect(res.body.meta.versionId).toBe('1');
  });

  it('return=OperationOutcome answers a create with an OperationOutcome', async () => {
    const res = await postResource(t.app, '/fhir/Patient', patient(), { Prefer: 'return=OperationOutcome' });
    expect(res.status).toBe(201);
    const outcome = res.body as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue?.[0]?.severity).toBe('information');
    expect(res.headers.location).toBeDefined();
  });

  it('return=minimal answers an update with 200, the ETag and no body', async () => {
    const pt = await create(t.app, patient());
    const res = await putResource(
      t.app,
      `/fhir/Patient/${pt.id}`,
      { ...pt, active: false },
      { Prefer: 'return=minimal' },
    );
    expect(res.status).toBe(200);
    expect(res.text ?? '').toBe('');
    expect(res.headers.etag).toBe('W/"2"');
  });
});

describe('headers and metadata', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('echoes a client X-Request-ID on success and on error', async () => {
    const ok = await request(t.app).get('/fhir/metadata').set('X-Request-ID', 'referral-batch-42.a');
    expect(ok.headers['x-request-id']).toBe('referral-batch-42.a');
    const err = await request(t.app).get('/fhir/Patient/nope').set('X-Request-ID', 'trace-404');
    expect(err.status).toBe(404);
    expect(err.headers['x-request-id']).toBe('trace-404');
  });

  it('assigns an X-Request-ID when none (or an unsafe one) is sent, and logs it', async () => {
    const none = await request(t.app).get('/fhir/metadata');
    expect(none.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const unsafe = await request(t.app).get('/fhir/metadata').set('X-Request-ID', 'bad id <script>');
    expect(unsafe.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(t.logs.some((l) => l.requestId === none.headers['x-request-id'])).toBe(true);
  });

  it('serves a CapabilityStatement that describes the REST interactions', async () => {
    const res = await request(t.app).get('/fhir/metadata');
    expect(res.status).toBe(200);
    const cs = res.body as CapabilityStatement;
    expect(cs.fhirVersion).toBe('4.0.1');
    expect(cs.kind).toBe('instance');
    expect(cs.format).toContain('application/fhir+json');
    const rest = cs.rest?.[0];
    expect(rest?.mode).toBe('server');
    expect(rest?.interaction?.map((i) => i.code)).toEqual(
      expect.arrayContaining(['transaction', 'batch', 'history-system']),
    );
    const sr = rest?.resource?.find((r) => r.type === 'ServiceRequest');
    expect(sr?.interaction?.map((i) => i.code)).toEqual(
      expect.arrayContaining([
        'read',
        'vread',
        'update',
        'delete',
        'create',
        'search-type',
        'history-instance',
      ]),
    );
    expect(sr?.conditionalCreate).toBe(true);
    expect(sr?.searchInclude).toContain('ServiceRequest:subject');
    expect(sr?.searchRevInclude).toContain('Task:focus');
    expect(sr?.searchParam?.map((p) => p.name)).toEqual(
      expect.arrayContaining(['_id', 'subject', 'authored']),
    );
  });

  it('answers GET /fhir/metadata with fhir+json and never writes', async () => {
    const res = await expectNothingWritten(t.app, () => request(t.app).get('/fhir/metadata'));
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  });
});
