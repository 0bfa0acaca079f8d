import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type {
  Appointment,
  CarePlan,
  CodeableConcept,
  Encounter,
  EpisodeOfCare,
  Observation,
  Organization,
  Patient,
  Practitioner,
  PractitionerRole,
  QuestionnaireResponse,
  Reference,
  Resource,
  ServiceRequest,
  Task,
  TimingRepeat,
} from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../src/fhir/definitions.js';
import { OUTCOME_MEASURES, type OutcomeMeasureId } from '../src/progress/outcome-measures.js';
import type { FhirStore } from '../src/store/fhir-store.js';
import { openStore } from '../src/store/open-store.js';

/**
 * A year (by default) of a physical-therapy practice's referrals, for the analytics tests, the
 * dashboard and the benchmark: ~20 referrers with skewed volumes (one referring physician sends
 * far more than the rest; some start or stop mid-year; the same physician appears under several
 * references and spellings), seasonality (busier January and autumn, quieter summer and
 * December, almost nothing at weekends), ~80% acceptance with coded decline reasons, lead times in
 * days (lognormal), ~10% no-shows, NPRS/LEFS/ODI/QuickDASH/PSFS/knee ROM at the initial evaluation
 * and discharge, plans of care, and feedback QuestionnaireResponses from some referrers.
 *
 * Each referral's whole story is simulated first and then written as the service would have
 * stored it at the data cut-off (`asOf`): later events are not written, so recent referrals are
 * still open. What the referral workflow would write is written the same way — the Task as one
 * version per workflow step (Task.lastModified at the step), the EpisodeOfCare with its
 * statusHistory, the ServiceRequest completed or revoked — but straight through the store
 * contract (as bench/load-service-requests.ts does), many resources per transaction, so a 100k
 * episode database loads in minutes. Deterministic in its options (seeded).
 *
 * CLI: tsx scripts/generate-analytics-dataset.ts <database file> [--referrals-per-year N]
 *      [--months N] [--start YYYY-MM-DD] [--seed N] [--referrers N]
 */
export interface DatasetOptions {
  seed?: number;
  /** First day (UTC) of the simulated period. */
  start?: string;
  months?: number;
  /** Expected referrals over 12 months; scaled to `months`. */
  referralsPerYear?: number;
  /** Referring sources: 20 hand-made identities, plus generated ones above 20. */
  referrers?: number;
  /** Data cut-off; default 14 days after the period. */
  asOf?: string;
}

export const DATASET_DEFAULTS = {
  seed: 20250101,
  start: '2025-01-01',
  months: 12,
  referralsPerYear: 1200,
  referrers: 20,
} as const;

export const PRACTICE = 'Organization/practice';
export const FEEDBACK_QUESTIONNAIRE = 'https://ptreferral.dev/fhir/Questionnaire/pt-referrer-feedback';
const NPI = 'http://hl7.org/fhir/sid/us-npi';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';
const BUSINESS = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-business-status';
const DECLINE = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-decline-reason';
const VISIT_TYPE = 'https://ptreferral.dev/fhir/CodeSystem/pt-encounter-type';
const DAY = 86_400_000;
const HOUR = 3_600_000;

// ---------------------------------------------------------------- randomness

/** mulberry32: small, fast, good enough for simulation; deterministic per seed. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  uniform(min: number, max: number): number {
    return min + this.next() * (max - min);
  }
  normal(mean: number, sd: number): number {
    const u = Math.max(this.next(), 1e-12);
    const v = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** Lognormal with the given median (days, say) and log-scale spread. */
  lognormal(median: number, sigma: number): number {
    return median * Math.exp(this.normal(0, sigma));
  }
  poisson(lambda: number): number {
    if (lambda > 30) return Math.max(0, Math.round(this.normal(lambda, Math.sqrt(lambda))));
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = this.next();
    while (p > limit) {
      k++;
      p *= this.next();
    }
    return k;
  }
  weighted<T>(items: readonly T[], weights: readonly number[]): T {
    const total = weights.reduce((a, b) => a + b, 0);
    let r = this.next() * total;
    for (let i = 0; i < items.length; i++) {
      r -= weights[i] as number;
      if (r < 0) return items[i] as T;
    }
    return items[items.length - 1] as T;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
}

// ---------------------------------------------------------------- the referrers

/** A valid NPI: 9 digits and the Luhn check digit over "80840" + them. */
export function npi(base: number): string {
  const payload = `80840${String(base).padStart(9, '0').slice(-9)}`;
  let sum = 0;
  for (let i = 0; i < payload.length; i++) {
    let d = Number(payload[payload.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return `${payload.slice(5)}${(10 - (sum % 10)) % 10}`;
}

type RequesterReference = Reference<Practitioner | PractitionerRole | Organization>;

export interface ReferrerPlan {
  /** A stable label for tests (not a FHIR id). */
  label: string;
  /** The references a referral from this source may carry, with their weights. */
  references: { reference: RequesterReference; weight: number }[];
  /** Relative referral volume. */
  weight: number;
  /** Months (0-based from start) during which the source refers; [from, to). */
  activeFrom: number;
  activeTo: number;
  /** Whether (and how much) the source answers the feedback questionnaire. */
  feedback?: { responses: number; communication: number; outcomes: number };
}

interface Directory {
  resources: Resource[];
  referrers: ReferrerPlan[];
  therapists: string[];
}

const ORGS: Organization[] = [
  {
    resourceType: 'Organization',
    id: 'org-lakeside-ortho',
    identifier: [{ system: NPI, value: npi(154_321_001) }],
    active: true,
    name: 'Lakeside Orthopedics',
  },
  {
    resourceType: 'Organization',
    id: 'org-northside-fm',
    identifier: [{ system: NPI, value: npi(154_321_002) }],
    active: true,
    name: 'Northside Family Medicine',
  },
  {
    resourceType: 'Organization',
    id: 'org-valley-spine',
    identifier: [{ system: NPI, value: npi(154_321_003) }],
    active: true,
    name: 'Valley Spine Center',
  },
  {
    resourceType: 'Organization',
    id: 'org-city-urgent-care',
    identifier: [{ system: 'https://referrals.example.org/fhir/sid/organization', value: 'CUC-001' }],
    active: true,
    name: 'City Urgent Care',
  },
  {
    resourceType: 'Organization',
    id: 'org-harbor-sports',
    active: true,
    name: 'Harbor Sports Medicine Clinic',
  },
];

interface PersonSpec {
  id: string;
  given: string[];
  family: string;
  npi?: number;
  text?: string;
  roleAt?: string;
}

/** The 20 hand-made referring sources, most prolific first. */
function handMadeDirectory(): Directory {
  const resources: Resource[] = [...ORGS];
  const practitioner = (p: PersonSpec): Practitioner => ({
    resourceType: 'Practitioner',
    id: p.id,
    ...(p.npi ? { identifier: [{ system: NPI, value: npi(p.npi) }] } : {}),
    active: true,
    name: [p.text ? { text: p.text } : { prefix: ['Dr.'], given: p.given, family: p.family }],
  });
  const role = (id: string, practitionerId: string, org: string): PractitionerRole => ({
    resourceType: 'PractitionerRole',
    id,
    active: true,
    practitioner: { reference: `Practitioner/${practitionerId}` },
    organization: { reference: `Organization/${org}` },
    code: [{ coding: [{ system: SNOMED, code: '309343006', display: 'Physician' }] }],
  });
  const ref = (reference: string, display?: string): RequesterReference => ({
    reference,
    ...(display ? { display } : {}),
  });
  const referrers: ReferrerPlan[] = [];
  const add = (
    label: string,
    references: [RequesterReference, number][],
    active: [number, number] = [0, 1000],
    feedback?: ReferrerPlan['feedback'],
  ): void => {
    referrers.push({
      label,
      references: references.map(([reference, weight]) => ({ reference, weight })),
      weight: 1 / Math.pow(referrers.length + 1, 1.05),
      activeFrom: active[0],
      activeTo: active[1],
      ...(feedback ? { feedback } : {}),
    });
  };
  const person = (p: PersonSpec): Practitioner => {
    const r = practitioner(p);
    resources.push(r);
    return r;
  };

  // 1. Mary Jones: one NPI, two Practitioner records (one spelled "Jones, Mary K. MD") and a role.
  person({ id: 'prac-jones', given: ['Mary'], family: 'Jones', npi: 123_456_789 });
  person({ id: 'prac-jones-2', given: [], family: '', npi: 123_456_789, text: 'Jones, Mary K. MD' });
  resources.push(role('role-jones-lakeside', 'prac-jones', 'org-lakeside-ortho'));
  add(
    'jones',
    [
      [ref('Practitioner/prac-jones', 'Dr. Mary Jones'), 5],
      [ref('Practitioner/prac-jones-2', 'Jones, Mary K. MD'), 2],
      [ref('PractitionerRole/role-jones-lakeside', 'Mary Jones (Lakeside Orthopedics)'), 3],
    ],
    [0, 1000],
    { responses: 4, communication: 4.4, outcomes: 4.5 },
  );
  // 2. Rahul Patel: through his role at Lakeside, sometimes directly.
  person({ id: 'prac-patel', given: ['Rahul'], family: 'Patel', npi: 123_456_790 });
  resources.push(role('role-patel-lakeside', 'prac-patel', 'org-lakeside-ortho'));
  add(
    'patel',
    [
      [ref('PractitionerRole/role-patel-lakeside'), 4],
      [ref('Practitioner/prac-patel', 'Rahul Patel MD'), 1],
    ],
    [0, 1000],
    { responses: 3, communication: 3.6, outcomes: 4.2 },
  );
  // 3-4. Family physicians at Northside.
  person({ id: 'prac-garcia', given: ['Sofia'], family: 'Garcia', npi: 123_456_791 });
  add('garcia', [[ref('Practitioner/prac-garcia'), 1]], [0, 1000], {
    responses: 2,
    communication: 4.8,
    outcomes: 4.1,
  });
  person({ id: 'prac-kim', given: ['David'], family: 'Kim', npi: 123_456_792 });
  resources.push(role('role-kim-northside', 'prac-kim', 'org-northside-fm'));
  add('kim', [[ref('PractitionerRole/role-kim-northside'), 1]]);
  person({ id: 'prac-nguyen', given: ['Emily'], family: 'Nguyen', npi: 123_456_793 });
  resources.push(role('role-nguyen-northside', 'prac-nguyen', 'org-northside-fm'));
  add(
    'nguyen',
    [
      [ref('PractitionerRole/role-nguyen-northside'), 2],
      [ref('Practitioner/prac-nguyen'), 1],
    ],
    [0, 1000],
    { responses: 2, communication: 3.2, outcomes: 3.8 },
  );
  // 6. Amy Chen: no NPI on record; two Practitioner records, matched by name.
  person({ id: 'prac-chen', given: ['Amy'], family: 'Chen' });
  person({ id: 'prac-chen-b', given: [], family: '', text: 'Chen, Amy B., MD' });
  add('chen', [
    [ref('Practitioner/prac-chen'), 1],
    [ref('Practitioner/prac-chen-b'), 1],
  ]);
  person({ id: 'prac-obrien', given: ['James'], family: "O'Brien", npi: 123_456_794 });
  add('obrien', [[ref('Practitioner/prac-obrien'), 1]]);
  // 8-9. Spine surgeons at Valley Spine.
  person({ id: 'prac-schmidt', given: ['Laura'], family: 'Schmidt', npi: 123_456_795 });
  resources.push(role('role-schmidt-valley', 'prac-schmidt', 'org-valley-spine'));
  add('schmidt', [[ref('PractitionerRole/role-schmidt-valley'), 1]], [0, 1000], {
    responses: 1,
    communication: 2.8,
    outcomes: 3.9,
  });
  person({ id: 'prac-brown', given: ['Michael'], family: 'Brown', npi: 123_456_796 });
  resources.push(role('role-brown-valley', 'prac-brown', 'org-valley-spine'));
  add('brown', [[ref('PractitionerRole/role-brown-valley'), 1]]);
  person({ id: 'prac-rossi', given: ['Olivia'], family: 'Rossi', npi: 123_456_797 });
  add('rossi', [[ref('Practitioner/prac-rossi'), 1]]);
  person({ id: 'prac-hassan', given: ['Ahmed'], family: 'Hassan', npi: 123_456_798 });
  add('hassan', [[ref('Practitioner/prac-hassan'), 1]], [0, 1000], {
    responses: 2,
    communication: 4.0,
    outcomes: 4.6,
  });
  person({ id: 'prac-okafor', given: ['Grace'], family: 'Okafor', npi: 123_456_799 });
  add('okafor', [[ref('Practitioner/prac-okafor'), 1]]);
  person({ id: 'prac-muller', given: ['Thomas'], family: 'Müller', npi: 123_456_800 });
  add('muller', [[ref('Practitioner/prac-muller', 'Dr. Thomas Müller'), 1]]);
  person({ id: 'prac-lindqvist', given: ['Hannah'], family: 'Lindqvist', npi: 123_456_801 });
  add('lindqvist', [[ref('Practitioner/prac-lindqvist'), 1]]);
  // 15-17. New referrers: start in month 3, 6 and 8.
  person({ id: 'prac-raman', given: ['Priya'], family: 'Raman', npi: 123_456_802 });
  add('raman', [[ref('Practitioner/prac-raman'), 1]], [3, 1000], {
    responses: 1,
    communication: 4.9,
    outcomes: 4.7,
  });
  person({ id: 'prac-mendes', given: ['Carlos'], family: 'Mendes', npi: 123_456_803 });
  add('mendes', [[ref('Practitioner/prac-mendes'), 1]], [6, 1000]);
  person({ id: 'prac-fischer', given: ['Noah'], family: 'Fischer', npi: 123_456_804 });
  add('fischer', [[ref('Practitioner/prac-fischer'), 1]], [8, 1000]);
  // 18. Ella Tanaka retires in May.
  person({ id: 'prac-tanaka', given: ['Ella'], family: 'Tanaka', npi: 123_456_805 });
  add('tanaka', [[ref('Practitioner/prac-tanaka'), 1]], [0, 5]);
  // 19-20. Organisations referring as such: one with an identifier, one known only by name.
  add('city-urgent-care', [[ref('Organization/org-city-urgent-care', 'City Urgent Care'), 1]]);
  add('harbor-sports', [[ref('Organization/org-harbor-sports', 'Harbor Sports Medicine'), 1]], [0, 1000], {
    responses: 1,
    communication: 4.2,
    outcomes: 4.0,
  });

  const therapists = ['pt-therapist-1', 'pt-therapist-2', 'pt-therapist-3'];
  therapists.forEach((id, i) =>
    resources.push({
      resourceType: 'Practitioner',
      id,
      active: true,
      name: [
        {
          given: [['Sam', 'Robin', 'Alex'][i] as string],
          family: ['Avery', 'Blake', 'Carter'][i],
          suffix: ['DPT'],
        },
      ],
    }),
  );
  return { resources, referrers, therapists };
}

function directoryFor(count: number): Directory {
  const directory = handMadeDirectory();
  for (let i = directory.referrers.length; i < count; i++) {
    const id = `prac-gen-${i}`;
    directory.resources.push({
      resourceType: 'Practitioner',
      id,
      identifier: [{ system: NPI, value: npi(200_000_000 + i) }],
      active: true,
      name: [{ prefix: ['Dr.'], given: [`Given${i}`], family: `Referrer${i}` }],
    });
    directory.referrers.push({
      label: `gen-${i}`,
      references: [{ reference: { reference: `Practitioner/${id}` }, weight: 1 }],
      weight: 1 / Math.pow(i + 1, 1.05),
      activeFrom: 0,
      activeTo: 1000,
    });
  }
  return directory;
}

// ---------------------------------------------------------------- conditions and measures

interface Condition {
  code: string;
  display: string;
  service: { code: string; display: string };
  measures: OutcomeMeasureId[];
  weight: number;
}

const CONDITIONS: Condition[] = [
  {
    code: '279039007',
    display: 'Low back pain',
    service: { code: '91251008', display: 'Physical therapy procedure' },
    measures: ['odi', 'nprs'],
    weight: 30,
  },
  {
    code: '81680005',
    display: 'Neck pain',
    service: { code: '91251008', display: 'Physical therapy procedure' },
    measures: ['nprs', 'psfs'],
    weight: 14,
  },
  {
    code: '239873007',
    display: 'Osteoarthritis of knee',
    service: { code: '229065009', display: 'Exercise therapy' },
    measures: ['lefs', 'nprs'],
    weight: 18,
  },
  {
    code: '44465007',
    display: 'Sprain of ankle',
    service: { code: '229065009', display: 'Exercise therapy' },
    measures: ['lefs', 'nprs'],
    weight: 10,
  },
  {
    code: '45326000',
    display: 'Shoulder pain',
    service: { code: '91251008', display: 'Physical therapy procedure' },
    measures: ['quickdash', 'nprs'],
    weight: 16,
  },
  {
    code: '179344006',
    display: 'Reconstruction of anterior cruciate ligament',
    service: { code: '229065009', display: 'Exercise therapy' },
    measures: ['lefs', 'knee-flexion-rom', 'nprs'],
    weight: 6,
  },
];

interface MeasureModel {
  baseline: [number, number];
  /** Mean and sd of the change (in the measure's own direction, discharge − baseline). */
  change: [number, number];
  step: number;
}

const MEASURE_MODELS: Partial<Record<OutcomeMeasureId, MeasureModel>> = {
  nprs: { baseline: [6.2, 1.6], change: [-3, 2], step: 1 },
  lefs: { baseline: [38, 12], change: [13, 9], step: 1 },
  odi: { baseline: [38, 13], change: [-15, 11], step: 1 },
  quickdash: { baseline: [42, 15], change: [-18, 13], step: 0.1 },
  psfs: { baseline: [3.8, 1.3], change: [2.6, 1.8], step: 0.1 },
  'knee-flexion-rom': { baseline: [95, 15], change: [20, 10], step: 1 },
};

const DECLINE_REASONS: [string, string, number][] = [
  ['no-capacity', 'No capacity', 25],
  ['insurance-not-accepted', 'Insurance not accepted', 20],
  ['outside-scope', "Outside the practice's scope", 20],
  ['insufficient-information', 'Insufficient information', 12],
  ['patient-declined', 'Patient declined', 8],
  ['patient-unreachable', 'Patient unreachable', 7],
  ['duplicate-referral', 'Duplicate referral', 5],
  ['clinical-contraindication', 'Clinical contraindication', 3],
];

const CANCEL_REASONS = [
  'Patient chose another provider',
  'Symptoms resolved',
  'Referred in error',
  'Patient moved away',
];

const COMMENTS = [
  'Progress notes arrive promptly, thank you.',
  'Would appreciate a phone call for complex cases.',
  'Patients report good experiences with your team.',
  'The discharge summaries are clear and useful.',
  'Waiting times for a first appointment are too long.',
  'Please include the home exercise programme in the discharge letter.',
  'Great outcomes for my post-op knees.',
];

const SEASON = [1.15, 1.05, 1.1, 1.05, 1.0, 0.9, 0.8, 0.85, 1.05, 1.1, 1.0, 0.8];
const WEEKDAY = [0.05, 1, 1, 1, 1, 0.95, 0.15]; // Sunday … Saturday

// ---------------------------------------------------------------- the simulation

interface Resolved {
  options: Required<Omit<DatasetOptions, 'asOf'>> & { asOfMs: number; startMs: number; endMs: number };
}

function resolveOptions(options: DatasetOptions): Resolved['options'] {
  const start = options.start ?? DATASET_DEFAULTS.start;
  const months = options.months ?? DATASET_DEFAULTS.months;
  const startMs = Date.parse(`${start}T00:00:00Z`);
  const d = new Date(startMs);
  const endMs = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, d.getUTCDate());
  return {
    seed: options.seed ?? DATASET_DEFAULTS.seed,
    start,
    months,
    referralsPerYear: options.referralsPerYear ?? DATASET_DEFAULTS.referralsPerYear,
    referrers: Math.max(options.referrers ?? DATASET_DEFAULTS.referrers, 20),
    startMs,
    endMs,
    asOfMs: options.asOf ? Date.parse(options.asOf) : endMs + 14 * DAY,
  };
}

/** Seconds-precision ISO instants, so every derived interval is exact. */
function iso(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The next working-hours slot (08:00-17:00 UTC, Monday-Friday) at or after `ms`. */
function workingSlot(ms: number, random: Random): number {
  let day = Math.floor(ms / DAY) * DAY;
  const time = ms - day;
  if (time > 16 * HOUR) day += DAY;
  for (;;) {
    const weekday = new Date(day).getUTCDay();
    if (weekday !== 0 && weekday !== 6) break;
    day += DAY;
  }
  const earliest = day === Math.floor(ms / DAY) * DAY ? Math.max(time, 8 * HOUR) : 8 * HOUR;
  const hour = Math.max(earliest, 8 * HOUR + random.int(0, 17) * 30 * 60_000);
  return day + Math.min(hour, 17 * HOUR);
}

interface TaskStep {
  ms: number;
  status: Task['status'];
  business: string;
  reason?: CodeableConcept;
}

interface AppointmentPlan {
  id: string;
  createdMs: number;
  startMs: number;
  /** What happened when it was due; `cancelledMs` for one called off. */
  outcome: 'fulfilled' | 'noshow' | 'cancelled';
  cancelledMs?: number;
}

interface VisitPlan {
  id: string;
  appointmentId: string;
  type: 'initial-evaluation' | 're-evaluation' | 'treatment' | 'discharge';
  startMs: number;
}

interface ObservationPlan {
  id: string;
  measure: OutcomeMeasureId;
  encounterId: string;
  ms: number;
  value: number;
  site?: string;
  status: Observation['status'];
}

interface Story {
  index: number;
  id: string;
  patient: Patient;
  newPatient: boolean;
  requester: RequesterReference;
  condition: Condition;
  authoredMs: number;
  receivedMs: number;
  steps: TaskStep[];
  appointments: AppointmentPlan[];
  visits: VisitPlan[];
  observations: ObservationPlan[];
  plan?: {
    id: string;
    encounterId: string;
    createdMs: number;
    visits: number;
    weeks: number;
    form: 'count' | 'bounds';
  };
  /** How the referral ends, and when (absent: still open at the end of the simulation). */
  end?: { kind: 'discharged' | 'declined' | 'cancelled' | 'failed'; ms: number };
}

const GIVEN = [
  'Ana',
  'Ben',
  'Chloe',
  'Dev',
  'Emma',
  'Farid',
  'Greta',
  'Hugo',
  'Ines',
  'Jonas',
  'Kira',
  'Leo',
];
const FAMILY = ['Rivera', 'Okafor', 'Novak', 'Garcia', 'Lindqvist', 'Tanaka', 'Dubois', 'Rossi', 'Meyer'];

class Simulator {
  private readonly random: Random;
  private readonly patients: Patient[] = [];
  private next = 0;

  constructor(
    private readonly options: Resolved['options'],
    private readonly directory: Directory,
  ) {
    this.random = new Random(options.seed);
  }

  /** Referral days and how many arrive on each: seasonality × weekday × Poisson. */
  *stories(): Generator<Story> {
    const { startMs, endMs, referralsPerYear } = this.options;
    let weightSum = 0;
    for (let day = startMs; day < endMs; day += DAY) weightSum += dayWeight(day);
    const perWeight = (referralsPerYear * ((endMs - startMs) / (365 * DAY))) / weightSum;
    for (let day = startMs; day < endMs; day += DAY) {
      const n = this.random.poisson(perWeight * dayWeight(day));
      const times = Array.from({ length: n }, () => day + this.random.int(7 * 60, 19 * 60) * 60_000).sort(
        (a, b) => a - b,
      );
      for (const authoredMs of times) {
        const referrer = this.referrerOn(authoredMs);
        if (referrer) yield this.story(authoredMs, referrer);
      }
    }
  }

  private referrerOn(ms: number): ReferrerPlan | undefined {
    const start = new Date(this.options.startMs);
    const at = new Date(ms);
    const month =
      (at.getUTCFullYear() - start.getUTCFullYear()) * 12 + (at.getUTCMonth() - start.getUTCMonth());
    const active = this.directory.referrers.filter((r) => month >= r.activeFrom && month < r.activeTo);
    return active.length
      ? this.random.weighted(
          active,
          active.map((r) => r.weight),
        )
      : undefined;
  }

  private story(authoredMs: number, referrer: ReferrerPlan): Story {
    const r = this.random;
    const index = this.next++;
    const id = `sr-${String(index + 1).padStart(6, '0')}`;
    const returning = this.patients.length > 20 && r.chance(0.08);
    const patient = returning ? r.pick(this.patients) : this.newPatient();
    const requester = r.weighted(
      referrer.references.map((x) => x.reference),
      referrer.references.map((x) => x.weight),
    );
    const condition = r.weighted(
      CONDITIONS,
      CONDITIONS.map((c) => c.weight),
    );
    const receivedMs = authoredMs + r.int(2, 90) * 60_000;
    const story: Story = {
      index,
      id,
      patient,
      newPatient: !returning,
      requester,
      condition,
      authoredMs,
      receivedMs,
      steps: [{ ms: receivedMs, status: 'received', business: 'awaiting-triage' }],
      appointments: [],
      visits: [],
      observations: [],
    };
    const triageMs = workingSlot(receivedMs + r.lognormal(1.2, 0.8) * DAY, r);
    const fate = r.next();
    if (fate < 0.03) {
      // The referrer cancels before triage.
      const ms = receivedMs + r.uniform(0.1, 0.9) * (triageMs - receivedMs);
      this.cancel(story, ms);
      return story;
    }
    if (fate < 0.03 + 0.16) {
      const [code, display] = r.weighted(
        DECLINE_REASONS,
        DECLINE_REASONS.map((d) => d[2]),
      );
      story.steps.push({
        ms: triageMs,
        status: 'rejected',
        business: 'declined',
        reason: { coding: [{ system: DECLINE, code, display }], text: display },
      });
      story.end = { kind: 'declined', ms: triageMs };
      return story;
    }
    story.steps.push({ ms: triageMs, status: 'accepted', business: 'accepted-awaiting-booking' });
    if (r.chance(0.04)) {
      this.cancel(story, triageMs + r.uniform(7, 25) * DAY);
      return story;
    }
    let bookedMs = workingSlot(triageMs + r.lognormal(1.8, 0.9) * DAY, r);
    let startMs = workingSlot(bookedMs + r.lognormal(5, 0.6) * DAY, r);
    story.steps.push({ ms: bookedMs, status: 'accepted', business: 'appointment-booked' });
    const noShowProne = r.chance(0.15);
    const noShowP = noShowProne ? 0.25 : 0.05;
    // The first visit: a no-show is rebooked three times in four.
    for (;;) {
      const appointment = this.appointment(story, bookedMs, startMs);
      if (!r.chance(noShowP + 0.03)) break;
      appointment.outcome = 'noshow';
      story.steps.push({ ms: startMs + 30 * 60_000, status: 'accepted', business: 'no-show' });
      if (!r.chance(0.75)) {
        this.cancel(story, startMs + r.uniform(4, 12) * DAY, 'Patient did not attend');
        return story;
      }
      bookedMs = workingSlot(startMs + r.uniform(1, 3) * DAY, r);
      startMs = workingSlot(bookedMs + r.uniform(3, 7) * DAY, r);
      story.steps.push({ ms: bookedMs, status: 'accepted', business: 'appointment-booked' });
    }
    this.treat(story, startMs, noShowP);
    return story;
  }

  private treat(story: Story, firstMs: number, noShowP: number): void {
    const r = this.random;
    const weeks = r.pick([3, 4, 4, 5, 6, 6, 8]);
    const planned = 2 * weeks;
    const ie = this.visit(
      story,
      story.appointments[story.appointments.length - 1] as AppointmentPlan,
      'initial-evaluation',
    );
    story.steps.push({ ms: firstMs, status: 'in-progress', business: 'first-visit-attended' });
    story.steps.push({ ms: firstMs + HOUR, status: 'in-progress', business: 'evaluation-done' });
    story.plan = {
      id: `cp-${story.id.slice(3)}`,
      encounterId: ie.id,
      createdMs: firstMs + HOUR,
      visits: planned,
      weeks,
      form: r.chance(0.5) ? 'count' : 'bounds',
    };
    const baselines = this.measure(story, ie, undefined);
    const dropAfter = r.chance(0.12) ? r.int(2, Math.max(2, planned - 2)) : undefined;
    const lastVisit = r.chance(0.15) ? planned - 2 : planned;
    let attended = 1;
    let at = firstMs;
    let slot = 1;
    while (slot < lastVisit) {
      slot++;
      const createdMs = at + HOUR;
      at = workingSlot(at + (slot % 2 === 0 ? 3 : 4) * DAY, r);
      const appointment = this.appointment(story, createdMs, at);
      if (dropAfter !== undefined && attended >= dropAfter) {
        // Stops coming: this visit is missed, the rest never booked; the practice closes it.
        appointment.outcome = 'noshow';
        story.steps.push({ ms: at + 30 * 60_000, status: 'in-progress', business: 'no-show' });
        const failMs = at + r.uniform(10, 21) * DAY;
        story.steps.push({
          ms: failMs,
          status: 'failed',
          business: 'no-show',
          reason: { text: 'Patient stopped attending' },
        });
        story.end = { kind: 'failed', ms: failMs };
        return;
      }
      if (r.chance(noShowP)) {
        appointment.outcome = 'noshow';
        story.steps.push({ ms: at + 30 * 60_000, status: 'in-progress', business: 'no-show' });
        continue;
      }
      attended++;
      const type =
        slot === lastVisit ? 'discharge' : slot === 6 && lastVisit > 8 ? 're-evaluation' : 'treatment';
      const visit = this.visit(story, appointment, type);
      if (type === 're-evaluation') this.measure(story, visit, baselines, 0.5);
      if (type === 'discharge') {
        this.measure(story, visit, baselines, 1, 0.1);
        story.steps.push({ ms: at + HOUR, status: 'completed', business: 'discharged' });
        story.end = { kind: 'discharged', ms: at + HOUR };
        return;
      }
    }
    // Missed the planned discharge visit (a no-show on the last slot): one more, as discharge.
    const createdMs = at + HOUR;
    at = workingSlot(at + 3 * DAY, r);
    const appointment = this.appointment(story, createdMs, at);
    const visit = this.visit(story, appointment, 'discharge');
    this.measure(story, visit, baselines, 1, 0.1);
    story.steps.push({ ms: at + HOUR, status: 'completed', business: 'discharged' });
    story.end = { kind: 'discharged', ms: at + HOUR };
  }

  /** Values at a visit: baselines at the initial evaluation, then a share of each patient's change. */
  private measure(
    story: Story,
    visit: VisitPlan,
    baselines: Map<OutcomeMeasureId, { value: number; change: number; site?: string }> | undefined,
    share = 1,
    missing = 0,
  ): Map<OutcomeMeasureId, { value: number; change: number; site?: string }> {
    const r = this.random;
    const out = baselines ?? new Map<OutcomeMeasureId, { value: number; change: number; site?: string }>();
    for (const id of story.condition.measures) {
      const model = MEASURE_MODELS[id];
      const catalog = OUTCOME_MEASURES.find((m) => m.id === id);
      if (!model || !catalog) continue;
      const clamp = (v: number): number =>
        Math.min(catalog.range.max, Math.max(catalog.range.min, Math.round(v / model.step) * model.step));
      let value: number;
      if (!baselines) {
        const baseline = clamp(r.normal(...model.baseline));
        out.set(id, {
          value: baseline,
          change: r.normal(...model.change),
          ...(id === 'knee-flexion-rom' ? { site: r.chance(0.5) ? 'Right knee' : 'Left knee' } : {}),
        });
        value = baseline;
      } else {
        const b = baselines.get(id);
        if (!b) continue;
        value = clamp(b.value + b.change * share);
      }
      if (r.chance(missing)) continue;
      const site = out.get(id)?.site;
      story.observations.push({
        id: `obs-${story.id.slice(3)}-${story.observations.length + 1}`,
        measure: id,
        encounterId: visit.id,
        ms: visit.startMs + 20 * 60_000,
        value: Number(value.toFixed(model.step < 1 ? 1 : 0)),
        ...(site ? { site } : {}),
        status: r.chance(0.02) ? 'preliminary' : 'final',
      });
    }
    return out;
  }

  private appointment(story: Story, createdMs: number, startMs: number): AppointmentPlan {
    const a: AppointmentPlan = {
      id: `appt-${story.id.slice(3)}-${story.appointments.length + 1}`,
      createdMs,
      startMs,
      outcome: 'fulfilled',
    };
    story.appointments.push(a);
    return a;
  }

  private visit(story: Story, appointment: AppointmentPlan, type: VisitPlan['type']): VisitPlan {
    const v: VisitPlan = {
      id: `enc-${story.id.slice(3)}-${story.visits.length + 1}`,
      appointmentId: appointment.id,
      type,
      startMs: appointment.startMs,
    };
    story.visits.push(v);
    return v;
  }

  private cancel(story: Story, ms: number, reason = this.random.pick(CANCEL_REASONS)): void {
    story.steps.push({ ms, status: 'cancelled', business: 'cancelled', reason: { text: reason } });
    for (const a of story.appointments) {
      if (a.startMs > ms && a.outcome === 'fulfilled') {
        a.outcome = 'cancelled';
        a.cancelledMs = ms;
      }
    }
    story.end = { kind: 'cancelled', ms };
  }

  private newPatient(): Patient {
    const r = this.random;
    const n = this.patients.length + 1;
    const year = r.int(1940, 2008);
    const patient: Patient = {
      resourceType: 'Patient',
      id: `pt-${String(n).padStart(6, '0')}`,
      identifier: [
        {
          system: 'https://riverside-pt.example.org/fhir/sid/mrn',
          value: `MRN${String(n).padStart(7, '0')}`,
        },
      ],
      name: [{ family: r.pick(FAMILY), given: [r.pick(GIVEN)] }],
      gender: r.chance(0.55) ? 'female' : 'male',
      birthDate: `${year}-${String(r.int(1, 12)).padStart(2, '0')}-${String(r.int(1, 28)).padStart(2, '0')}`,
    };
    this.patients.push(patient);
    return patient;
  }

  therapist(index: number): string {
    return this.directory.therapists[index % this.directory.therapists.length] as string;
  }
}

function dayWeight(dayMs: number): number {
  const d = new Date(dayMs);
  return (SEASON[d.getUTCMonth()] as number) * (WEEKDAY[d.getUTCDay()] as number);
}

// ---------------------------------------------------------------- resources as stored at asOf

/** The resources of one referral as the service holds them at `asOfMs`, in write order. */
function materialise(story: Story, asOfMs: number, therapist: string): Resource[] {
  const out: Resource[] = [];
  const seen = (ms: number): boolean => ms <= asOfMs;
  const srRef = { reference: `ServiceRequest/${story.id}` };
  const patientRef = { reference: `Patient/${story.patient.id}` };
  const episodeId = `eoc-${story.id.slice(3)}`;
  const taskId = `task-${story.id.slice(3)}`;
  const ended = story.end && seen(story.end.ms) ? story.end : undefined;
  if (story.newPatient) out.push(story.patient);

  const referral: ServiceRequest = {
    resourceType: 'ServiceRequest',
    id: story.id,
    meta: { profile: ['https://ptreferral.dev/fhir/StructureDefinition/pt-referral-servicerequest'] },
    identifier: [
      {
        use: 'official',
        system: 'https://referrals.example.org/fhir/sid/referral-number',
        value: `R-${story.id.slice(3)}`,
      },
    ],
    status: ended?.kind === 'discharged' ? 'completed' : ended?.kind === 'cancelled' ? 'revoked' : 'active',
    intent: 'order',
    category: [{ coding: [{ system: SNOMED, code: '3457005', display: 'Patient referral' }] }],
    priority: story.index % 11 === 0 ? 'urgent' : 'routine',
    code: {
      coding: [
        { system: SNOMED, code: story.condition.service.code, display: story.condition.service.display },
      ],
      text: story.condition.service.display,
    },
    subject: patientRef,
    authoredOn: iso(story.authoredMs),
    requester: story.requester,
    reasonCode: [
      { coding: [{ system: SNOMED, code: story.condition.code, display: story.condition.display }] },
    ],
  };
  out.push(referral);

  // The Task: one version per workflow step, as the workflow writes them.
  const steps = story.steps.filter((s) => seen(s.ms));
  let reason: CodeableConcept | undefined;
  for (const step of steps) {
    if (step.reason) reason = step.reason;
    const task: Task = {
      resourceType: 'Task',
      id: taskId,
      meta: { profile: ['https://ptreferral.dev/fhir/StructureDefinition/pt-referral-task'] },
      identifier: referral.identifier?.map((i) => ({ ...i, use: 'secondary' as const })),
      status: step.status,
      businessStatus: {
        coding: [{ system: BUSINESS, code: step.business }],
        text: step.business,
      },
      ...(reason && (step.status === 'rejected' || step.status === 'cancelled' || step.status === 'failed')
        ? { statusReason: reason }
        : {}),
      intent: 'order',
      priority: referral.priority,
      code: {
        coding: [
          {
            system: 'http://hl7.org/fhir/CodeSystem/task-code',
            code: 'fulfill',
            display: 'Fulfill the focal request',
          },
        ],
      },
      focus: srRef,
      for: patientRef,
      authoredOn: iso(story.receivedMs),
      lastModified: iso(step.ms),
      requester: story.requester,
      owner: { reference: PRACTICE },
    };
    out.push(task);
  }

  // The episode: its statusHistory gives the dates.
  const firstVisit = story.visits.find((v) => seen(v.startMs));
  const history: EpisodeOfCare['statusHistory'] = [];
  const endStatus: EpisodeOfCare['status'] | undefined = ended
    ? ended.kind === 'discharged'
      ? 'finished'
      : 'cancelled'
    : undefined;
  const activeFrom = firstVisit ? firstVisit.startMs : undefined;
  const waitEnd = activeFrom ?? ended?.ms;
  history.push({
    status: 'waitlist',
    period: { start: iso(story.receivedMs), ...(waitEnd ? { end: iso(waitEnd) } : {}) },
  });
  if (activeFrom !== undefined) {
    history.push({
      status: 'active',
      period: { start: iso(activeFrom), ...(ended ? { end: iso(ended.ms) } : {}) },
    });
  }
  if (ended && endStatus)
    history.push({ status: endStatus, period: { start: iso(ended.ms), end: iso(ended.ms) } });
  out.push({
    resourceType: 'EpisodeOfCare',
    id: episodeId,
    meta: { profile: ['https://ptreferral.dev/fhir/StructureDefinition/pt-episode-of-care'] },
    identifier: referral.identifier?.map((i) => ({ ...i, use: 'secondary' as const })),
    status: endStatus ?? (activeFrom !== undefined ? 'active' : 'waitlist'),
    statusHistory: history,
    type: [referral.code as CodeableConcept],
    patient: patientRef,
    managingOrganization: { reference: PRACTICE },
    period: { start: iso(story.receivedMs), ...(ended ? { end: iso(ended.ms) } : {}) },
    referralRequest: [srRef],
  } satisfies EpisodeOfCare);

  for (const a of story.appointments) {
    if (!seen(a.createdMs)) continue;
    const due = seen(a.startMs);
    const status: Appointment['status'] =
      a.outcome === 'cancelled' && a.cancelledMs !== undefined && seen(a.cancelledMs)
        ? 'cancelled'
        : !due
          ? 'booked'
          : a.outcome === 'cancelled'
            ? 'booked'
            : a.outcome;
    out.push({
      resourceType: 'Appointment',
      id: a.id,
      status,
      serviceType: [
        { coding: [{ system: SNOMED, code: '91251008', display: 'Physical therapy procedure' }] },
      ],
      created: iso(a.createdMs),
      start: iso(a.startMs),
      end: iso(a.startMs + 45 * 60_000),
      basedOn: [srRef],
      participant: [
        { actor: patientRef, status: 'accepted' },
        { actor: { reference: `Practitioner/${therapist}` }, status: 'accepted' },
      ],
    } satisfies Appointment);
  }

  for (const v of story.visits) {
    if (!seen(v.startMs)) continue;
    const endMs = v.startMs + (v.type === 'initial-evaluation' ? 60 : 45) * 60_000;
    out.push({
      resourceType: 'Encounter',
      id: v.id,
      status: seen(endMs) ? 'finished' : 'in-progress',
      class: {
        system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
        code: 'AMB',
        display: 'ambulatory',
      },
      type: [{ coding: [{ system: VISIT_TYPE, code: v.type }] }],
      subject: patientRef,
      episodeOfCare: [{ reference: `EpisodeOfCare/${episodeId}` }],
      basedOn: [srRef],
      participant: [{ individual: { reference: `Practitioner/${therapist}` } }],
      appointment: [{ reference: `Appointment/${v.appointmentId}` }],
      period: { start: iso(v.startMs), ...(seen(endMs) ? { end: iso(endMs) } : {}) },
      serviceProvider: { reference: PRACTICE },
    } satisfies Encounter);
  }

  if (story.plan && seen(story.plan.createdMs)) {
    const p = story.plan;
    const repeat: TimingRepeat =
      p.form === 'count'
        ? { count: p.visits }
        : {
            frequency: 2,
            period: 1,
            periodUnit: 'wk',
            boundsDuration: { value: p.weeks, unit: 'weeks', system: UCUM, code: 'wk' },
          };
    out.push({
      resourceType: 'CarePlan',
      id: p.id,
      status: ended ? (ended.kind === 'discharged' ? 'completed' : 'revoked') : 'active',
      intent: 'plan',
      title: 'Physical therapy plan of care',
      subject: patientRef,
      encounter: { reference: `Encounter/${p.encounterId}` },
      created: iso(p.createdMs),
      period: { start: iso(p.createdMs) },
      activity: [
        {
          detail: {
            kind: 'Appointment',
            status: ended ? 'completed' : 'in-progress',
            description: 'Therapeutic exercise and manual therapy',
            scheduledTiming: { repeat },
          },
        },
      ],
    } satisfies CarePlan);
  }

  for (const o of story.observations) {
    if (!seen(o.ms)) continue;
    const catalog = OUTCOME_MEASURES.find((m) => m.id === o.measure);
    if (!catalog) continue;
    out.push({
      resourceType: 'Observation',
      id: o.id,
      status: o.status,
      category: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/observation-category',
              code: o.measure.endsWith('-rom') ? 'exam' : 'survey',
            },
          ],
        },
      ],
      code: { coding: catalog.codings.map((c) => ({ ...c })), text: catalog.name },
      subject: patientRef,
      encounter: { reference: `Encounter/${o.encounterId}` },
      effectiveDateTime: iso(o.ms),
      valueQuantity: { value: o.value, unit: catalog.unit, system: UCUM, code: catalog.unit },
      ...(o.site ? { bodySite: { text: o.site } } : {}),
    } satisfies Observation);
  }
  return out;
}

function feedbackResponses(
  directory: Directory,
  options: Resolved['options'],
  random: Random,
): QuestionnaireResponse[] {
  const out: QuestionnaireResponse[] = [];
  const span = options.endMs - options.startMs;
  const likert = (mean: number): number => Math.min(5, Math.max(1, Math.round(random.normal(mean, 0.7))));
  for (const referrer of directory.referrers) {
    if (!referrer.feedback) continue;
    const from = options.startMs + (referrer.activeFrom / options.months) * span;
    for (let i = 0; i < referrer.feedback.responses; i++) {
      const authored = workingSlot(random.uniform(from, options.endMs - DAY), random);
      const author = random.weighted(
        referrer.references.map((r) => r.reference),
        referrer.references.map((r) => r.weight),
      );
      const comment = random.chance(0.6) ? random.pick(COMMENTS) : undefined;
      out.push({
        resourceType: 'QuestionnaireResponse',
        id: `qr-${referrer.label}-${i + 1}`,
        questionnaire: FEEDBACK_QUESTIONNAIRE,
        status: random.chance(0.06) ? 'in-progress' : 'completed',
        authored: iso(authored),
        author,
        item: [
          { linkId: 'communication', answer: [{ valueInteger: likert(referrer.feedback.communication) }] },
          { linkId: 'outcomes', answer: [{ valueInteger: likert(referrer.feedback.outcomes) }] },
          ...(comment ? [{ linkId: 'comments', answer: [{ valueString: comment }] }] : []),
        ],
      });
    }
  }
  return out.sort((a, b) => (a.authored as string).localeCompare(b.authored as string));
}

// ---------------------------------------------------------------- entry points

export interface Dataset {
  /** Every resource in write order; a Task appears once per version. */
  resources: Resource[];
  referrers: ReferrerPlan[];
  asOf: string;
}

/** Each group of resources to write, in order: the directory, each referral, then the feedback. */
export function* datasetChunks(options: DatasetOptions = {}): Generator<Resource[]> {
  const resolved = resolveOptions(options);
  const directory = directoryFor(resolved.referrers);
  yield [
    {
      resourceType: 'Organization',
      id: 'practice',
      active: true,
      name: 'Riverside Physical Therapy',
    } satisfies Organization,
    ...directory.resources,
  ];
  const simulator = new Simulator(resolved, directory);
  for (const story of simulator.stories()) {
    yield materialise(story, resolved.asOfMs, simulator.therapist(story.index));
  }
  yield feedbackResponses(directory, resolved, new Random(resolved.seed ^ 0x5eed));
}

/** The whole dataset in memory (tests); for large ones write with writeDataset instead. */
export function generateDataset(options: DatasetOptions = {}): Dataset {
  const resolved = resolveOptions(options);
  return {
    resources: [...datasetChunks(options)].flat(),
    referrers: directoryFor(resolved.referrers).referrers,
    asOf: iso(resolved.asOfMs),
  };
}

export interface WriteSummary {
  resources: number;
  referrals: number;
  seconds: number;
}

/**
 * Writes the dataset through the store contract, `batchSize` resources per transaction, each
 * indexed by the store as any write is (so search sees what a real write stores).
 */
export async function writeDataset(
  store: FhirStore,
  options: DatasetOptions = {},
  progress?: { batchSize?: number; onProgress?: (referrals: number, resources: number) => void },
): Promise<WriteSummary> {
  loadFhirDefinitions();
  const batchSize = progress?.batchSize ?? 2000;
  const started = performance.now();
  let buffer: Resource[] = [];
  let resources = 0;
  let referrals = 0;
  const flush = async (): Promise<void> => {
    const writing = buffer;
    buffer = [];
    await store.transaction(async (tx) => {
      for (const resource of writing) {
        await tx.write({
          resourceType: resource.resourceType,
          id: resource.id as string,
          resource,
        });
      }
    });
    resources += writing.length;
    progress?.onProgress?.(referrals, resources);
  };
  for (const chunk of datasetChunks(options)) {
    buffer.push(...chunk);
    referrals += chunk.filter((r) => r.resourceType === 'ServiceRequest').length;
    if (buffer.length >= batchSize) await flush();
  }
  if (buffer.length) await flush();
  return { resources, referrals, seconds: (performance.now() - started) / 1000 };
}

async function cli(): Promise<void> {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (!file) {
    console.error(
      'usage: tsx scripts/generate-analytics-dataset.ts <database file> [--referrals-per-year N] [--months N] [--start YYYY-MM-DD] [--seed N] [--referrers N]',
    );
    process.exitCode = 2;
    return;
  }
  const path = resolve(file);
  if (existsSync(path)) console.warn(`${path} exists: resources with the same ids get new versions`);
  const num = (name: string): number | undefined =>
    flag(name) !== undefined ? Number(flag(name)) : undefined;
  const store = await openStore(`sqlite:${path}`);
  try {
    const summary = await writeDataset(
      store,
      {
        referralsPerYear: num('referrals-per-year'),
        months: num('months'),
        start: flag('start'),
        seed: num('seed'),
        referrers: num('referrers'),
      },
      { onProgress: (n, r) => process.stdout.write(`\r${n} referrals, ${r} resources`) },
    );
    console.log(
      `\nWrote ${summary.referrals} referrals (${summary.resources} resources) to ${path} in ${summary.seconds.toFixed(1)} s`,
    );
  } finally {
    await store.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  cli().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
