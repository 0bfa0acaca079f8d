import { PROFILE_BASE_URL } from '../validation/profile-registry.js';

/** Code systems and codes the referral workflow writes; defined in profiles/. */
export const SNOMED = 'http://snomed.info/sct';
export const PATIENT_REFERRAL = { system: SNOMED, code: '3457005', display: 'Patient referral' };
export const TASK_CODE_SYSTEM = 'http://hl7.org/fhir/CodeSystem/task-code';
export const BUSINESS_STATUS_SYSTEM = `${PROFILE_BASE_URL}/CodeSystem/pt-referral-business-status`;
export const DECLINE_REASON_SYSTEM = `${PROFILE_BASE_URL}/CodeSystem/pt-referral-decline-reason`;
export { EVENT_SYSTEM } from '../fhir/canonical-urls.js';

export type BusinessStatus =
  | 'awaiting-triage'
  | 'accepted-awaiting-booking'
  | 'appointment-booked'
  | 'first-visit-attended'
  | 'evaluation-done'
  | 'in-treatment'
  | 'no-show'
  | 'discharged'
  | 'declined'
  | 'cancelled';

const BUSINESS_STATUS_DISPLAY: Record<BusinessStatus, string> = {
  'awaiting-triage': 'Awaiting triage',
  'accepted-awaiting-booking': 'Accepted, awaiting booking',
  'appointment-booked': 'Appointment booked',
  'first-visit-attended': 'First visit attended',
  'evaluation-done': 'Evaluation done',
  'in-treatment': 'In treatment',
  'no-show': 'No-show',
  discharged: 'Discharged',
  declined: 'Declined',
  cancelled: 'Cancelled',
};

export function businessStatus(code: BusinessStatus): {
  coding: { system: string; code: string; display: string }[];
  text: string;
} {
  const display = BUSINESS_STATUS_DISPLAY[code];
  return { coding: [{ system: BUSINESS_STATUS_SYSTEM, code, display }], text: display };
}

export function businessStatusOf(task: {
  businessStatus?: { coding?: { system?: string; code?: string }[] };
}): BusinessStatus | undefined {
  return task.businessStatus?.coding?.find((c) => c.system === BUSINESS_STATUS_SYSTEM)?.code as
    BusinessStatus | undefined;
}

/** Displays of profiles/CodeSystem-pt-referral-decline-reason.json (kept in step by a test). */
export const DECLINE_REASON_DISPLAY: Record<string, string> = {
  'outside-scope': "Outside the practice's scope",
  'no-capacity': 'No capacity',
  'insurance-not-accepted': 'Insurance not accepted',
  'insufficient-information': 'Insufficient information',
  'patient-declined': 'Patient declined',
  'patient-unreachable': 'Patient unreachable',
  'duplicate-referral': 'Duplicate referral',
  'clinical-contraindication': 'Clinical contraindication',
};
