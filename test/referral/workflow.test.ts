import type { Bundle, EpisodeOfCare, ServiceRequest, Task } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';
import { readFixture, referralOf } from './referral-fixtures.js';

const DECLINE = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-decline-reason';

interface Referral {
  referral: ServiceRequest;
  task: Task;
  episode: EpisodeOfCare;
}

async function intake(t: TestApp, fixture = 'Bundle-referral-knee-osteoarthritis.json'): Promise<Referral> {
  const bundle = readFixture<Bundle>(fixture);
  const res = await request(t.app).post('/fhir').set('content-type', FHIR_JSON).send(JSON.stringify(bundle));
  expect(res.status, JSON.stringify(res.body.issue)).toBe(200);
  const index = bundle.entry?.indexOf(referralOf(bundle)) as number;
  const referral = res.body.entry[index].resource as ServiceRequest;
  const { task, episode } = await current(t, referral.id as string);
  return { referral, task, episode };
}

async function current(
  t: TestApp,
  referralId: string,
): Promise<{ task: Task; episode: EpisodeOfCare; referral: ServiceRequest }> {
  const task = (await request(t.app).get(`/fhir/Task?focus=ServiceRequest/${referralId}`)).body.entry[0]
    .resource;
  const episode = (
    await request(t.app).get(`/fhir/EpisodeOfCare?incoming-referral=ServiceRequest/${referralId}`)
  ).body.entry[0].resource;
  const referral = (await request(t.app).get(`/fhir/ServiceRequest/${referralId}`)).body;
  return { task, episode, referral };
}

async function putTask(t: TestApp, task: Task, changes: Partial<Task>): Promise<request.Response> {
  return request(t.app)
    .put(`/fhir/Task/${task.id}`)
    .set('content-type', FHIR_JSON)
    .set('If-Match', `W/"${task.meta?.versionId}"`)
    .send(JSON.stringify({ ...task, ...changes, meta: undefined }));
}

async function post(t: TestApp, resource: object): Promise<request.Response> {
  return request(t.app)
    .post(`/fhir/${(resource as { resourceType: string }).resourceType}`)
    .set('content-type', FHIR_JSON)
    .send(JSON.stringify(resource));
}

function appointment(r: Referral, status: string, start = '2026-11-10T15:00:00Z'): object {
  return {
    resourceType: 'Appointment',
    status,
    basedOn: [{ reference: `ServiceRequest/${r.referral.id}` }],
    start,
    end: '2026-11-10T16:00:00Z',
    participant: [{ actor: r.referral.subject, status: 'accepted' }],
  };
}

describe('referral workflow', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  it('walks a referral from received to completed, the episode following with dated status history', async () => {
    const r = await intake(t);
    expect(r.task.status).toBe('received');

    const accepted = await putTask(t, r.task, { status: 'accepted' });
    expect(accepted.status).toBe(200);
    expect(accepted.body.businessStatus.coding[0].code).toBe('accepted-awaiting-booking');

    const booked = await post(t, appointment(r, 'booked'));
    expect(booked.status).toBe(201);
    let now = await current(t, r.referral.id as string);
    expect(now.task.status).toBe('accepted');
    expect(now.task.businessStatus?.coding?.[0]?.code).toBe('appointment-booked');
    expect(now.episode.status).toBe('waitlist');

    // The first attended visit: the Task is in progress and the episode active.
    const visit = await post(t, {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: r.referral.subject,
      basedOn: [{ reference: `ServiceRequest/${r.referral.id}` }],
      period: { start: '2026-11-10T15:00:00Z', end: '2026-11-10T16:00:00Z' },
    });
    expect(visit.status).toBe(201);
    now = await current(t, r.referral.id as string);
    expect(now.task.status).toBe('in-progress');
    expect(now.task.businessStatus?.coding?.[0]?.code).toBe('first-visit-attended');
    expect(now.episode.status).toBe('active');

    const completed = await putTask(t, now.task, { status: 'completed' });
    expect(completed.status).toBe(200);
    now = await current(t, r.referral.id as string);
    expect(now.task.businessStatus?.coding?.[0]?.code).toBe('discharged');
    expect(now.episode.status).toBe('finished');
    expect(now.episode.period?.end).toBeDefined();
    expect(now.referral.status).toBe('completed');
    expect(now.episode.statusHistory?.map((h) => h.status)).toEqual(['waitlist', 'active', 'finished']);
    const [waitlist, active] = now.episode.statusHistory ?? [];
    expect(waitlist?.period.end).toBe(active?.period.start);

    const history = await request(t.app).get(`/fhir/Task/${r.task.id}/_history`);
    expect(history.body.entry.map((e: { resource: Task }) => e.resource.status)).toEqual([
      'completed',
      'in-progress',
      'accepted',
      'accepted',
      'received',
    ]);
  });

  it('declines a referral with a coded reason; the episode is cancelled', async () => {
    const r = await intake(t);
    const noReason = await putTask(t, r.task, { status: 'rejected' });
    expect(noReason.status).toBe(422);
    expect(noReason.body.issue[0].details.coding[0].code).toBe('business-rule');
    expect(noReason.body.issue[0].expression).toEqual(['Task.statusReason']);

    const declined = await putTask(t, r.task, {
      status: 'rejected',
      statusReason: {
        coding: [{ system: DECLINE, code: 'outside-scope', display: "Outside the practice's scope" }],
      },
    });
    expect(declined.status).toBe(200);
    const now = await current(t, r.referral.id as string);
    expect(now.task.businessStatus?.coding?.[0]?.code).toBe('declined');
    expect(now.episode.status).toBe('cancelled');
    expect(now.referral.status).toBe('active');
  });

  it('cancels when the referrer revokes the ServiceRequest', async () => {
    const r = await intake(t);
    expect((await putTask(t, r.task, { status: 'accepted' })).status).toBe(200);
    const revoked = await request(t.app)
      .put(`/fhir/ServiceRequest/${r.referral.id}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ ...r.referral, status: 'revoked', meta: undefined }));
    expect(revoked.status).toBe(200);
    const now = await current(t, r.referral.id as string);
    expect(now.task.status).toBe('cancelled');
    expect(now.task.businessStatus?.coding?.[0]?.code).toBe('cancelled');
    expect(now.episode.status).toBe('cancelled');
  });

  it('cancels on the referrer’s abort Task, and refuses one once the referral is finished', async () => {
    const r = await intake(t);
    const abort = {
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'abort' }] },
      focus: { reference: `Task/${r.task.id}` },
      authoredOn: '2026-11-03T10:00:00Z',
      reasonCode: { text: 'Patient moved away' },
    };
    const res = await post(t, abort);
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('completed');
    const now = await current(t, r.referral.id as string);
    expect(now.task.status).toBe('cancelled');
    expect(now.task.statusReason?.text).toBe('Patient moved away');
    expect(now.episode.status).toBe('cancelled');
    expect(now.referral.status).toBe('revoked');

    const again = await post(t, abort);
    expect(again.status).toBe(201);
    expect(again.body.status).toBe('rejected');
  });

  it('records a no-show, and refuses to book a visit before the referral is accepted', async () => {
    const r = await intake(t);
    const early = await post(t, appointment(r, 'booked'));
    expect(early.status).toBe(422);
    expect(early.body.issue[0].details.coding[0].code).toBe('business-rule');
    expect((await request(t.app).get('/fhir/Appointment')).body.total).toBe(0);

    expect((await putTask(t, r.task, { status: 'accepted' })).status).toBe(200);
    const booked = await post(t, appointment(r, 'booked'));
    expect(booked.status).toBe(201);
    const noShow = await request(t.app)
      .put(`/fhir/Appointment/${booked.body.id}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ ...booked.body, status: 'noshow', meta: undefined }));
    expect(noShow.status).toBe(200);
    expect((await current(t, r.referral.id as string)).task.businessStatus?.coding?.[0]?.code).toBe(
      'no-show',
    );
  });

  const ALL = [
    'received',
    'accepted',
    'rejected',
    'in-progress',
    'on-hold',
    'completed',
    'cancelled',
    'failed',
  ] as const;
  const ALLOWED: Record<string, string[]> = {
    received: ['accepted', 'rejected', 'cancelled'],
    accepted: ['in-progress', 'on-hold', 'cancelled'],
    'in-progress': ['completed', 'on-hold', 'failed', 'cancelled'],
    'on-hold': ['in-progress', 'cancelled'],
    rejected: [],
    completed: [],
    cancelled: [],
    failed: [],
  };
  /** How to reach each state from received through allowed steps. */
  const PATH: Record<string, string[]> = {
    received: [],
    accepted: ['accepted'],
    rejected: ['rejected'],
    'in-progress': ['accepted', 'in-progress'],
    'on-hold': ['accepted', 'on-hold'],
    completed: ['accepted', 'in-progress', 'completed'],
    cancelled: ['cancelled'],
    failed: ['accepted', 'in-progress', 'failed'],
  };
  const reasonFor = (status: string): Partial<Task> =>
    status === 'rejected' ? { statusReason: { coding: [{ system: DECLINE, code: 'no-capacity' }] } } : {};

  it.each(ALL.flatMap((from) => ALL.filter((to) => to !== from).map((to) => [from, to] as const)))(
    'Task %s → %s is allowed exactly when the state machine says so',
    async (from, to) => {
      const r = await intake(t);
      let task = r.task;
      for (const step of PATH[from] ?? []) {
        const res = await putTask(t, task, { status: step as Task['status'], ...reasonFor(step) });
        expect(res.status, `${step}: ${JSON.stringify(res.body.issue)}`).toBe(200);
        task = res.body;
      }
      const res = await putTask(t, task, { status: to, ...reasonFor(to) });
      if (ALLOWED[from]?.includes(to)) {
        expect(res.status, JSON.stringify(res.body.issue)).toBe(200);
        const episode = (await current(t, r.referral.id as string)).episode;
        const expected =
          { accepted: 'waitlist', 'in-progress': 'active', 'on-hold': 'onhold', completed: 'finished' }[
            to as string
          ] ?? 'cancelled';
        expect(episode.status).toBe(expected);
      } else {
        expect(res.status).toBe(422);
        expect(res.body.issue[0].details.coding[0].code).toBe('business-rule');
        expect(res.body.issue[0].expression).toEqual(['Task.status']);
        const allowed = ALLOWED[from] ?? [];
        expect(res.body.issue[0].details.text).toContain(
          allowed.length ? `allowed: ${allowed.join(', ')}` : 'final state',
        );
        expect((await request(t.app).get(`/fhir/Task/${task.id}`)).body.meta.versionId).toBe(
          task.meta?.versionId,
        );
      }
    },
  );
});

describe('decline reason displays', () => {
  it('match the decline-reason CodeSystem in profiles/', async () => {
    const { readFileSync } = await import('node:fs');
    const { DECLINE_REASON_DISPLAY } = await import('../../src/referral/codes.js');
    const cs = JSON.parse(
      readFileSync(
        new URL('../../profiles/CodeSystem-pt-referral-decline-reason.json', import.meta.url),
        'utf8',
      ),
    ) as {
      concept: { code: string; display: string }[];
    };
    expect(DECLINE_REASON_DISPLAY).toEqual(Object.fromEntries(cs.concept.map((c) => [c.code, c.display])));
  });
});
