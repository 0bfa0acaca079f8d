import type { AuditEvent } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUTH_FAILURE_LIMIT } from '../../src/auth/failed-authentications.js';
import { testStoreUrl } from '../support/postgres.js';
import { errorCode, startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * Issue 11, item 10: failed authentication cannot fill the disk. 401s are limited per address
 * (past the limit: 429 with Retry-After), and their AuditEvents are coalesced: one per address,
 * status and window, carrying the count of attempts, never one row per request.
 */
let t: SecureApp;
beforeAll(async () => {
  t = await startSecureApp({
    databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
    auditDelayMs: 10,
  });
});
afterAll(() => t?.close());

async function unauthenticatedEvents(): Promise<AuditEvent[]> {
  await t.audit.flush();
  const found = await t.store.search({
    resourceType: 'AuditEvent',
    filters: [],
    sort: [],
    count: 100_000,
    offset: 0,
    total: false,
  });
  return (found.resources as AuditEvent[]).filter((e) => e.agent?.[0]?.who?.display === 'unauthenticated');
}

const attempts = (e: AuditEvent): number =>
  Number(e.entity?.[0]?.detail?.find((d) => d.type === 'failed-attempts')?.valueString ?? '1');

describe('a flood of bad tokens', () => {
  it('500 bad-token requests produce at most a handful of AuditEvent rows, carrying the count, and later ones get 429 with Retry-After', async () => {
    const before = (await unauthenticatedEvents()).length;
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 500; i++) {
      const token = i % 2 === 0 ? `not-a-token-${i}` : undefined;
      const res = await t.fhir('GET', '/fhir/Patient', token ? { token } : {});
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter ??= res.headers['retry-after'] as string | undefined;
        expect(errorCode(res)).toBe('rate-limited');
      }
    }
    expect(statuses.slice(0, DEFAULT_AUTH_FAILURE_LIMIT).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(DEFAULT_AUTH_FAILURE_LIMIT).every((s) => s === 429)).toBe(true);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);

    const events = (await unauthenticatedEvents()).slice(before);
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(4);
    // Nothing is lost: the counts add up to the requests, status by status.
    const byStatus: Record<string, number> = {};
    for (const e of events)
      byStatus[e.outcomeDesc as string] = (byStatus[e.outcomeDesc as string] ?? 0) + attempts(e);
    expect(byStatus).toEqual({
      'HTTP 401': DEFAULT_AUTH_FAILURE_LIMIT,
      'HTTP 429': 500 - DEFAULT_AUTH_FAILURE_LIMIT,
    });
    for (const e of events) {
      expect(e.agent?.[0]?.network?.address).toBeTruthy();
      expect(e.period?.start).toBeTruthy();
    }
  });

  it('a valid token from the same address is still served while that address is limited', async () => {
    const token = await t.token('practice');
    expect((await t.fhir('GET', '/fhir/Patient', { token })).status).toBe(200);
    expect((await t.fhir('GET', '/fhir/Patient', { token: 'bad' })).status).toBe(429);
  });

  it('bad tokens on the dashboard and CSV exports are coalesced as well', async () => {
    const before = (await unauthenticatedEvents()).length;
    for (let i = 0; i < 50; i++) {
      await t.fhir('GET', i % 2 ? '/dashboard' : '/analytics/export.csv', { token: `bad-${i}` });
    }
    const events = (await unauthenticatedEvents()).slice(before);
    expect(events.length).toBeGreaterThan(0);
    // One per route type (Query, Export) and status, at most.
    expect(events.length).toBeLessThanOrEqual(4);
    expect(events.reduce((n, e) => n + attempts(e), 0)).toBe(50);
  });
});
