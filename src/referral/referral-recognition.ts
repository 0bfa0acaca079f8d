import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CodeableConcept, Organization, Reference, ServiceRequest, ValueSet } from '@medplum/fhirtypes';
import { DEFAULT_PROFILES_DIR, PROFILES } from '../validation/profile-registry.js';
import { SNOMED } from './codes.js';

/**
 * Which ServiceRequest is a referral to the practice (issue 12). A patient record or a care plan
 * carries orders for other services (a food-pantry order, an X-ray, a lab test): those are stored
 * as ordinary resources, without an episode, a Task or the referral profile check. A ServiceRequest
 * is a referral to the practice when any of these holds:
 *
 * 1. it claims the referral profile in `meta.profile` (the sender says so);
 * 2. it is addressed to the practice: a `performer` is the practice Organization;
 * 3. it asks for physical therapy: a coding of `code` or `category` is in ValueSet pt-services
 *    (profiles/ValueSet-pt-services.json), or `performerType` is a physical therapist (NUCC
 *    225100000X, SNOMED CT 36682004), as BSeR and NHS BaRS address a referral to a kind of
 *    performer rather than a named one.
 *    See: https://hl7.org/fhir/us/bser/ and https://hl7.org/fhir/R4/servicerequest.html
 *
 * The generic SNOMED CT 3457005 *Patient referral* alone does not make it one: every referral, to
 * any service, carries it. A referral sent as a message ($process-message) or as the focus of a
 * sender's Task is recognised by the same rule (the message's Task is not stored).
 */
export const PHYSICAL_THERAPIST_TYPES: readonly { system: string; code: string }[] = [
  { system: 'http://nucc.org/provider-taxonomy', code: '225100000X' },
  { system: SNOMED, code: '36682004' },
];

/** `system|code` of every concept of ValueSet pt-services, read once. */
export const PT_SERVICE_CODES: ReadonlySet<string> = new Set(
  (
    JSON.parse(readFileSync(join(DEFAULT_PROFILES_DIR, 'ValueSet-pt-services.json'), 'utf8')) as ValueSet
  ).compose?.include.flatMap((inc) => (inc.concept ?? []).map((c) => `${inc.system}|${c.code}`)) ?? [],
);

export function isReferralToPractice(request: ServiceRequest, practice: Reference<Organization>): boolean {
  const profile = PROFILES.referralServiceRequest;
  if (request.meta?.profile?.some((p) => p === profile || p.startsWith(`${profile}|`))) return true;
  if (practice.reference && request.performer?.some((p) => p.reference === practice.reference)) {
    return true;
  }
  const concepts: (CodeableConcept | undefined)[] = [request.code, ...(request.category ?? [])];
  if (concepts.some((c) => c?.coding?.some((k) => PT_SERVICE_CODES.has(`${k.system}|${k.code}`)))) {
    return true;
  }
  return (
    request.performerType?.coding?.some((k) =>
      PHYSICAL_THERAPIST_TYPES.some((t) => t.system === k.system && t.code === k.code),
    ) ?? false
  );
}
