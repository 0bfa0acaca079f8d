import type { OperationOutcome } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_PARAMETERS,
  MAX_REPEATS_PER_PARAMETER,
  MAX_VALUES_PER_PARAMETER,
} from '../../src/fhir/search/search-limits.js';
import { STATEMENT_CACHE_SIZE } from '../../src/store/sqlite/statement-cache.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Memory stays bounded under varied queries (issue 11, item 4). Every distinct SQL shape used to be
 * prepared and kept for ever by the SQLite store (300 differently sized `_id` lists: +192 MB); the
 * statement cache is now an LRU of STATEMENT_CACHE_SIZE, and the multi-valued parameters that make
 * new shapes are capped, with a 400 naming the parameter past the cap.
 */
describe('memory stays bounded under varied queries', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  function expectRefused(res: request.Response, parameter: string): void {
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    const outcome = res.body as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue?.[0]?.expression).toEqual([parameter]);
    expect(outcome.issue?.[0]?.details?.text).toContain(parameter);
  }

  const ids = (n: number, from = 0): string =>
    Array.from({ length: n }, (_, i) => `id-${from + i}`).join(',');

  it('keeps the SQLite statement cache within its bound after 500 distinct query shapes', async () => {
    if (!(t.store instanceof SqliteStore)) return; // PostgreSQL runs search SQL unnamed: nothing is cached.
    for (let shape = 0; shape < 500; shape++) {
      // 100 list lengths × 5 parameter combinations: 500 different SQL texts.
      const length = (shape % MAX_VALUES_PER_PARAMETER) + 1;
      const extra = ['', '&gender=male', '&name=x', '&birthdate=ge2000', '&_id:not=z'][
        Math.floor(shape / 100)
      ];
      const res = await request(t.app).get(`/fhir/Patient?_id=${ids(length)}${extra}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(t.store.preparedStatementCount()).toBeLessThanOrEqual(STATEMENT_CACHE_SIZE);
    }
    expect(t.store.preparedStatementCount()).toBe(STATEMENT_CACHE_SIZE);
  });

  it(`answers 400 naming _id past ${MAX_VALUES_PER_PARAMETER} ids`, async () => {
    const ok = await request(t.app).get(`/fhir/Patient?_id=${ids(MAX_VALUES_PER_PARAMETER)}`);
    expect(ok.status).toBe(200);
    expectRefused(await request(t.app).get(`/fhir/Patient?_id=${ids(MAX_VALUES_PER_PARAMETER + 1)}`), '_id');
  });

  it(`answers 400 naming the parameter past ${MAX_VALUES_PER_PARAMETER} comma-separated values`, async () => {
    const many = (prefix: string): string =>
      Array.from({ length: MAX_VALUES_PER_PARAMETER + 1 }, (_, i) => `${prefix}${i}`).join(',');
    expectRefused(await request(t.app).get(`/fhir/Patient?name=${many('n')}`), 'name');
    const years = Array.from({ length: MAX_VALUES_PER_PARAMETER + 1 }, (_, i) => `gt${1900 + i}`).join(',');
    expectRefused(await request(t.app).get(`/fhir/Patient?_lastUpdated=${years}`), '_lastUpdated');
    expectRefused(
      await request(t.app).get(`/fhir/Patient?_sort=${many('-_id').replace(/\d+/g, '')}`),
      '_sort',
    );
    expectRefused(await request(t.app).get(`/fhir/Patient?_elements=${many('name')}`), '_elements');
  });

  it(`answers 400 naming the parameter repeated more than ${MAX_REPEATS_PER_PARAMETER} times`, async () => {
    const repeated = (name: string, value: (i: number) => string, n: number): string =>
      Array.from({ length: n }, (_, i) => `${name}=${value(i)}`).join('&');
    const ok = await request(t.app).get(
      `/fhir/Patient?${repeated('birthdate', (i) => `ne19${10 + i}`, MAX_REPEATS_PER_PARAMETER)}`,
    );
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expectRefused(
      await request(t.app).get(
        `/fhir/Patient?${repeated('birthdate', (i) => `ne19${10 + i}`, MAX_REPEATS_PER_PARAMETER + 1)}`,
      ),
      'birthdate',
    );
    expectRefused(
      await request(t.app).get(
        `/fhir/Patient?${repeated('_include', () => 'Patient:general-practitioner', MAX_REPEATS_PER_PARAMETER + 1)}`,
      ),
      '_include',
    );
  });

  it(`answers 400 past ${MAX_PARAMETERS} search parameters in all`, async () => {
    const names = [
      'name',
      'family',
      'given',
      'address',
      'address-city',
      'address-country',
      'address-postalcode',
      'address-state',
      'phonetic',
    ];
    const query = Array.from(
      { length: MAX_PARAMETERS + 1 },
      (_, i) => `${names[i % names.length]}=v${i}`,
    ).join('&');
    const res = await request(t.app).get(`/fhir/Patient?${query}`);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect((res.body as OperationOutcome).issue?.[0]?.details?.text).toContain(String(MAX_PARAMETERS));
  });
});
