import type { Bundle, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { publishedDefinitions } from '../../src/conformance/published-definitions.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/test-app.js';
import {
  create,
  expectOutcome,
  link,
  pathOf,
  patient,
  PRACTICE_REF,
  practitioner,
  putResource,
  sleep,
} from './http-helpers.js';

/** Instance, type and system history (https://hl7.org/fhir/R4/http.html#history). */

describe('history', () => {
  let t: TestApp;
  let pt: Patient;
  let v2LastUpdated: string;
  beforeAll(async () => {
    t = await startTestApp();
    pt = await create(t.app, patient({ name: [{ family: 'Nakamura', given: ['Ren'] }] }));
    for (const [i, phone] of ['555-0101', '555-0102', '555-0103'].entries()) {
      await sleep(3);
      const res = await putResource(t.app, `/fhir/Patient/${pt.id}`, {
        ...pt,
        telecom: [{ system: 'phone', value: phone }],
      });
      expect(res.status).toBe(200);
      if (i === 0) v2LastUpdated = res.body.meta.lastUpdated;
    }
    await sleep(3);
    await create(t.app, practitioner('Santos'));
    await create(t.app, patient());
  });
  afterAll(() => t.close());

  it('lists every version of an instance, newest first', async () => {
    const res = await request(t.app).get(`/fhir/Patient/${pt.id}/_history`);
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.type).toBe('history');
    expect(bundle.total).toBe(4);
    expect(bundle.entry?.map((e) => e.resource?.meta?.versionId)).toEqual(['4', '3', '2', '1']);
    expect(bundle.entry?.map((e) => e.request?.method)).toEqual(['PUT', 'PUT', 'PUT', 'POST']);
    expect(bundle.entry?.[0]?.response).toMatchObject({ status: '200', etag: 'W/"4"' });
  });

  it('pages instance history with _count and a next link', async () => {
    const first = await request(t.app).get(`/fhir/Patient/${pt.id}/_history?_count=3`);
    expect(first.body.entry).toHaveLength(3);
    const next = link(first.body as Bundle, 'next');
    expect(next).toBeDefined();
    const second = await request(t.app).get(pathOf(next as string));
    expect(second.status).toBe(200);
    expect(second.body.entry.map((e: { resource: Patient }) => e.resource.meta?.versionId)).toEqual(['1']);
    expect(link(second.body as Bundle, 'next')).toBeUndefined();
  });

  it('filters instance history with _since, inclusive of the given instant', async () => {
    const res = await request(t.app).get(`/fhir/Patient/${pt.id}/_history`).query({ _since: v2LastUpdated });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: { resource: Patient }) => e.resource.meta?.versionId)).toEqual([
      '4',
      '3',
      '2',
    ]);
  });

  it('lists type history across instances of one type only', async () => {
    const res = await request(t.app).get('/fhir/Patient/_history');
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.total).toBe(5);
    expect(new Set(bundle.entry?.map((e) => e.resource?.resourceType))).toEqual(new Set(['Patient']));
  });

  it('filters type history with _since and limits it with _count', async () => {
    const res = await request(t.app)
      .get('/fhir/Patient/_history')
      .query({ _since: v2LastUpdated, _count: '2' });
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(4);
    expect(res.body.entry).toHaveLength(2);
  });

  it('lists system history across every type', async () => {
    const published = publishedDefinitions();
    const res = await request(t.app).get('/fhir/_history').query({ _count: '100' });
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    // The six versions written here, and what the app writes at start-up: its published
    // definitions (Measures, Questionnaire, OperationDefinitions), then the practice Organization.
    expect(bundle.total).toBe(7 + published.length);
    expect(new Set(bundle.entry?.map((e) => e.resource?.resourceType))).toEqual(
      new Set(['Patient', 'Practitioner', 'Organization', ...published.map((r) => r.resourceType)]),
    );
    expect(bundle.entry?.[0]?.resource?.resourceType).toBe('Patient');
    expect(bundle.entry?.[1]?.resource?.resourceType).toBe('Practitioner');
    const practice = bundle.entry?.[6];
    expect(`${practice?.resource?.resourceType}/${practice?.resource?.id}`).toBe(PRACTICE_REF);
    expect(practice?.resource?.meta?.versionId).toBe('1');
    expect(
      bundle.entry
        ?.slice(7)
        .map((e) => e.resource?.resourceType)
        .sort(),
    ).toEqual(published.map((r) => r.resourceType).sort());
  });

  it('filters system history with _since and pages it with _count', async () => {
    const res = await request(t.app).get('/fhir/_history').query({ _since: v2LastUpdated, _count: '3' });
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(5);
    expect(res.body.entry).toHaveLength(3);
    const rest = await request(t.app).get(pathOf(link(res.body as Bundle, 'next') as string));
    expect(rest.body.entry).toHaveLength(2);
    expect(rest.body.entry[1].resource.meta.versionId).toBe('2');
  });

  it('returns an empty history for a _since in the future', async () => {
    const res = await request(t.app).get('/fhir/_history').query({ _since: '2999-01-01T00:00:00Z' });
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(0);
  });

  it('returns 404 for the history of an id that was never written', async () => {
    expectOutcome(
      await request(t.app).get('/fhir/Patient/ghost/_history'),
      404,
      'not-found',
      'resource-not-found',
    );
  });

  it('rejects a _since without a timezone with 400', async () => {
    expectOutcome(
      await request(t.app).get('/fhir/_history?_since=2024-01-01T00:00:00'),
      400,
      'value',
      'invalid-search-parameter',
    );
  });

  it('rejects a non-numeric _count with 400', async () => {
    expectOutcome(
      await request(t.app).get('/fhir/Patient/_history?_count=ten'),
      400,
      'value',
      'invalid-search-parameter',
    );
  });
});
