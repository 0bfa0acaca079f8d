import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFERRER_A, startSecureApp, type SecureApp } from '../support/secure-app.js';

/**
 * With security on, analytics are the practice's: `$evaluate-measure` goes through the FHIR
 * endpoint's token and scope checks, the dashboard and the CSV exports need a bearer token too
 * (staff sign-in is a later issue), and a referrer's token is refused everywhere — the figures
 * cover every referrer and are read without the per-client scoping that isolates referrers.
 */
const PERIOD = 'periodStart=2025-01-01&periodEnd=2025-12-31';
const PATHS = [
  `/fhir/Measure/pt-referral-triage/$evaluate-measure?${PERIOD}`,
  `/analytics/measures/pt-referral-triage.csv?${PERIOD}`,
  `/analytics/export.csv?${PERIOD}`,
  `/dashboard?${PERIOD}`,
];

describe('analytics with security on', () => {
  let s: SecureApp;
  beforeAll(async () => {
    s = await startSecureApp();
  });
  afterAll(async () => {
    await s?.close();
  });

  it.each(PATHS)('%s needs a bearer token', async (path) => {
    const res = await s.fhir('GET', path);
    expect(res.status).toBe(401);
  });

  it.each(PATHS)('%s is refused to a referrer', async (path) => {
    const res = await s.fhir('GET', path, { token: await s.token(REFERRER_A.clientId) });
    expect(res.status).toBe(403);
  });

  it.each(PATHS)('%s answers the practice', async (path) => {
    const res = await s.fhir('GET', path, { token: await s.token('practice') });
    expect(res.status, res.text.slice(0, 200)).toBe(200);
  });
});
