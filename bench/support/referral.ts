import type { Patient, Practitioner, ServiceRequest } from '@medplum/fhirtypes';

/**
 * Realistic physical-therapy referrals for the benchmarks. Deterministic in (index, total): the
 * same index always yields the same referral, so a benchmark can recompute which subject,
 * identifier or code a stored row carries and query for it without reading the database.
 */

export const IDENTIFIER_SYSTEM = 'https://referrals.example.org/fhir/sid/referral-number';
export const SNOMED = 'http://snomed.info/sct';

/** PT procedure codes a referral asks for: the service's ValueSet pt-services (profiles/). */
export const PT_CODES: readonly { code: string; display: string }[] = [
  { code: '91251008', display: 'Physical therapy procedure' },
  { code: '229065009', display: 'Exercise therapy' },
  { code: '386053000', display: 'Evaluation procedure' },
  { code: '229070002', display: 'Stretching exercises' },
];

const REASONS: readonly { code: string; display: string }[] = [
  { code: '279039007', display: 'Low back pain' },
  { code: '81680005', display: 'Neck pain' },
  { code: '239873007', display: 'Osteoarthritis of knee' },
  { code: '44465007', display: 'Sprain of ankle' },
  { code: '202855006', display: 'Lateral epicondylitis' },
  { code: '230690007', display: 'Cerebrovascular accident' },
];

/** Status mix of a referral inbox: most open, a third done, a few withdrawn. */
const STATUSES: readonly ServiceRequest['status'][] = [
  'active',
  'active',
  'active',
  'completed',
  'completed',
  'revoked',
];

export const PRACTITIONER_COUNT = 200;
/** authoredOn spreads over the two years before this instant. */
export const AUTHORED_END_MS = Date.UTC(2025, 0, 1);
export const AUTHORED_SPAN_MS = 2 * 365 * 24 * 3600 * 1000;

/** One patient per ~5 referrals, as in the acceptance criterion. */
export function patientCount(total: number): number {
  return Math.max(1, Math.floor(total / 5));
}

/** A cheap, well-mixed integer hash (mulberry32 step): reproducible pseudo-randomness per index. */
export function mix(seed: number): number {
  let t = (seed + 0x6d2b79f5) | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

export interface ReferralFacts {
  identifier: string;
  subject: string;
  requester: string;
  status: NonNullable<ServiceRequest['status']>;
  code: string;
  authoredOn: string;
}

/** The searchable facts of referral `index` out of `total`, without building the resource. */
export function referralFacts(index: number, total: number, identifierPrefix = 'REF'): ReferralFacts {
  const h = mix(index);
  return {
    identifier: `${identifierPrefix}-${String(index).padStart(8, '0')}`,
    subject: `Patient/pt-${mix(h) % patientCount(total)}`,
    requester: `Practitioner/pr-${h % PRACTITIONER_COUNT}`,
    status: STATUSES[(h >>> 8) % STATUSES.length] ?? 'active',
    code: (PT_CODES[(h >>> 12) % PT_CODES.length] ?? PT_CODES[0])!.code,
    authoredOn: new Date(AUTHORED_END_MS - (mix(h + 1) % (AUTHORED_SPAN_MS / 1000)) * 1000).toISOString(),
  };
}

/** A complete ServiceRequest (~1.5 kB of JSON) as a referring EHR would send it. */
export function buildReferral(index: number, total: number, identifierPrefix = 'REF'): ServiceRequest {
  const f = referralFacts(index, total, identifierPrefix);
  const h = mix(index + 7);
  const code = PT_CODES.find((c) => c.code === f.code) ?? PT_CODES[0]!;
  const reason = REASONS[h % REASONS.length] ?? REASONS[0]!;
  return {
    resourceType: 'ServiceRequest',
    identifier: [{ use: 'official', system: IDENTIFIER_SYSTEM, value: f.identifier }],
    status: f.status,
    intent: 'order',
    category: [
      {
        coding: [{ system: SNOMED, code: '3457005', display: 'Patient referral' }],
      },
    ],
    priority: h % 10 === 0 ? 'urgent' : 'routine',
    code: { coding: [{ system: SNOMED, code: code.code, display: code.display }], text: code.display },
    quantityQuantity: { value: 6 + (h % 7), unit: 'sessions' },
    subject: { reference: f.subject },
    occurrenceTiming: { repeat: { frequency: 2, period: 1, periodUnit: 'wk', count: 6 + (h % 7) } },
    authoredOn: f.authoredOn,
    requester: { reference: f.requester },
    performerType: {
      coding: [{ system: SNOMED, code: '36682004', display: 'Physiotherapist' }],
    },
    reasonCode: [{ coding: [{ system: SNOMED, code: reason.code, display: reason.display }] }],
    note: [
      {
        text: `Referred for ${code.display.toLowerCase()} after ${reason.display.toLowerCase()}. Please assess and treat; send a progress note after the initial evaluation.`,
      },
    ],
    patientInstruction: 'Wear comfortable clothing and bring any imaging reports to the first visit.',
  };
}

const GIVEN = ['Anna', 'Ben', 'Chloe', 'David', 'Emma', 'Farid', 'Grace', 'Hugo', 'Ines', 'Jonas'];
const FAMILY = ['Meyer', 'Okafor', 'Novak', 'Garcia', 'Lindqvist', 'Tanaka', 'Dubois', 'Rossi'];

/** The Patient a referral's subject points at (`Patient/<id>`). */
export function buildPatient(id: string): Patient {
  const h = mix(hashString(id));
  return {
    resourceType: 'Patient',
    id,
    identifier: [{ system: 'https://referrals.example.org/fhir/sid/mrn', value: `MRN-${id}` }],
    name: [
      { family: FAMILY[h % FAMILY.length] ?? 'Meyer', given: [GIVEN[(h >>> 4) % GIVEN.length] ?? 'Anna'] },
    ],
    gender: h % 2 === 0 ? 'female' : 'male',
    birthDate: `${1940 + (h % 65)}-${String(1 + ((h >>> 8) % 12)).padStart(2, '0')}-${String(1 + ((h >>> 12) % 28)).padStart(2, '0')}`,
  };
}

/** The referring Practitioner a referral's requester points at (`Practitioner/<id>`). */
export function buildPractitioner(id: string): Practitioner {
  const h = mix(hashString(id));
  return {
    resourceType: 'Practitioner',
    id,
    identifier: [
      { system: 'http://hl7.org/fhir/sid/us-npi', value: String(1_000_000_000 + (h % 999_999_999)) },
    ],
    name: [
      {
        family: FAMILY[h % FAMILY.length] ?? 'Meyer',
        given: [GIVEN[(h >>> 4) % GIVEN.length] ?? 'Anna'],
        prefix: ['Dr.'],
      },
    ],
  };
}

function hashString(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) {
    h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  }
  return h;
}
