import type { Bundle, EpisodeOfCare, ServiceRequest, Task } from '@medplum/fhirtypes';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FHIR_JSON, sharedValidator, startTestApp, type TestApp } from '../support/test-app.js';
import {
  invalidExpectations,
  readFixture,
  referralBundleNames,
  referralOf,
  search,
  submit,
  systemHistoryTotal,
  toMessage,
  type Channel,
} from './referral-fixtures.js';

describe.each<Channel>(['transaction', 'single ServiceRequest', 'message'])(
  'referral intake through a %s',
  (channel) => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });

    it.each(referralBundleNames())(
      '%s yields exactly one linked ServiceRequest, EpisodeOfCare and Task',
      async (name) => {
        t = await startTestApp();
        const bundle = readFixture<Bundle>(name);
        const id = await submit(t, bundle, channel);

        const referrals = await search<ServiceRequest>(t, 'ServiceRequest');
        expect(referrals.total).toBe(1);
        const referral = referrals.resources[0] as ServiceRequest;
        expect(referral.id).toBe(id);
        expect(referral.identifier).toEqual(referralOf(bundle).resource.identifier);
        expect(referral.subject?.reference).toMatch(/^Patient\//);

        const episodes = await search<EpisodeOfCare>(t, 'EpisodeOfCare');
        expect(episodes.total).toBe(1);
        const episode = episodes.resources[0] as EpisodeOfCare;
        expect(episode).toMatchObject({
          status: 'waitlist',
          referralRequest: [{ reference: `ServiceRequest/${id}` }],
          patient: { reference: referral.subject?.reference },
          managingOrganization: { reference: expect.stringMatching(/^Organization\//) },
        });
        expect(episode.statusHistory).toEqual([
          { status: 'waitlist', period: { start: episode.period?.start } },
        ]);

        const tasks = await search<Task>(t, 'Task');
        expect(tasks.total).toBe(1);
        expect(tasks.resources[0]).toMatchObject({
          status: 'received',
          intent: 'order',
          code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' }] },
          focus: { reference: `ServiceRequest/${id}` },
          for: { reference: referral.subject?.reference },
          requester: { reference: referral.requester?.reference },
          owner: { reference: episode.managingOrganization?.reference },
          businessStatus: { coding: [{ code: 'awaiting-triage' }] },
        });
        // The service writes these without validating each one again (storeResource built): prove
        // here that what its mappers build is valid R4 and meets the profiles they claim.
        for (const resource of [episode, tasks.resources[0] as Task]) {
          const result = sharedValidator().validate(resource);
          expect(
            result.issues.filter((i) => i.severity === 'error'),
            resource.resourceType,
          ).toEqual([]);
          expect(resource.meta?.profile?.length).toBe(1);
        }
        // The episode is the one the referral's performer names, or the service's practice.
        const performer = referral.performer?.find((p) =>
          p.reference?.startsWith('Organization/'),
        )?.reference;
        expect(episode.managingOrganization?.reference).toBe(performer ?? 'Organization/practice');
      },
    );
  },
);

describe('re-sent referrals', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  it.each<Channel>(['transaction', 'message'])(
    'recognises a referral re-sent as a %s and stores nothing new',
    async (channel) => {
      t = await startTestApp();
      const bundle = readFixture<Bundle>('Bundle-referral-acl-reconstruction.json');
      const first = await submit(t, bundle, channel);
      const versions = await systemHistoryTotal(t);
      const again =
        channel === 'transaction'
          ? await request(t.app).post('/fhir').set('content-type', FHIR_JSON).send(JSON.stringify(bundle))
          : await request(t.app)
              .post('/fhir/$process-message')
              .set('content-type', FHIR_JSON)
              .send(JSON.stringify(toMessage(bundle)));
      expect(again.status).toBe(200);
      if (channel === 'transaction') {
        expect(again.body.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(
          bundle.entry?.map(() => '200 OK'),
        );
      }
      expect(await systemHistoryTotal(t)).toBe(versions);
      expect((await search(t, `ServiceRequest?_id=${first}`)).total).toBe(1);
      expect((await search(t, 'ServiceRequest')).total).toBe(1);
      expect((await search(t, 'Condition')).total).toBe(
        bundle.entry?.filter((e) => e.resource?.resourceType === 'Condition').length,
      );
    },
  );

  it('answers a single ServiceRequest re-send with 200 and the existing referral', async () => {
    t = await startTestApp();
    for (const name of ['Patient-example-patient.json', 'Practitioner-example-practitioner.json']) {
      const resource = readFixture<{ resourceType: string; id: string }>(name);
      await request(t.app)
        .put(`/fhir/${resource.resourceType}/${resource.id}`)
        .set('content-type', FHIR_JSON)
        .send(JSON.stringify(resource))
        .expect(201);
    }
    const referral = readFixture<ServiceRequest>('ServiceRequest-referral-knee-oa.json');
    const first = await request(t.app)
      .post('/fhir/ServiceRequest')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(referral));
    expect(first.status).toBe(201);
    const second = await request(t.app)
      .post('/fhir/ServiceRequest')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(referral));
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect((await search(t, 'Task')).total).toBe(1);
    expect((await search(t, 'EpisodeOfCare')).total).toBe(1);
  });
});

describe('invalid referrals', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  it.each(invalidExpectations())(
    '%s is refused with its documented status and code, and writes nothing',
    async (name, expected) => {
      t = await startTestApp();
      for (const setup of ['Patient-example-patient.json', 'Practitioner-example-practitioner.json']) {
        const resource = readFixture<{ resourceType: string; id: string }>(setup);
        await request(t.app)
          .put(`/fhir/${resource.resourceType}/${resource.id}`)
          .set('content-type', FHIR_JSON)
          .send(JSON.stringify(resource))
          .expect(201);
      }
      const before = await systemHistoryTotal(t);
      const body = readFixture<{ resourceType: string }>(`invalid/${name}`);
      const path = body.resourceType === 'Bundle' ? '/fhir' : `/fhir/${body.resourceType}`;
      const res = await request(t.app).post(path).set('content-type', FHIR_JSON).send(JSON.stringify(body));
      expect(res.status, JSON.stringify(res.body.issue?.slice(0, 3))).toBe(expected.status);
      expect(res.body.resourceType).toBe('OperationOutcome');
      const issues = res.body.issue as {
        details?: { coding?: { code?: string }[] };
        expression?: string[];
      }[];
      expect(
        issues.some(
          (i) =>
            i.details?.coding?.[0]?.code === expected.code &&
            (i.expression?.[0] ?? '').startsWith(expected.expression),
        ),
        JSON.stringify(issues.slice(0, 3)),
      ).toBe(true);
      expect(JSON.stringify(res.body)).not.toMatch(/at \w+ \(|node_modules|\.ts:\d+/);
      expect(await systemHistoryTotal(t)).toBe(before);
    },
  );

  it('refuses a referral whose patient does not exist on the server (422) and writes nothing', async () => {
    t = await startTestApp();
    const referral = readFixture<ServiceRequest>('ServiceRequest-referral-knee-oa.json');
    const before = await systemHistoryTotal(t);
    const res = await request(t.app)
      .post('/fhir/ServiceRequest')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(referral));
    expect(res.status).toBe(422);
    expect(
      res.body.issue.map((i: { details: { coding: { code: string }[] } }) => i.details.coding[0]?.code),
    ).toEqual(['business-rule', 'business-rule']);
    expect(res.body.issue.map((i: { expression: string[] }) => i.expression[0])).toEqual([
      'ServiceRequest.subject',
      'ServiceRequest.requester',
    ]);
    expect(await systemHistoryTotal(t)).toBe(before);
  });

  it('refuses a referral that arrives already completed (422 business-rule)', async () => {
    t = await startTestApp();
    const bundle = readFixture<Bundle>('Bundle-referral-ankle-sprain.json');
    referralOf(bundle).resource.status = 'completed';
    const res = await request(t.app)
      .post('/fhir')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(bundle));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].details.coding[0].code).toBe('business-rule');
    expect((await search(t, 'Patient')).total).toBe(0);
  });
});
