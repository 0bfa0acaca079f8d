import type { AuditEvent, Bundle } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreUrl } from '../support/postgres.js';
import { errorCode, REFERRER_A, startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * Issue 11, item 12: the analytics endpoints — the dashboard, the CSV exports and
 * `$evaluate-measure` — read every referrer's referrals without the per-client view, so they
 * check the role (practice or admin) and the scope `$evaluate-measure` needs (read on Measure),
 * are limited per client (ANALYTICS_RATE_LIMIT_PER_MINUTE, default 60, one budget for all three),
 * and each request is audited through the AuditTrail like a FHIR request.
 */
const PERIOD = 'periodStart=2025-01-01&periodEnd=2025-12-31';
const EVALUATE = `/fhir/Measure/pt-referral-triage/$evaluate-measure?${PERIOD}`;
const MEASURE_CSV = `/analytics/measures/pt-referral-triage.csv?${PERIOD}`;
const EXPORT = `/analytics/export.csv?${PERIOD}`;
const DASHBOARD = `/dashboard?${PERIOD}`;
const DEFAULT_LIMIT = 60;

describe('analytics access, limits and audit', () => {
  let s: SecureApp;
  beforeAll(async () => {
    s = await startSecureApp({
      databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it.each([EVALUATE, MEASURE_CSV, EXPORT, DASHBOARD])(
    '%s is refused (403 insufficient-scope) to a practice token without read on Measure',
    async (path) => {
      const token = await s.token('practice', 'system/Communication.rs');
      const res = await s.fhir('GET', path, { token });
      expect(res.status, res.text.slice(0, 300)).toBe(403);
      expect(errorCode(res)).toBe('insufficient-scope');
    },
  );

  it('limits analytics per client: one budget across dashboard, exports and $evaluate-measure, then 429 with Retry-After; other clients are not affected', async () => {
    await s.register('analyst', 'practice', 'system/*.rs');
    const token = await s.token('analyst');
    const paths = [DASHBOARD, EXPORT, MEASURE_CSV, EVALUATE];
    for (let i = 0; i < DEFAULT_LIMIT; i++) {
      const res = await s.fhir('GET', paths[i % paths.length] as string, { token });
      expect(res.status, `request ${i + 1}: ${res.text.slice(0, 200)}`).toBe(200);
    }
    for (const path of paths) {
      const res = await s.fhir('GET', path, { token });
      expect(res.status, path).toBe(429);
      expect(errorCode(res)).toBe('rate-limited');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    // Other FHIR requests of the same client keep the general limit.
    expect((await s.fhir('GET', '/fhir/Patient?_count=1', { token })).status).toBe(200);
    expect((await s.fhir('GET', DASHBOARD, { token: await s.token('admin') })).status).toBe(200);
  });

  it('records one AuditEvent per dashboard and CSV export request, refusals included, without the query', async () => {
    await s.audit.flush();
    const before = await analyticsEvents();
    const practice = await s.token('practice');
    const referrer = await s.token(REFERRER_A.clientId);
    const sent: [string, string | undefined, number][] = [
      [DASHBOARD, practice, 200],
      [EXPORT, practice, 200],
      [MEASURE_CSV, practice, 200],
      [DASHBOARD, referrer, 403],
      [EXPORT, undefined, 401],
    ];
    for (const [path, token, status] of sent) {
      expect((await s.fhir('GET', `${path}&source=SECRET-SOURCE`, token ? { token } : {})).status).toBe(
        status,
      );
    }
    await s.audit.flush();
    const added = (await analyticsEvents()).filter((e) => !before.some((b) => b.id === e.id));
    expect(added.map((e) => e.outcomeDesc).sort()).toEqual([
      'HTTP 200',
      'HTTP 200',
      'HTTP 200',
      'HTTP 401',
      'HTTP 403',
    ]);
    expect(added.map((e) => e.entity?.[0]?.detail?.[0]?.valueString).sort()).toEqual([
      'dashboard',
      'dashboard',
      'measure-export:pt-referral-triage',
      'referral-export',
      'referral-export',
    ]);
    const who = added.map((e) => e.agent?.[0]?.who?.identifier?.value ?? e.agent?.[0]?.who?.display).sort();
    expect(who).toEqual(['practice', 'practice', 'practice', REFERRER_A.clientId, 'unauthenticated'].sort());
    expect(JSON.stringify(added)).not.toContain('SECRET-SOURCE');
  });

  async function analyticsEvents(): Promise<AuditEvent[]> {
    const admin = await s.token('admin');
    const events: AuditEvent[] = [];
    for (const code of ['110112', '110106']) {
      const res = await s.fhir('GET', `/fhir/AuditEvent?type=${code}&_count=500`, { token: admin });
      expect(res.status, res.text.slice(0, 300)).toBe(200);
      events.push(...((res.body as Bundle).entry ?? []).map((e) => e.resource as AuditEvent));
    }
    return events;
  }
});
