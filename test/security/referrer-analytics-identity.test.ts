import type { MeasureReport, Practitioner, QuestionnaireResponse } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEEDBACK_QUESTIONNAIRE } from '../../src/analytics/feedback.js';
import { NPI_SYSTEM } from '../../src/analytics/referrer.js';
import { expectOutcome, referralServiceRequest } from '../http/http-helpers.js';
import { testStoreUrl } from '../support/postgres.js';
import { startSecureApp, type SecureApp } from '../support/secure-app.js';
import { buildWorld, created, type World } from './world.js';

/**
 * Issue 11, item 17: analytics identity cannot be forged. Referrer B claims referrer A's NPI — on
 * its referral's requester, on its own Practitioner record, as the author of feedback — and none of
 * it lands in A's figures: a referral counts under the identity the server knows for its requester
 * (registered by the practice, not editable by the referrer), feedback only when authored by
 * someone the writing client acts for.
 */
let t: SecureApp;
let world: World;
const A_NPI = '1234567893';
const PERIOD = 'periodStart=2024-01-01&periodEnd=2024-12-31';

beforeAll(async () => {
  t = await startSecureApp({ databaseUrl: testStoreUrl(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:') });
  world = await buildWorld(t);
  // The practice registers A's NPI on A's Practitioner.
  const drA = (await t.fhir('GET', `/fhir/${world.a.practitioner}`, { token: world.admin }))
    .body as Practitioner;
  await created(
    t,
    world.admin,
    { ...drA, identifier: [{ system: NPI_SYSTEM, value: A_NPI }] },
    `/fhir/${world.a.practitioner}`,
    'PUT',
  );
});
afterAll(async () => {
  await world?.close();
  await t?.close();
});

const claimedNpi = { system: NPI_SYSTEM, value: A_NPI };

function feedback(author: QuestionnaireResponse['author'] & object): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: FEEDBACK_QUESTIONNAIRE,
    status: 'completed',
    authored: '2024-06-01T10:00:00Z',
    author,
    item: [
      { linkId: 'communication', answer: [{ valueInteger: 1 }] },
      { linkId: 'outcomes', answer: [{ valueInteger: 1 }] },
    ],
  };
}

async function reportFor(measure: string, subject: string): Promise<MeasureReport> {
  const res = await t.fhir('GET', `/fhir/Measure/${measure}/$evaluate-measure?${PERIOD}&subject=${subject}`, {
    token: world.practice,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as MeasureReport;
}

const population = (report: MeasureReport, group = 0): number | undefined =>
  report.group?.[group]?.population?.find((p) => p.code?.coding?.[0]?.code === 'initial-population')?.count;

describe('analytics identity cannot be forged', () => {
  it('refuses a referrer rewriting the identities it acts for (its Practitioner’s NPI)', async () => {
    const drB = (await t.fhir('GET', `/fhir/${world.b.practitioner}`, { token: world.b.token }))
      .body as Practitioner;
    const res = await t.fhir('PUT', `/fhir/${world.b.practitioner}`, {
      token: world.b.token,
      body: { ...drB, identifier: [claimedNpi] },
    });
    expect(expectOutcome(res, 403, 'forbidden', 'forbidden').issue?.[0]?.expression).toEqual([
      'Practitioner',
    ]);
  });

  it('refuses referrer feedback authored by anyone the referrer does not act for', async () => {
    for (const author of [{ identifier: claimedNpi }, { reference: world.b.ownPatient }]) {
      const res = await t.fhir('POST', '/fhir/QuestionnaireResponse', {
        token: world.b.token,
        body: feedback(author),
      });
      expect(
        expectOutcome(res, 403, 'forbidden', 'forbidden').issue?.[0]?.expression,
        JSON.stringify(author),
      ).toEqual(['QuestionnaireResponse.author']);
    }
  });

  it('never counts another referrer’s referrals or feedback under a claimed NPI', async () => {
    // B's own referral, its requester carrying A's NPI; and B's own feedback, claiming it too.
    await created(
      t,
      world.b.token,
      referralServiceRequest(
        { subject: world.b.ownPatient, requester: world.b.practitioner },
        { requester: { reference: world.b.practitioner, identifier: claimedNpi } },
      ),
    );
    await t.fhir('POST', '/fhir/QuestionnaireResponse', {
      token: world.b.token,
      body: feedback({ identifier: claimedNpi }),
    });
    await created(t, world.b.token, feedback({ reference: world.b.practitioner, identifier: claimedNpi }));
    const volume = await reportFor('pt-referral-volume', world.a.practitioner);
    expect(population(volume), JSON.stringify(volume.group?.[0]?.population)).toBe(world.a.referrals.length);
    const satisfaction = await reportFor('pt-referrer-feedback', world.a.practitioner);
    expect(population(satisfaction)).toBe(0);
    // B's feedback counts, under B.
    expect(population(await reportFor('pt-referrer-feedback', world.b.practitioner))).toBe(1);
  });
});
