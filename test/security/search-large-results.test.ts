import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Observation, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * `_revinclude` over many matches and large `POST _search` forms answer 2xx or a 4xx, never 500
 * (issue 11, item 18): a reverse include of a thousand matches is one reference filter with a
 * thousand values, which a single SQL statement cannot take on every dialect (SQLite's expression
 * depth, bound-parameter limits), and a form body can carry more than a query string can.
 */
const PATIENTS = 1_200;

describe('large searches answer 2xx or 4xx, never 500', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ bodyLimitBytes: 8 * 1024 * 1024 });
    // Each patient with two Observations about it: thousands of reverse-include matches.
    const entries: BundleEntry[] = [];
    for (let i = 0; i < PATIENTS; i++) {
      const fullUrl = `urn:uuid:${randomUUID()}`;
      entries.push({
        fullUrl,
        resource: { resourceType: 'Patient', name: [{ family: `Many${i}` }] } satisfies Patient,
        request: { method: 'POST', url: 'Patient' },
      });
      for (const code of ['8310-5', '8867-4']) {
        entries.push({
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code }] },
            subject: { reference: fullUrl },
          } satisfies Observation,
          request: { method: 'POST', url: 'Observation' },
        });
      }
    }
    for (let from = 0; from < entries.length; from += 1_200) {
      const res = await request(t.app)
        .post('/fhir')
        .set('Content-Type', FHIR_JSON)
        .send({ resourceType: 'Bundle', type: 'transaction', entry: entries.slice(from, from + 1_200) });
      expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
    }
  }, 600_000);
  afterAll(async () => {
    await t.close();
  });

  it('answers _revinclude over a thousand matches with the included resources', async () => {
    const res = await request(t.app).get('/fhir/Patient?_count=1000&_revinclude=Observation:subject');
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
    const entries = (res.body as Bundle).entry ?? [];
    expect(entries.filter((e) => e.search?.mode === 'match')).toHaveLength(1000);
    // Includes are bounded per search; all that are returned are Observations about the matches.
    const included = entries.filter((e) => e.search?.mode === 'include');
    expect(included.length).toBeGreaterThan(0);
    expect(included.every((e) => e.resource?.resourceType === 'Observation')).toBe(true);
  });

  it('answers _include:iterate after _revinclude over a thousand matches', async () => {
    const res = await request(t.app).get(
      '/fhir/Patient?_count=1000&_revinclude=Observation:subject&_include:iterate=Observation:subject',
    );
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
  });

  it('answers a POST _search form with a thousand patients in one reference list with 2xx or 4xx', async () => {
    const patients = await request(t.app).get('/fhir/Patient?_count=1000&_elements=id');
    const ids = ((patients.body as Bundle).entry ?? []).map((e) => `Patient/${e.resource?.id}`);
    const res = await request(t.app)
      .post('/fhir/Observation/_search')
      .type('form')
      .send(new URLSearchParams([['subject', ids.join(',')]]).toString());
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBeLessThan(500);
    expect(res.status).not.toBe(404);
  });

  it('answers a large POST _search form (thousands of parameters, megabytes) with 2xx or 4xx', async () => {
    const many = new URLSearchParams();
    for (let i = 0; i < 5_000; i++) many.append('name', `n${i}`);
    const a = await request(t.app).post('/fhir/Patient/_search').type('form').send(many.toString());
    expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBeGreaterThanOrEqual(400);
    expect(a.status).toBeLessThan(500);

    const huge = new URLSearchParams([['name', 'x'.repeat(4 * 1024 * 1024)]]);
    const b = await request(t.app).post('/fhir/Patient/_search').type('form').send(huge.toString());
    expect(b.status, JSON.stringify(b.body).slice(0, 500)).toBeLessThan(500);

    const wide = new URLSearchParams();
    for (let i = 0; i < 40; i++) wide.append(`address${i % 2 ? '' : '-city'}`, 'y'.repeat(100_000));
    const c = await request(t.app).post('/fhir/Patient/_search').type('form').send(wide.toString());
    expect(c.status, JSON.stringify(c.body).slice(0, 500)).toBeLessThan(500);
  });
});
