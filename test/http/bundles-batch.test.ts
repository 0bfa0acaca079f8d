import type { Bundle, Patient, ServiceRequest } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/test-app.js';
import {
  batch,
  create,
  createReferralParties,
  expectIntake,
  expectNothingWritten,
  expectOutcome,
  MRN_SYSTEM,
  patient,
  postBundle,
  referralServiceRequest,
  resourceCount,
  transaction,
  versionCount,
} from './http-helpers.js';

/** Batch Bundles, and Bundle envelopes this server refuses (https://hl7.org/fhir/R4/http.html#transaction). */

const mrn = (value: string) => [{ system: MRN_SYSTEM, value }];
const PT_UUID = 'urn:uuid:5f0e4a1c-2b3d-4c5e-8f90-0a1b2c3d4e5f';

describe('batch', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('processes entries independently: failures are reported per entry, the rest are written', async () => {
    const { patientRef, requesterRef } = await createReferralParties(t.app);
    const before = await versionCount(t.app);
    const res = await postBundle(
      t,
      batch([
        {
          resource: referralServiceRequest({ subject: patientRef, requester: requesterRef }),
          request: { method: 'POST', url: 'ServiceRequest' },
        },
        {
          resource: { resourceType: 'Patient', shoeSize: 42 } as Patient,
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: referralServiceRequest({ subject: PT_UUID, requester: requesterRef }),
          request: { method: 'POST', url: 'ServiceRequest' },
        },
        { request: { method: 'GET', url: patientRef } },
        { request: { method: 'GET', url: 'Patient/does-not-exist' } },
      ]),
    );
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.type).toBe('batch-response');
    expect(bundle.entry?.map((e) => e.response?.status)).toEqual([
      '201 Created',
      '400',
      '400',
      '200 OK',
      '404',
    ]);
    const codes = bundle.entry?.map((e) => e.response?.outcome?.issue?.[0]?.details?.coding?.[0]?.code);
    expect(codes).toEqual([
      undefined,
      'invalid-resource',
      'unresolved-reference',
      undefined,
      'resource-not-found',
    ]);
    expect(bundle.entry?.[1]?.response?.outcome?.issue?.[0]?.expression?.[0]).toMatch(/^Bundle\.entry\[1\]/);
    // The one referral written brought its EpisodeOfCare, its Task and the acknowledgement to the
    // referrer: four versions, nothing else.
    expect(await versionCount(t.app)).toBe(before + 4);
    expect(await resourceCount(t.app, 'ServiceRequest')).toBe(1);
    expect(await resourceCount(t.app, 'EpisodeOfCare')).toBe(1);
    expect(await resourceCount(t.app, 'Task')).toBe(1);
    await expectIntake(t.app, bundle.entry?.[0]?.resource as ServiceRequest);
  });

  it('runs searches inside a batch', async () => {
    await create(t.app, patient({ identifier: mrn('B-1') }));
    const res = await postBundle(
      t,
      batch([{ request: { method: 'GET', url: `Patient?identifier=${MRN_SYSTEM}|B-1` } }]),
    );
    expect(res.status).toBe(200);
    const searchset = (res.body as Bundle).entry?.[0]?.resource as Bundle;
    expect(searchset.type).toBe('searchset');
    expect(searchset.total).toBe(1);
  });
});

describe('Bundle envelope errors', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    await create(t.app, patient());
  });
  afterAll(() => t.close());

  const cases: [string, unknown, number, string, string][] = [
    ['a resource that is not a Bundle', patient(), 400, 'invalid', 'resource-type-mismatch'],
    [
      'a Bundle of type collection',
      { resourceType: 'Bundle', type: 'collection', entry: [] },
      400,
      'invalid',
      'invalid-bundle',
    ],
    [
      'entries that are not an array',
      { resourceType: 'Bundle', type: 'transaction', entry: {} },
      400,
      'invalid',
      'invalid-bundle',
    ],
    ['an entry without request', transaction([{ resource: patient() }]), 400, 'invalid', 'invalid-bundle'],
    [
      'an entry URL that is not a FHIR URL',
      transaction([{ resource: patient(), request: { method: 'POST', url: '../../etc/passwd' } }]),
      400,
      'invalid',
      'invalid-bundle',
    ],
    [
      'a POST entry without a resource',
      transaction([{ request: { method: 'POST', url: 'Patient' } }]),
      400,
      'invalid',
      'invalid-bundle',
    ],
    [
      'an ifNoneExist that is not a string',
      transaction([
        {
          resource: patient(),
          request: { method: 'POST', url: 'Patient', ifNoneExist: 5 as unknown as string },
        },
      ]),
      400,
      'invalid',
      'invalid-bundle',
    ],
    [
      'an ifMatch that is not a string',
      transaction([
        {
          resource: { ...patient(), id: 'p1' },
          request: { method: 'PUT', url: 'Patient/p1', ifMatch: {} as unknown as string },
        },
      ]),
      400,
      'invalid',
      'invalid-bundle',
    ],
    [
      'an entry for an unknown resource type',
      transaction([
        {
          resource: { resourceType: 'Referral' } as unknown as Patient,
          request: { method: 'POST', url: 'Referral' },
        },
      ]),
      404,
      'not-supported',
      'unknown-resource-type',
    ],
  ];

  it.each(cases)('rejects %s and writes nothing', async (_what, body, status, issueCode, code) => {
    const res = await expectNothingWritten(t.app, () => postBundle(t, body));
    expectOutcome(res, status, issueCode, code as Parameters<typeof expectOutcome>[3]);
  });

  it('answers an empty transaction with an empty transaction-response', async () => {
    // No entries means no `entry` at all: an empty JSON array is not valid FHIR
    // (https://hl7.org/fhir/R4/json.html), and `entry: []` is refused as invalid-resource.
    const res = await expectNothingWritten(t.app, () =>
      postBundle(t, { resourceType: 'Bundle', type: 'transaction' }),
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ resourceType: 'Bundle', type: 'transaction-response' });
  });
});
