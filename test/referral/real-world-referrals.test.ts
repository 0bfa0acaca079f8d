import type { Bundle, EpisodeOfCare, ServiceRequest, Task } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FHIR_JSON, startTestApp, type TestApp } from '../support/test-app.js';
import {
  readFixture,
  RELAXED_BY_ISSUE_12,
  search,
  submit,
  systemHistoryTotal,
  type Channel,
} from './referral-fixtures.js';

/**
 * Issue 12: referrals in the shapes real senders write (fixtures/real-world/), and a patient
 * record whose other ServiceRequests are not referrals to the practice.
 */
const REAL_WORLD_REFERRALS = [
  'real-world/Bundle-nhs-referral-intent-plan.json',
  'real-world/Bundle-us-core-pt-evaluation.json',
  'real-world/Bundle-referral-no-identifier.json',
];

async function expectOneEpisodeFor(t: TestApp, id: string): Promise<void> {
  const episodes = await search<EpisodeOfCare>(t, 'EpisodeOfCare');
  expect(episodes.total).toBe(1);
  expect(episodes.resources[0]?.referralRequest).toEqual([{ reference: `ServiceRequest/${id}` }]);
  const tasks = await search<Task>(t, 'Task');
  expect(tasks.total).toBe(1);
  expect(tasks.resources[0]).toMatchObject({
    status: 'received',
    focus: { reference: `ServiceRequest/${id}` },
  });
}

async function putSetupParties(t: TestApp): Promise<void> {
  for (const name of ['Patient-example-patient.json', 'Practitioner-example-practitioner.json']) {
    const resource = readFixture<{ resourceType: string; id: string }>(name);
    await request(t.app)
      .put(`/fhir/${resource.resourceType}/${resource.id}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(resource))
      .expect(201);
  }
}

describe.each<Channel>(['transaction', 'single ServiceRequest', 'message'])(
  'a real-world referral through a %s',
  (channel) => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });

    it.each(REAL_WORLD_REFERRALS)(
      '%s is accepted as one referral with its episode and Task',
      async (name) => {
        t = await startTestApp();
        const id = await submit(t, readFixture<Bundle>(name), channel);
        expect((await search<ServiceRequest>(t, 'ServiceRequest')).total).toBe(1);
        await expectOneEpisodeFor(t, id);
      },
    );
  },
);

describe('ServiceRequests that are not referrals to the practice', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  it('stores a 54-entry patient record whose food-pantry and imaging orders are not referrals, with one episode for its PT referral', async () => {
    t = await startTestApp();
    const bundle = readFixture<Bundle>('real-world/Bundle-patient-record-with-other-orders.json');
    expect(bundle.entry).toHaveLength(54);
    const res = await request(t.app)
      .post('/fhir')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(bundle));
    expect(res.status, JSON.stringify(res.body.issue?.slice(0, 3))).toBe(200);
    expect(
      res.body.entry.every((e: { response: { status: string } }) => e.response.status === '201 Created'),
    ).toBe(true);
    const stored = await search<ServiceRequest>(t, 'ServiceRequest');
    expect(stored.total).toBe(3);
    const pt = stored.resources.find((s) => s.code?.coding?.[0]?.code === '229065009') as ServiceRequest;
    await expectOneEpisodeFor(t, pt.id as string);
    const completed = stored.resources.find((s) => s.status === 'completed');
    expect(completed?.code?.text).toBe('X-ray of left knee, 2 views');
  });

  it('stores a ServiceRequest posted alone that is addressed to another organisation, without an episode', async () => {
    t = await startTestApp();
    await putSetupParties(t);
    const other = await request(t.app)
      .post('/fhir/Organization')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Organization', name: 'Eastside Community Food Bank' }))
      .expect(201);
    const res = await request(t.app)
      .post('/fhir/ServiceRequest')
      .set('content-type', FHIR_JSON)
      .send(
        JSON.stringify({
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          code: { text: 'Referral to food pantry program' },
          subject: { reference: 'Patient/example-patient' },
          performer: [{ reference: `Organization/${other.body.id}` }],
        }),
      );
    expect(res.status, JSON.stringify(res.body.issue)).toBe(201);
    expect((await search(t, 'EpisodeOfCare')).total).toBe(0);
    expect((await search(t, 'Task')).total).toBe(0);
  });

  it('takes a ServiceRequest addressed to the practice for a referral, and checks it against the profile', async () => {
    t = await startTestApp();
    await putSetupParties(t);
    const res = await request(t.app)
      .post('/fhir/ServiceRequest')
      .set('content-type', FHIR_JSON)
      .send(
        JSON.stringify({
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'proposal',
          category: [{ coding: [{ system: 'http://snomed.info/sct', code: '3457005' }] }],
          code: { text: 'Physio, please' },
          subject: { reference: 'Patient/example-patient' },
          requester: { reference: 'Practitioner/example-practitioner' },
          authoredOn: '2026-11-02',
          reasonCode: [{ text: 'Knee pain' }],
          performer: [{ reference: 'Organization/practice' }],
        }),
      );
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression).toEqual(['ServiceRequest.intent']);
  });
});

describe('a re-sent referral without an identifier', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  const post = (referral: ServiceRequest) =>
    request(t.app).post('/fhir/ServiceRequest').set('content-type', FHIR_JSON).send(JSON.stringify(referral));

  it('is recognised by its fingerprint (requester, subject, code, authoredOn) and answered with the stored one', async () => {
    t = await startTestApp();
    await putSetupParties(t);
    const bundle = readFixture<Bundle>('real-world/Bundle-referral-no-identifier.json');
    const referral = {
      ...(bundle.entry?.[2]?.resource as ServiceRequest),
      subject: { reference: 'Patient/example-patient' },
      requester: { reference: 'Practitioner/example-practitioner' },
    };
    const first = await post(referral);
    expect(first.status, JSON.stringify(first.body.issue)).toBe(201);
    const versions = await systemHistoryTotal(t);
    const again = await post(referral);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(await systemHistoryTotal(t)).toBe(versions);
    // Another day's referral for the same patient is a new one.
    const next = await post({ ...referral, authoredOn: '2026-11-20T09:00:00-05:00' });
    expect(next.status).toBe(201);
    expect((await search(t, 'EpisodeOfCare')).total).toBe(2);
  });
});

describe('fixtures the relaxed referral profile now accepts', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  it('accepts an out-of-scope referral (a colonoscopy), which the practice then declines with a coded reason', async () => {
    t = await startTestApp();
    await putSetupParties(t);
    const body = readFixture<ServiceRequest>('invalid/ServiceRequest-code-colonoscopy.json');
    const created = await request(t.app)
      .post('/fhir/ServiceRequest')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(body));
    expect(created.status, JSON.stringify(created.body.issue)).toBe(201);
    const task = (await search<Task>(t, `Task?focus=ServiceRequest/${created.body.id}`)).resources[0] as Task;
    const declined = await request(t.app)
      .put(`/fhir/Task/${task.id}`)
      .set('content-type', FHIR_JSON)
      .send(
        JSON.stringify({
          ...task,
          status: 'rejected',
          statusReason: {
            coding: [
              {
                system: 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-decline-reason',
                code: 'outside-scope',
              },
            ],
          },
        }),
      );
    expect(declined.status, JSON.stringify(declined.body.issue)).toBe(200);
    expect(declined.body.businessStatus.coding[0].code).toBe('declined');
  });

  it.each(Object.entries(RELAXED_BY_ISSUE_12))(
    'invalid/%s is accepted (%s), with one episode',
    async (name) => {
      t = await startTestApp();
      await putSetupParties(t);
      const before = await systemHistoryTotal(t);
      const body = readFixture<{ resourceType: string }>(`invalid/${name}`);
      const path = body.resourceType === 'Bundle' ? '/fhir' : `/fhir/${body.resourceType}`;
      const res = await request(t.app).post(path).set('content-type', FHIR_JSON).send(JSON.stringify(body));
      expect(res.status, JSON.stringify(res.body.issue?.slice(0, 3))).toBe(
        body.resourceType === 'Bundle' ? 200 : 201,
      );
      expect(await systemHistoryTotal(t)).toBeGreaterThan(before);
      expect((await search(t, 'EpisodeOfCare')).total).toBe(1);
    },
  );
});
