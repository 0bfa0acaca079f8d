import { PROFILE_BASE_URL } from '../fhir/canonical-urls.js';
import type { ProgressEventCode } from './progress-types.js';

/** Code systems the progress communications read and write; each is defined in profiles/. */
export const ENCOUNTER_TYPE_SYSTEM = `${PROFILE_BASE_URL}/CodeSystem/pt-encounter-type`;
export const OUTCOME_MEASURE_SYSTEM = `${PROFILE_BASE_URL}/CodeSystem/pt-outcome-measure`;
export const LOINC = 'http://loinc.org';

/** Receivers deduplicate on this identifier (profiles/source/pt-progress-communication.json). */
export const COMMUNICATION_ID_SYSTEM = 'https://ptreferral.dev/fhir/communication-id';

export type EncounterType = 'initial-evaluation' | 're-evaluation' | 'treatment' | 'discharge';

/** Displays of profiles/CodeSystem-pt-referral-event.json (a test keeps the two the same). */
export const EVENT_DISPLAY: Record<ProgressEventCode, string> = {
  'referral-received': 'Referral received',
  'referral-accepted': 'Referral accepted',
  'referral-declined': 'Referral declined',
  'appointment-booked': 'First appointment booked',
  'no-show': 'No-show',
  'initial-evaluation': 'Initial evaluation',
  're-evaluation': 'Re-evaluation',
  'progress-report': 'Progress report',
  discharge: 'Discharge',
  cancellation: 'Referral cancelled',
};
