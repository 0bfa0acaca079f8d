import { MedplumClient, OperationOutcomeError } from '@medplum/core';
import type { Bundle, Patient, Practitioner, ServiceRequest } from '@medplum/fhirtypes';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listenTestApp, type ListeningApp } from '../support/listen.js';

/**
 * Acceptance: a real FHIR client (MedplumClient from @medplum/core, as published) works unchanged
 * against a listening server: create, search with _include, read, update with If-Match, and a
 * transaction Bundle with urn:uuid references. Every call is real HTTP through Node's fetch; the
 * wrapper only records what went over the wire.
 */
const SNOMED = 'http://snomed.info/sct';

/**
 * A physical-therapy referral as the referral profile requires it, with the referrer's own
 * identifier (unique per call: the same identifier again would be a re-send).
 */
const referralRequest = (subject: string, requester: string): ServiceRequest => ({
  resourceType: 'ServiceRequest',
  identifier: [{ system: 'urn:example:referral', value: `ref-${crypto.randomUUID()}` }],
  status: 'active',
  intent: 'order',
  category: [{ coding: [{ system: SNOMED, code: '3457005', display: 'Patient referral' }] }],
  code: { coding: [{ system: SNOMED, code: '91251008', display: 'Physical therapy procedure' }] },
  subject: { reference: subject },
  requester: { reference: requester },
  authoredOn: '2024-03-05T09:30:00Z',
  reasonCode: [{ text: 'Low back pain' }],
});

interface Exchange {
  method: string;
  url: string;
  status: number;
  headers: Record<string, string>;
}

describe('MedplumClient against a listening server', () => {
  let t: ListeningApp;
  let medplum: MedplumClient;
  let wire: Exchange[];

  beforeAll(async () => {
    t = await listenTestApp();
    const recordingFetch = async (url: string, init?: RequestInit): Promise<Response> => {
      const res = await fetch(url, init);
      wire.push({
        method: init?.method ?? 'GET',
        url,
        status: res.status,
        headers: { ...(init?.headers as Record<string, string> | undefined) },
      });
      return res;
    };
    medplum = new MedplumClient({
      baseUrl: `${t.origin}/`,
      fhirUrlPath: 'fhir',
      fetch: recordingFetch,
      // Every read goes to the server rather than the client's resource cache.
      cacheTime: 0,
    });
  });
  afterAll(() => t.close());
  beforeEach(() => {
    wire = [];
  });

  const seedReferral = async (): Promise<{
    patient: Patient;
    practitioner: Practitioner;
    referral: ServiceRequest;
  }> => {
    const patient = await medplum.createResource<Patient>({
      resourceType: 'Patient',
      identifier: [{ system: 'urn:example:mrn', value: `mrn-${crypto.randomUUID()}` }],
      name: [{ family: 'Kowalski', given: ['Anna'] }],
      birthDate: '1980-04-02',
    });
    const practitioner = await medplum.createResource<Practitioner>({
      resourceType: 'Practitioner',
      name: [{ family: 'Jansen', prefix: ['Dr.'] }],
    });
    const referral = await medplum.createResource<ServiceRequest>(
      referralRequest(`Patient/${patient.id}`, `Practitioner/${practitioner.id}`),
    );
    return { patient, practitioner, referral };
  };

  it('talks to the server without any login or token refresh', async () => {
    await medplum.createResource<Patient>({ resourceType: 'Patient', name: [{ family: 'NoAuth' }] });
    expect(wire.map((w) => `${w.method} ${new URL(w.url).pathname}`)).toEqual(['POST /fhir/Patient']);
    expect(wire[0]?.status).toBe(201);
    expect(wire[0]?.headers.Authorization).toBeUndefined();
  });

  it('creates resources and gets back server-assigned ids and version 1', async () => {
    const { patient, referral } = await seedReferral();
    expect(patient.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(patient.meta?.versionId).toBe('1');
    expect(patient.meta?.lastUpdated).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(referral.subject?.reference).toBe(`Patient/${patient.id}`);
    expect(wire.map((w) => w.status)).toEqual([201, 201, 201]);
  });

  it('searches with _include and receives the matches plus the included subject and requester', async () => {
    const { patient, practitioner, referral } = await seedReferral();
    const bundle = await medplum.search(
      'ServiceRequest',
      new URLSearchParams([
        ['subject', `Patient/${patient.id}`],
        ['_include', 'ServiceRequest:subject'],
        ['_include', 'ServiceRequest:requester'],
      ]),
    );
    expect(bundle.type).toBe('searchset');
    expect(bundle.total).toBe(1);
    const byMode = (mode: string): string[] =>
      (bundle.entry ?? [])
        .filter((e) => e.search?.mode === mode)
        .map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);
    expect(byMode('match')).toEqual([`ServiceRequest/${referral.id}`]);
    expect(byMode('include').sort()).toEqual(
      [`Patient/${patient.id}`, `Practitioner/${practitioner.id}`].sort(),
    );

    // searchResources flattens every entry (matches, then includes), with the Bundle alongside.
    const resources = await medplum.searchResources('ServiceRequest', {
      subject: `Patient/${patient.id}`,
      _include: 'ServiceRequest:subject',
    });
    expect(resources.map((r) => `${r.resourceType}/${r.id}`)).toEqual([
      `ServiceRequest/${referral.id}`,
      `Patient/${patient.id}`,
    ]);
    expect(resources.bundle.entry?.map((e) => e.search?.mode)).toEqual(['match', 'include']);
  });

  it('reads a resource back exactly as created', async () => {
    const { patient } = await seedReferral();
    wire = [];
    const read = await medplum.readResource('Patient', patient.id as string);
    expect(read).toEqual(patient);
    expect(wire.map((w) => `${w.method} ${new URL(w.url).pathname} ${w.status}`)).toEqual([
      `GET /fhir/Patient/${patient.id} 200`,
    ]);
  });

  it('updates with If-Match: the current version succeeds, a stale one is refused with 412', async () => {
    const { patient } = await seedReferral();
    const updated = await medplum.updateResource<Patient>(
      { ...patient, gender: 'female' },
      { headers: { 'If-Match': `W/"${patient.meta?.versionId}"` } },
    );
    expect(updated.meta?.versionId).toBe('2');
    expect(updated.gender).toBe('female');
    expect(wire.at(-1)?.headers['If-Match']).toBe('W/"1"');
    expect(wire.at(-1)?.status).toBe(200);

    const stale = medplum.updateResource<Patient>(
      { ...patient, gender: 'male' },
      { headers: { 'If-Match': 'W/"1"' } },
    );
    const error = await stale.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(OperationOutcomeError);
    const outcome = (error as OperationOutcomeError).outcome;
    expect(outcome.issue?.[0]?.code).toBe('conflict');
    expect(outcome.issue?.[0]?.details?.coding?.[0]?.code).toBe('precondition-failed');
    expect(wire.at(-1)?.status).toBe(412);

    const current = await medplum.readResource('Patient', patient.id as string);
    expect(current.meta?.versionId).toBe('2');
    expect(current.gender).toBe('female');
    const history = await medplum.readHistory('Patient', patient.id as string);
    expect(history.entry?.map((e) => e.resource?.meta?.versionId)).toEqual(['2', '1']);
  });

  it('posts a transaction whose urn:uuid references come back rewritten to the assigned ids', async () => {
    const mrn = `mrn-${crypto.randomUUID()}`;
    const patientUrn = `urn:uuid:${crypto.randomUUID()}`;
    const practitionerUrn = `urn:uuid:${crypto.randomUUID()}`;
    const transaction = (): Bundle => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: patientUrn,
          resource: {
            resourceType: 'Patient',
            identifier: [{ system: 'urn:example:mrn', value: mrn }],
            name: [{ family: 'Bakker' }],
          },
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:example:mrn|${mrn}` },
        },
        {
          fullUrl: practitionerUrn,
          resource: { resourceType: 'Practitioner', name: [{ family: 'de Vries' }] },
          request: { method: 'POST', url: 'Practitioner' },
        },
        {
          // A new referral each time (its own identifier), for the same patient.
          resource: referralRequest(patientUrn, practitionerUrn),
          request: { method: 'POST', url: 'ServiceRequest' },
        },
      ],
    });

    const response = await medplum.executeBatch(transaction());
    expect(response.type).toBe('transaction-response');
    expect(response.entry).toHaveLength(3);
    expect(response.entry?.map((e) => e.response?.status)).toEqual([
      '201 Created',
      '201 Created',
      '201 Created',
    ]);
    const [patientEntry, practitionerEntry, referralEntry] = response.entry ?? [];
    const patientId = patientEntry?.resource?.id as string;
    const practitionerId = practitionerEntry?.resource?.id as string;
    const referralId = referralEntry?.resource?.id as string;
    expect(patientEntry?.response?.location).toBe(`Patient/${patientId}/_history/1`);
    expect(referralEntry?.response?.etag).toBe('W/"1"');

    const referral = await medplum.readResource('ServiceRequest', referralId);
    expect(referral.subject?.reference).toBe(`Patient/${patientId}`);
    expect(referral.requester?.reference).toBe(`Practitioner/${practitionerId}`);
    const patient = await medplum.readResource('Patient', patientId);
    expect(patient.identifier?.[0]?.value).toBe(mrn);

    // The referral came with its fulfilment Task, for the same patient.
    const tasks = await medplum.searchResources('Task', { focus: `ServiceRequest/${referralId}` });
    expect(tasks.map((task) => [task.status, task.for?.reference])).toEqual([
      ['received', `Patient/${patientId}`],
    ]);

    // The same transaction again (with a new referral): ifNoneExist finds the Patient instead of
    // creating a second one.
    const again = await medplum.executeBatch(transaction());
    expect(again.entry?.[0]?.response?.status).toBe('200 OK');
    expect(again.entry?.[0]?.resource?.id).toBe(patientId);
    expect(again.entry?.[2]?.response?.status).toBe('201 Created');
    expect(again.entry?.[2]?.resource?.id).not.toBe(referralId);
    const second = await medplum.readResource('ServiceRequest', again.entry?.[2]?.resource?.id as string);
    expect(second.subject?.reference).toBe(`Patient/${patientId}`);
    const patients = await medplum.searchResources('Patient', { identifier: `urn:example:mrn|${mrn}` });
    expect(patients.map((p) => p.id)).toEqual([patientId]);
  });
});
