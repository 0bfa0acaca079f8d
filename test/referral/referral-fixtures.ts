import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, BundleEntry, MessageHeader, Resource, ServiceRequest } from '@medplum/fhirtypes';
import request from 'supertest';
import { expect } from 'vitest';
import { FHIR_JSON, type TestApp } from '../support/test-app.js';

/** The project's own referral scenarios (fixtures/), read-only. */
export const FIXTURES_DIR = new URL('../../fixtures/', import.meta.url).pathname;

export function referralBundleNames(): string[] {
  return readdirSync(FIXTURES_DIR)
    .filter((f) => f.startsWith('Bundle-referral-') && f.endsWith('.json'))
    .sort();
}

export function readFixture<T = Resource>(name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES_DIR, name), 'utf8')) as T;
}

export interface InvalidExpectation {
  status: number;
  code: string;
  expression: string;
  why: string;
}

/**
 * Fixtures of fixtures/invalid/ that the referral profile refused before issue 12 and now accepts,
 * because real senders write them so: intent plan (NHS BaRS), a code outside the PT services
 * (bound extensibly now; an out-of-scope referral is declined in triage), no identifier or one
 * without a system (recommended, no longer required).
 */
export const RELAXED_BY_ISSUE_12: Record<string, string> = {
  'Bundle-servicerequest-code-colonoscopy.json': 'code is bound extensibly',
  'Bundle-servicerequest-identifier-no-system.json': 'identifier is recommended (ptr-3 a warning)',
  'Bundle-servicerequest-intent-plan.json': 'intent order | original-order | plan',
  'ServiceRequest-code-colonoscopy.json': 'code is bound extensibly',
  'ServiceRequest-identifier-no-system.json': 'identifier is recommended (ptr-3 a warning)',
  'ServiceRequest-intent-plan.json': 'intent order | original-order | plan',
  'ServiceRequest-no-identifier.json': 'identifier is 0..*',
};

export function invalidExpectations(): [string, InvalidExpectation][] {
  return allInvalidExpectations().filter(([name]) => !(name in RELAXED_BY_ISSUE_12));
}

function allInvalidExpectations(): [string, InvalidExpectation][] {
  return Object.entries(
    JSON.parse(readFileSync(join(FIXTURES_DIR, 'invalid', 'expected.json'), 'utf8')) as Record<
      string,
      InvalidExpectation
    >,
  ).sort(([a], [b]) => a.localeCompare(b));
}

export function referralOf(bundle: Bundle): BundleEntry & { resource: ServiceRequest } {
  const entry = bundle.entry?.find((e) => e.resource?.resourceType === 'ServiceRequest');
  if (!entry) throw new Error('fixture without a ServiceRequest');
  return entry as BundleEntry & { resource: ServiceRequest };
}

/** The same referral as a FHIR message (as the BSeR guide sends it): MessageHeader first, focus the ServiceRequest. */
export function toMessage(bundle: Bundle): Bundle {
  const referral = referralOf(bundle);
  const header: MessageHeader = {
    resourceType: 'MessageHeader',
    id: randomUUID(),
    eventCoding: {
      system: 'http://hl7.org/fhir/us/bser/CodeSystem/bser-event-codes',
      code: 'bser-referral-request',
    },
    source: { endpoint: 'https://ehr.example.org/fhir' },
    focus: [{ reference: referral.fullUrl }],
  };
  return {
    resourceType: 'Bundle',
    type: 'message',
    timestamp: '2026-11-02T09:00:00Z',
    entry: [
      { fullUrl: `urn:uuid:${header.id}`, resource: header },
      ...(bundle.entry ?? []).map((e) => ({ fullUrl: e.fullUrl, resource: e.resource })),
    ],
  };
}

export type Channel = 'transaction' | 'single ServiceRequest' | 'message';

export async function search<T>(t: TestApp, query: string): Promise<{ total: number; resources: T[] }> {
  const res = await request(t.app).get(`/fhir/${query}`);
  expect(res.status).toBe(200);
  return { total: res.body.total, resources: (res.body.entry ?? []).map((e: { resource: T }) => e.resource) };
}

export async function systemHistoryTotal(t: TestApp): Promise<number> {
  return (await request(t.app).get('/fhir/_history?_count=0')).body.total;
}

/** Posts a fixture referral through one intake channel; answers the referral's id. */
export async function submit(t: TestApp, bundle: Bundle, channel: Channel): Promise<string> {
  if (channel === 'transaction') {
    const res = await request(t.app)
      .post('/fhir')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(bundle));
    expect(res.status, JSON.stringify(res.body.issue)).toBe(200);
    const index = bundle.entry?.findIndex((e) => e.resource?.resourceType === 'ServiceRequest') as number;
    expect(res.body.entry[index].response.status).toBe('201 Created');
    return res.body.entry[index].resource.id;
  }
  if (channel === 'message') {
    const res = await request(t.app)
      .post('/fhir/$process-message')
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(toMessage(bundle)));
    expect(res.status, JSON.stringify(res.body.issue)).toBe(200);
    expect(res.body.type).toBe('message');
    const header = res.body.entry[0].resource;
    expect(header.response.code).toBe('ok');
    return header.focus[0].reference.split('/')[1];
  }
  // Everything but the referral first (as the referrer's setup), then the ServiceRequest alone.
  const referral = referralOf(bundle);
  const setup: Bundle = { ...bundle, entry: bundle.entry?.filter((e) => e !== referral) };
  const created = await request(t.app)
    .post('/fhir')
    .set('content-type', FHIR_JSON)
    .send(JSON.stringify(setup));
  expect(created.status, JSON.stringify(created.body.issue)).toBe(200);
  const ids = new Map<string, string>();
  setup.entry?.forEach((e, i) =>
    ids.set(e.fullUrl as string, created.body.entry[i].response.location.split('/_history')[0]),
  );
  const single = JSON.parse(JSON.stringify(referral.resource), (key, value) =>
    key === 'reference' && ids.has(value) ? ids.get(value) : value,
  ) as ServiceRequest;
  const res = await request(t.app)
    .post('/fhir/ServiceRequest')
    .set('content-type', FHIR_JSON)
    .send(JSON.stringify(single));
  expect(res.status, JSON.stringify(res.body.issue)).toBe(201);
  return res.body.id;
}
