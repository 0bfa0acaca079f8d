import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FHIR_JSON, startTestApp, type TestApp } from './support/test-app.js';

describe('smoke', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('serves a CapabilityStatement at /fhir/metadata', async () => {
    const res = await request(t.app).get('/fhir/metadata');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
    expect(res.body.fhirVersion).toBe('4.0.1');
  });

  it('creates and reads back a Patient', async () => {
    const created = await request(t.app)
      .post('/fhir/Patient')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Smoke' }] }));
    expect(created.status).toBe(201);
    const read = await request(t.app).get(`/fhir/Patient/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.name[0].family).toBe('Smoke');
    expect(read.headers.etag).toBe('W/"1"');
  });
});
