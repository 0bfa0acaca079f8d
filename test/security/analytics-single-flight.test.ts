import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnalyticsService } from '../../src/analytics/service.js';
import { parsePeriod } from '../../src/analytics/period.js';
import { compose, type Composition } from '../../src/compose.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { openStore } from '../../src/store/open-store.js';
import { testStoreUrl } from '../support/postgres.js';
import { sharedValidator } from '../support/test-app.js';
import { captureLogs, testConfig } from '../support/test-config.js';

/**
 * Issue 11, item 12: concurrent cold computations of the same period run once. Reading a period
 * takes seconds on a busy practice; ten people opening the dashboard, or a script asking ten
 * times, must not read it ten times. Observed through the real store's own read calls (search,
 * history, readReferences), counted by a wrapper that passes every call through after the
 * latency of a networked store, and through the AnalyticsService's counters. Requests go to one
 * listening server, sent together.
 */
const READS = new Set(['search', 'history', 'readReferences', 'read', 'vread']);

function countingStore(real: FhirStore, counter: { reads: number }): FhirStore {
  return new Proxy(real, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      if (!READS.has(String(property))) return value.bind(target);
      return async (...args: unknown[]) => {
        counter.reads++;
        // The latency of a store across a network, so that requests sent together overlap.
        await new Promise((resolve) => setTimeout(resolve, 5));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Half-years of the same length (181 days), one per measurement, so every one starts cold. */
const HALF_YEARS = [2025, 2023, 2022, 2021, 2019, 2018, 2017, 2015, 2014, 2013, 2011, 2010].map((y) => ({
  periodStart: `${y}-01-01`,
  periodEnd: `${y}-06-30`,
}));

describe('concurrent cold analytics requests', () => {
  const counter = { reads: 0 };
  let real: FhirStore;
  let service: Composition;
  let origin: string;
  const periods = [...HALF_YEARS];
  const nextPeriod = () => periods.shift() as { periodStart: string; periodEnd: string };

  beforeAll(async () => {
    real = await openStore(testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'));
    service = await compose(testConfig(), {
      store: countingStore(real, counter),
      logSink: captureLogs().sink,
      validator: sharedValidator(),
      audit: false,
      version: 'test',
    });
    ({ origin } = await service.start());
  });
  afterAll(async () => {
    await service?.close();
    await real?.close();
  });

  const readsOf = async (path: string, period: object, times: number): Promise<number> => {
    const before = counter.reads;
    const answers = await Promise.all(
      Array.from({ length: times }, () => request(origin).get(path).query(period)),
    );
    for (const res of answers) expect(res.status, res.text.slice(0, 200)).toBe(200);
    return counter.reads - before;
  };

  it.each([
    '/fhir/Measure/pt-referral-triage/$evaluate-measure',
    '/analytics/measures/pt-referral-conversion.csv',
    '/analytics/export.csv',
    '/dashboard',
  ])('10 identical cold requests of %s read the period no more than one request does', async (path) => {
    const one = await readsOf(path, nextPeriod(), 1);
    expect(one).toBeGreaterThan(0);
    expect(await readsOf(path, nextPeriod(), 10)).toBe(one);
  });

  it('a cold export, dashboard and $evaluate-measure of one period, asked together, read it once', async () => {
    const oneLoad = await readsOf('/dashboard', nextPeriod(), 1);
    const oneExport = await readsOf('/analytics/export.csv', nextPeriod(), 1);
    const period = nextPeriod();
    const before = counter.reads;
    const answers = await Promise.all(
      ['/analytics/export.csv', '/dashboard', '/fhir/Measure/pt-referral-triage/$evaluate-measure'].flatMap(
        (path) => Array.from({ length: 3 }, () => request(origin).get(path).query(period)),
      ),
    );
    for (const res of answers) expect(res.status).toBe(200);
    // A streaming export also counts the period's referrals first (X-Total-Rows) when it leads.
    expect(counter.reads - before).toBeLessThanOrEqual(Math.max(oneLoad, oneExport));
  });

  it('10 concurrent identical MeasureReports (measure, period, source) are evaluated once', async () => {
    const analytics = new AnalyticsService({ store: real });
    const period = parsePeriod('2024-01-01', '2024-12-31');
    const reports = await Promise.all(
      Array.from({ length: 10 }, () => analytics.report('pt-referral-triage', period)),
    );
    expect(new Set(reports.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(analytics.stats).toEqual({ loads: 1, evaluations: 1 });
    await analytics.report('pt-referral-conversion', period);
    expect(analytics.stats).toEqual({ loads: 1, evaluations: 2 });
  });
});
