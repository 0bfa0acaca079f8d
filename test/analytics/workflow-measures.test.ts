import type { Bundle, MeasureReport, ServiceRequest, Task } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFixture, referralOf } from '../referral/referral-fixtures.js';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The measures read what the service itself writes: five of the project's referral fixtures are
 * driven through the real workflow over HTTP (accept, decline, book, no-show, visits with outcome
 * scores, discharge, the referrer's cancellation) and the MeasureReports must tell their story —
 * so the generated dataset's imitation of the workflow cannot drift unnoticed.
 */
const DECLINE = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-decline-reason';
const VISIT_TYPE = 'https://ptreferral.dev/fhir/CodeSystem/pt-encounter-type';
const PERIOD = { periodStart: '2026-01-01', periodEnd: '2026-12-31' };

describe('analytics over referrals moved by the real workflow', () => {
  let t: TestApp;
  const referrals: Record<string, ServiceRequest> = {};

  const post = (resource: object) =>
    request(t.app)
      .post(`/fhir/${(resource as { resourceType: string }).resourceType}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(resource));
  const task = async (r: ServiceRequest): Promise<Task> =>
    (await request(t.app).get(`/fhir/Task?focus=ServiceRequest/${r.id}`)).body.entry[0].resource as Task;
  const moveTask = async (r: ServiceRequest, changes: Partial<Task>): Promise<void> => {
    const current = await task(r);
    const res = await request(t.app)
      .put(`/fhir/Task/${current.id}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ ...current, ...changes, meta: undefined }));
    expect(res.status, JSON.stringify(res.body.issue)).toBe(200);
  };
  const visit = async (r: ServiceRequest, type: string, start: string, nprs: number): Promise<void> => {
    const encounter = await post({
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      type: [{ coding: [{ system: VISIT_TYPE, code: type }] }],
      subject: r.subject,
      basedOn: [{ reference: `ServiceRequest/${r.id}` }],
      period: { start, end: start.replace('T15', 'T16') },
    });
    expect(encounter.status, JSON.stringify(encounter.body.issue)).toBe(201);
    const observation = await post({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '72514-3' }] },
      subject: r.subject,
      encounter: { reference: `Encounter/${encounter.body.id}` },
      effectiveDateTime: start,
      valueInteger: nprs,
    });
    expect(observation.status, JSON.stringify(observation.body.issue)).toBe(201);
  };
  const evaluate = async (measure: string): Promise<MeasureReport> => {
    const res = await request(t.app).get(`/fhir/Measure/${measure}/$evaluate-measure`).query(PERIOD);
    expect(res.status).toBe(200);
    return res.body as MeasureReport;
  };
  const group = (report: MeasureReport, code: string) => {
    const g = report.group?.find((x) => x.code?.coding?.[0]?.code === code);
    return {
      counts: Object.fromEntries((g?.population ?? []).map((p) => [p.code?.coding?.[0]?.code, p.count])),
      score: g?.measureScore?.value,
      strata: (stratifier: string) =>
        Object.fromEntries(
          (g?.stratifier?.find((s) => s.code?.[0]?.coding?.[0]?.code === stratifier)?.stratum ?? []).map(
            (s) => [
              s.value?.text,
              s.population?.find((p) => p.code?.coding?.[0]?.code === 'numerator')?.count,
            ],
          ),
        ),
    };
  };

  beforeAll(async () => {
    t = await startTestApp();
    for (const [name, file] of [
      ['knee', 'Bundle-referral-knee-osteoarthritis.json'],
      ['ankle', 'Bundle-referral-ankle-sprain.json'],
      ['neck', 'Bundle-referral-chronic-neck-pain.json'],
      ['shoulder', 'Bundle-referral-rotator-cuff-repair.json'],
      ['hip', 'Bundle-referral-total-hip-arthroplasty.json'],
    ] as const) {
      const bundle = readFixture<Bundle>(file);
      const res = await request(t.app)
        .post('/fhir')
        .set('content-type', FHIR_JSON)
        .send(JSON.stringify(bundle));
      expect(res.status, JSON.stringify(res.body.issue)).toBe(200);
      referrals[name] = res.body.entry[bundle.entry?.indexOf(referralOf(bundle)) as number].resource;
    }
    const { knee, ankle, neck, shoulder } = referrals as Record<string, ServiceRequest>;
    // Knee: accepted, booked, evaluated (NPRS 7), discharged at a discharge visit (NPRS 3).
    await moveTask(knee as ServiceRequest, { status: 'accepted' });
    expect(
      (
        await post({
          resourceType: 'Appointment',
          status: 'booked',
          created: '2026-11-03T10:00:00Z',
          start: '2026-11-10T15:00:00Z',
          end: '2026-11-10T16:00:00Z',
          basedOn: [{ reference: `ServiceRequest/${knee?.id}` }],
          participant: [{ actor: knee?.subject, status: 'accepted' }],
        })
      ).status,
    ).toBe(201);
    await visit(knee as ServiceRequest, 'initial-evaluation', '2026-11-10T15:00:00Z', 7);
    await visit(knee as ServiceRequest, 'discharge', '2026-12-15T15:00:00Z', 3);
    // Ankle: declined, no capacity.
    await moveTask(ankle as ServiceRequest, {
      status: 'rejected',
      statusReason: { coding: [{ system: DECLINE, code: 'no-capacity', display: 'No capacity' }] },
    });
    // Neck: accepted, then the referrer revokes the referral.
    await moveTask(neck as ServiceRequest, { status: 'accepted' });
    const sr = (await request(t.app).get(`/fhir/ServiceRequest/${neck?.id}`)).body as ServiceRequest;
    const revoked = await request(t.app)
      .put(`/fhir/ServiceRequest/${neck?.id}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ ...sr, status: 'revoked', meta: undefined }));
    expect(revoked.status, JSON.stringify(revoked.body.issue)).toBe(200);
    // Shoulder: accepted, booked, and the patient did not come.
    await moveTask(shoulder as ServiceRequest, { status: 'accepted' });
    expect(
      (
        await post({
          resourceType: 'Appointment',
          status: 'noshow',
          created: '2026-11-04T10:00:00Z',
          start: '2026-11-12T15:00:00Z',
          end: '2026-11-12T16:00:00Z',
          basedOn: [{ reference: `ServiceRequest/${shoulder?.id}` }],
          participant: [{ actor: shoulder?.subject, status: 'declined' }],
        })
      ).status,
    ).toBe(201);
    // Hip: still awaiting triage.
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('counts the triage, the funnel and where and why referrals dropped off', async () => {
    const triage = await evaluate('pt-referral-triage');
    expect(group(triage, 'acceptance').counts).toEqual({
      'initial-population': 5,
      denominator: 4,
      numerator: 3,
    });
    expect(group(triage, 'acceptance').score).toBe(0.75);
    expect(group(triage, 'decline').strata('decline-reason')).toMatchObject({ 'No capacity': 1 });

    const conversion = await evaluate('pt-referral-conversion');
    expect(
      ['funnel-accepted', 'funnel-booked', 'funnel-first-visit', 'funnel-discharged', 'drop-off'].map(
        (code) => group(conversion, code).counts.numerator,
      ),
    ).toEqual([3, 2, 1, 1, 2]);
    const stages = group(conversion, 'drop-off').strata('drop-off-stage');
    expect(stages).toMatchObject({
      'Before acceptance (declined or cancelled at triage)': 1,
      'Accepted, never booked': 1,
    });
    expect(group(conversion, 'drop-off').strata('drop-off-reason')).toMatchObject({
      'No capacity': 1,
      'Cancelled, no reason given': 1,
    });
  });

  it('times the first contact from the Task history the workflow wrote', async () => {
    const report = await evaluate('pt-referral-timeliness');
    const contact = group(report, 'days-to-first-contact-median');
    expect(contact.counts).toEqual({ 'initial-population': 5, 'measure-population': 4 });
    // Each triaged Task's first accepted/rejected version, from its _history, against authoredOn.
    const days: number[] = [];
    for (const name of ['knee', 'ankle', 'neck', 'shoulder']) {
      const r = referrals[name] as ServiceRequest;
      const history = (await request(t.app).get(`/fhir/Task/${(await task(r)).id}/_history`)).body.entry
        .map((e: { resource: Task }) => e.resource)
        .reverse() as Task[];
      const decided = history.find((v) => v.status === 'accepted' || v.status === 'rejected') as Task;
      days.push(
        (Date.parse(decided.lastModified as string) - Date.parse(r.authoredOn as string)) / 86_400_000,
      );
    }
    days.sort((a, b) => a - b);
    const median = ((days[1] as number) + (days[2] as number)) / 2;
    expect(contact.score).toBe(Math.round(median * 100) / 100);
    // The knee was booked on 3 Nov and first seen on 10 Nov.
    const knee = referrals.knee as ServiceRequest;
    expect(group(report, 'days-to-first-visit-median').score).toBe(
      Math.round(
        ((Date.parse('2026-11-10T15:00:00Z') - Date.parse(knee.authoredOn as string)) / 86_400_000) * 100,
      ) / 100,
    );
  });

  it('reads attendance, no-shows and outcome change', async () => {
    const attendance = await evaluate('pt-referral-attendance');
    expect(group(attendance, 'no-shows').counts).toEqual({
      'initial-population': 5,
      denominator: 1,
      numerator: 1,
    });
    const change = await evaluate('pt-outcome-change');
    expect(group(change, 'nprs-mean-change').counts).toEqual({
      'initial-population': 1,
      'measure-population': 1,
    });
    expect(group(change, 'nprs-mean-change').score).toBe(-4);
    const mcid = await evaluate('pt-outcome-mcid');
    expect(group(mcid, 'nprs-mcid').counts).toEqual({
      'initial-population': 1,
      denominator: 1,
      numerator: 1,
    });
  });
});
