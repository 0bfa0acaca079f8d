import type { Bundle } from '@medplum/fhirtypes';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listenTestApp, type ListeningApp } from '../support/listen.js';
import { readFixture, toMessage } from './referral-fixtures.js';

const HEADERS = { 'content-type': 'application/fhir+json' };

async function total(t: ListeningApp, query: string): Promise<number> {
  const res = await fetch(`${t.fhirBase}/${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  return ((await res.json()) as { total: number }).total;
}

describe.each([
  ['file-backed SQLite (WAL)', () => `sqlite:${join(mkdtempSync(join(tmpdir(), 'resend-')), 'db.sqlite')}`],
  ['in-memory SQLite', () => 'sqlite::memory:'],
])('concurrent re-sends of one referral on %s', (_name, databaseUrl) => {
  let t: ListeningApp;
  afterEach(async () => {
    await t?.close();
  });

  it('200 concurrent re-sends through all three channels make one referral, one episode, one Task', async () => {
    t = await listenTestApp({ databaseUrl: databaseUrl() });
    const bundle = readFixture<Bundle>('Bundle-referral-rotator-cuff-repair.json');
    const message = toMessage(bundle);
    const sends = Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0
        ? fetch(`${t.fhirBase}`, { method: 'POST', headers: HEADERS, body: JSON.stringify(bundle) })
        : fetch(`${t.fhirBase}/$process-message`, {
            method: 'POST',
            headers: HEADERS,
            body: JSON.stringify(message),
          }),
    );
    const responses = await Promise.all(sends);
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Bundle[];

    // Every answer names the same referral.
    const referralIds = new Set(
      bodies.map((b, i) => {
        if (i % 2 === 0) {
          const entry = b.entry?.find((e) => e.resource?.resourceType === 'ServiceRequest');
          return entry?.resource?.id;
        }
        const header = b.entry?.[0]?.resource as { focus?: { reference?: string }[] };
        return header.focus?.[0]?.reference?.split('/')[1];
      }),
    );
    expect(referralIds.size).toBe(1);

    expect(await total(t, 'ServiceRequest')).toBe(1);
    expect(await total(t, 'EpisodeOfCare')).toBe(1);
    expect(await total(t, 'Task')).toBe(1);
    expect(await total(t, 'Patient')).toBe(1);
    expect(await total(t, 'Practitioner')).toBe(1);
    const conditions = bundle.entry?.filter((e) => e.resource?.resourceType === 'Condition').length;
    expect(await total(t, 'Condition')).toBe(conditions);
  });
});
