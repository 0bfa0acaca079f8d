import type { CodeableConcept } from '@medplum/fhirtypes';
import type { FeedbackFact } from '../feedback.js';
import type { ReferralFact } from '../facts.js';
import { isoWeekOf, monthOf } from '../period.js';
import type { SourceIdentity } from '../referrer.js';

/**
 * Stratifiers: each gives every referral (and, for the referring source, every feedback response)
 * a stratum. Strata are reported in the order of their keys (months and weeks chronologically).
 */
export const ANALYTICS_SYSTEM = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-analytics';

export interface Stratum {
  key: string;
  value: CodeableConcept;
}

export interface Stratifier {
  ofReferral(fact: ReferralFact): Stratum;
  /** Undefined: feedback is not stratified this way (it is left out of the strata). */
  ofFeedback?(fact: FeedbackFact): Stratum;
  /** The stratum key alone (cheap: no value built), when it can be had without ofReferral. */
  keyOfReferral?(fact: ReferralFact): string;
  keyOfFeedback?(fact: FeedbackFact): string;
}

const NONE: Stratum = { key: '~none', value: { text: '(none)' } };

export function sourceStratum(source: SourceIdentity): Stratum {
  return {
    key: source.key,
    value: {
      coding: [{ system: source.system, code: source.code, display: source.display }],
      text: source.display,
    },
  };
}

function analytics(code: string, display: string): Stratum {
  return { key: code, value: { coding: [{ system: ANALYTICS_SYSTEM, code, display }], text: display } };
}

const STAGE_DISPLAY: Record<string, string> = {
  triage: 'Before acceptance (declined or cancelled at triage)',
  booking: 'Accepted, never booked',
  'first-visit': 'Booked, never seen',
  treatment: 'Seen, not discharged',
};

export const STRATIFIERS: Record<string, Stratifier> = {
  'referring-source': {
    ofReferral: (f) => sourceStratum(f.referrer),
    ofFeedback: (f) => sourceStratum(f.referrer),
    keyOfReferral: (f) => f.referrer.key,
    keyOfFeedback: (f) => f.referrer.key,
  },
  'referring-organization': {
    ofReferral: (f) => (f.referrer.organization ? sourceStratum(f.referrer.organization) : NONE),
  },
  month: { ofReferral: (f) => ({ key: monthOf(f.authoredMs), value: { text: monthOf(f.authoredMs) } }) },
  week: { ofReferral: (f) => ({ key: isoWeekOf(f.authoredMs), value: { text: isoWeekOf(f.authoredMs) } }) },
  'decline-reason': {
    ofReferral: (f) =>
      f.declineReason
        ? {
            key: f.declineReason.key,
            value: f.declineReason.code
              ? {
                  coding: [
                    {
                      ...(f.declineReason.system ? { system: f.declineReason.system } : {}),
                      code: f.declineReason.code,
                      display: f.declineReason.display,
                    },
                  ],
                  text: f.declineReason.display,
                }
              : { text: f.declineReason.display },
          }
        : NONE,
  },
  'drop-off-stage': {
    ofReferral: (f) =>
      f.state === 'dropped' && f.stage ? analytics(f.stage, STAGE_DISPLAY[f.stage] ?? f.stage) : NONE,
  },
  'drop-off-reason': {
    ofReferral: (f) =>
      f.state === 'dropped' && f.dropReason
        ? {
            key: f.dropReason.key,
            value: f.dropReason.code
              ? {
                  coding: [
                    {
                      ...(f.dropReason.system ? { system: f.dropReason.system } : {}),
                      code: f.dropReason.code,
                      display: f.dropReason.display,
                    },
                  ],
                  text: f.dropReason.display,
                }
              : { text: f.dropReason.display },
          }
        : NONE,
  },
};

export { STAGE_DISPLAY };
