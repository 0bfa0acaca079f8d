import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, BundleEntry, MessageHeader, Resource, ServiceRequest } from '@medplum/fhirtypes';

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

export function invalidExpectations(): [string, InvalidExpectation][] {
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
