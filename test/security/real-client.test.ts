import { MedplumClient, OperationOutcomeError } from '@medplum/core';
import type { Bundle, Patient, Practitioner, ServiceRequest } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signClientAssertion, tokenRequestBody } from '../../src/auth/client-keys.js';
import { referralServiceRequest } from '../http/http-helpers.js';
import { listenSecureApp, type ListeningSecureApp } from '../support/secure-app.js';

/**
 * Acceptance (issue 5, item 5): a real client. Over real HTTP to a listening server, the client
 * reads the SMART discovery document, signs a client assertion for the token endpoint it names,
 * gets a token with fetch, and hands it to MedplumClient (@medplum/core, as published) with
 * setAccessToken; MedplumClient then creates, searches and reads. The fetch wrapper only records
 * what went over the wire, to show the bearer token on every FHIR call.
 */
let t: ListeningSecureApp;

beforeAll(async () => {
  // No configured public origin: the token URL is the listening server's own, as a client sees it.
  t = await listenSecureApp({ publicOrigin: null });
});
afterAll(() => t.close());

interface Wire {
  url: string;
  authorization?: string;
  status: number;
}

/** What a backend service does: discovery, a signed assertion, POST to the token endpoint. */
async function getToken(clientId: string, scope?: string): Promise<string> {
  const discovery = (await (
    await fetch(`${t.origin}/.well-known/smart-configuration`, { signal: AbortSignal.timeout(5_000) })
  ).json()) as { token_endpoint: string };
  expect(discovery.token_endpoint).toBe(`${t.origin}/auth/token`);
  const privateJwk = t.clientKeys.get(clientId)?.privateJwk;
  if (!privateJwk) throw new Error(`no key for ${clientId}`);
  const assertion = await signClientAssertion(clientId, privateJwk, discovery.token_endpoint);
  const res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    body: tokenRequestBody(assertion, scope),
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await res.json()) as { access_token?: string; token_type?: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.token_type).toBe('bearer');
  return body.access_token as string;
}

function client(wire: Wire[]): MedplumClient {
  return new MedplumClient({
    baseUrl: `${t.origin}/`,
    fhirUrlPath: 'fhir',
    cacheTime: 0,
    // The token is ours, not Medplum's OAuth flow: no refresh attempts around its expiry.
    refreshGracePeriod: 0,
    fetch: async (url: string, init?: RequestInit) => {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
      const headers = new Headers(init?.headers);
      wire.push({ url, authorization: headers.get('authorization') ?? undefined, status: res.status });
      return res;
    },
  });
}

describe('MedplumClient with a token from a client assertion', () => {
  it('a practice client creates, searches and reads', async () => {
    const wire: Wire[] = [];
    const medplum = client(wire);
    const token = await getToken('practice');
    medplum.setAccessToken(token);

    const patient = await medplum.createResource<Patient>({
      resourceType: 'Patient',
      identifier: [{ system: 'urn:example:mrn', value: `mrn-${crypto.randomUUID()}` }],
      name: [{ family: 'Kowalski', given: ['Anna'] }],
      birthDate: '1980-04-02',
    });
    const practitioner = await medplum.createResource<Practitioner>({
      resourceType: 'Practitioner',
      name: [{ family: 'Nowak', given: ['Piotr'] }],
    });
    const referral = await medplum.createResource<ServiceRequest>(
      referralServiceRequest({
        subject: `Patient/${patient.id}`,
        requester: `Practitioner/${practitioner.id}`,
      }),
    );
    expect(referral.id).toBeTruthy();

    const found: Bundle = await medplum.search('ServiceRequest', {
      subject: `Patient/${patient.id}`,
      _include: 'ServiceRequest:subject',
    });
    expect(found.entry?.map((e) => `${e.resource?.resourceType}/${e.resource?.id}`)).toEqual([
      `ServiceRequest/${referral.id}`,
      `Patient/${patient.id}`,
    ]);
    const read = await medplum.readResource('ServiceRequest', referral.id as string);
    expect(read.subject?.reference).toBe(`Patient/${patient.id}`);
    expect((await medplum.readResource('Patient', patient.id as string)).name?.[0]?.family).toBe('Kowalski');

    // Every FHIR call carried the bearer token.
    expect(wire.length).toBeGreaterThanOrEqual(6);
    for (const w of wire) expect(w.authorization, w.url).toBe(`Bearer ${token}`);
  });

  it('a referrer client works with its own data and cannot read the practice’s', async () => {
    const admin = client([]);
    admin.setAccessToken(await getToken('admin'));
    await admin.updateResource<Practitioner>({
      resourceType: 'Practitioner',
      id: 'dr-a',
      name: [{ family: 'Aalto' }],
    });
    const other = await admin.createResource<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Elsewhere' }],
    });

    const wire: Wire[] = [];
    const medplum = client(wire);
    medplum.setAccessToken(
      await getToken('referrer-a', 'system/Patient.crs system/ServiceRequest.crs system/Practitioner.r'),
    );
    const patient = await medplum.createResource<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Mine' }],
    });
    const referral = await medplum.createResource<ServiceRequest>(
      referralServiceRequest({ subject: `Patient/${patient.id}`, requester: 'Practitioner/dr-a' }),
    );
    const mine = await medplum.searchResources('ServiceRequest', { requester: 'Practitioner/dr-a' });
    expect(mine.map((r) => r.id)).toEqual([referral.id]);
    expect((await medplum.readResource('Practitioner', 'dr-a')).id).toBe('dr-a');
    const patients = await medplum.searchResources('Patient', { _count: '100' });
    expect(patients.map((p) => p.id)).toEqual([patient.id]);
    const refused = await medplum.readResource('Patient', other.id as string).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OperationOutcomeError);
    expect(wire.at(-1)?.status).toBe(404);
    // Outside its scopes: 403.
    const forbidden = await medplum
      .createResource({ resourceType: 'Observation', status: 'final', code: { text: 'x' } })
      .catch((err: unknown) => err);
    expect(forbidden).toBeInstanceOf(OperationOutcomeError);
    expect(wire.at(-1)?.status).toBe(403);
  });

  it('without a token MedplumClient gets 401 (an OperationOutcome)', async () => {
    const wire: Wire[] = [];
    const medplum = client(wire);
    const err = await medplum.search('Patient').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationOutcomeError);
    expect(wire.map((w) => w.status)).toContain(401);
    expect(wire.every((w) => w.authorization === undefined)).toBe(true);
  });
});
