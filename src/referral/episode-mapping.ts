import type {
  Condition,
  EpisodeOfCare,
  Organization,
  Patient,
  Reference,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import { PROFILES } from '../validation/profile-registry.js';
import { businessStatus, TASK_CODE_SYSTEM } from './codes.js';

/**
 * Pure mappings from an accepted-for-intake referral to the practice's internal records: an
 * EpisodeOfCare (https://hl7.org/fhir/R4/episodeofcare.html) and the workflow Task that tracks it
 * (the fulfilment Task of the BSeR / 360X referral pattern). No I/O: ids and time are injected.
 */
export interface IntakeContext {
  serviceRequestId: string;
  practice: Reference<Organization>;
  now: string;
}

export function toEpisodeOfCare(referral: ServiceRequest, context: IntakeContext): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    meta: { profile: [PROFILES.episodeOfCare] },
    identifier: referral.identifier?.map((i) => ({ ...i, use: 'secondary' as const })),
    status: 'waitlist',
    // The current status is kept in statusHistory too, with an open period, so the history alone
    // gives every date the referral-program measures need (referral → first visit → discharge).
    statusHistory: [{ status: 'waitlist', period: { start: context.now } }],
    type: referral.code ? [referral.code] : undefined,
    diagnosis: referral.reasonReference
      ?.filter((r) => r.reference?.startsWith('Condition/'))
      .map((condition, i) => ({ condition: condition as Reference<Condition>, rank: i + 1 })),
    patient: referral.subject as Reference<Patient>,
    managingOrganization: context.practice,
    period: { start: context.now },
    referralRequest: [{ reference: `ServiceRequest/${context.serviceRequestId}` }],
  };
}

export function toReferralTask(referral: ServiceRequest, context: IntakeContext): Task {
  return {
    resourceType: 'Task',
    meta: { profile: [PROFILES.referralTask] },
    identifier: referral.identifier?.map((i) => ({ ...i, use: 'secondary' as const })),
    status: 'received',
    businessStatus: businessStatus('awaiting-triage'),
    intent: 'order',
    priority: referral.priority,
    code: { coding: [{ system: TASK_CODE_SYSTEM, code: 'fulfill', display: 'Fulfill the focal request' }] },
    description: referral.code?.text ?? referral.code?.coding?.[0]?.display,
    focus: { reference: `ServiceRequest/${context.serviceRequestId}` },
    for: referral.subject,
    authoredOn: context.now,
    lastModified: context.now,
    requester: referral.requester,
    owner: context.practice,
  };
}

export function stripUndefined<T extends object>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
