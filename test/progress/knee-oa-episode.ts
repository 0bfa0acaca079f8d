import type {
  Appointment,
  CarePlan,
  Encounter,
  EpisodeOfCare,
  Goal,
  Observation,
  Organization,
  Patient,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import type { EpisodeSnapshot, ProgressEvent } from '../../src/progress/index.js';

/**
 * One realistic episode: Harold Whitfield, 64, right knee osteoarthritis, referred by his family
 * physician for exercise therapy 2x/week for 6 weeks. Initial evaluation 9 Mar 2026, a missed visit
 * on 23 Mar, re-evaluation at visit 6 (30 Mar), progress report at visit 10 (13 Apr), discharge at
 * visit 12 (20 Apr). NPRS (coded with LOINC 72514-3), LEFS and right knee flexion ROM (coded with the
 * service's outcome-measure codes) at each evaluation. `snapshotAt` gives what the store holds at
 * each event.
 */
const OUTCOME = 'https://ptreferral.dev/fhir/CodeSystem/pt-outcome-measure';
const VISIT_TYPE = 'https://ptreferral.dev/fhir/CodeSystem/pt-encounter-type';
const GOAL_ACHIEVEMENT = 'http://terminology.hl7.org/CodeSystem/goal-achievement';
const REFERRAL = { reference: 'ServiceRequest/referral-1' };
const PATIENT = { reference: 'Patient/harold-whitfield' };
const PRACTICE = { reference: 'Organization/practice', display: 'Riverside Physical Therapy' };

export const patient: Patient = {
  resourceType: 'Patient',
  id: 'harold-whitfield',
  identifier: [{ system: 'https://cedarvalleyfm.example.org/fhir/sid/mrn', value: 'CV-0072215' }],
  name: [
    { use: 'official', family: 'Whitfield', given: ['Harold', 'James'] },
    { use: 'usual', given: ['Hal'] },
  ],
  gender: 'male',
  birthDate: '1961-04-02',
};

export const practice: Organization = {
  resourceType: 'Organization',
  id: 'practice',
  active: true,
  name: 'Riverside Physical Therapy',
  telecom: [{ system: 'phone', value: '(319) 555-0188', use: 'work' }],
};

export const referral: ServiceRequest = {
  resourceType: 'ServiceRequest',
  id: 'referral-1',
  meta: { profile: ['https://ptreferral.dev/fhir/StructureDefinition/pt-referral-servicerequest'] },
  identifier: [
    { use: 'official', system: 'https://cedarvalleyfm.example.org/referrals', value: 'CVFM-RF-26-03117' },
  ],
  status: 'active',
  intent: 'order',
  category: [
    { coding: [{ system: 'http://snomed.info/sct', code: '3457005', display: 'Patient referral' }] },
  ],
  priority: 'routine',
  code: {
    coding: [{ system: 'http://snomed.info/sct', code: '229065009', display: 'Exercise therapy' }],
    text: 'Physical therapy: exercise therapy for right knee osteoarthritis',
  },
  subject: PATIENT,
  authoredOn: '2026-03-02T09:20:00-06:00',
  requester: { reference: 'Practitioner/priya-raman', display: 'Priya Raman, MD' },
  reasonCode: [
    {
      coding: [{ system: 'http://snomed.info/sct', code: '239873007', display: 'Osteoarthritis of knee' }],
      text: 'Primary osteoarthritis, right knee',
    },
  ],
};

function episode(status: EpisodeOfCare['status']): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    id: 'episode-1',
    status,
    patient: PATIENT,
    managingOrganization: PRACTICE,
    period: { start: '2026-03-02T15:40:00Z' },
    referralRequest: [REFERRAL],
  };
}

function task(status: Task['status'], statusReason?: Task['statusReason']): Task {
  return {
    resourceType: 'Task',
    id: 'task-1',
    status,
    ...(statusReason ? { statusReason } : {}),
    intent: 'order',
    code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' }] },
    focus: REFERRAL,
    for: PATIENT,
    authoredOn: '2026-03-02T15:40:00Z',
    requester: referral.requester,
    owner: PRACTICE,
  };
}

/** Visit n (1-12) and its date; the missed visit was on 23 Mar. */
const VISIT_DATES = [
  '2026-03-09',
  '2026-03-12',
  '2026-03-16',
  '2026-03-19',
  '2026-03-26',
  '2026-03-30',
  '2026-04-02',
  '2026-04-06',
  '2026-04-09',
  '2026-04-13',
  '2026-04-16',
  '2026-04-20',
];
const NO_SHOW_DATE = '2026-03-23';
const TYPES: Record<number, string> = { 1: 'initial-evaluation', 6: 're-evaluation', 12: 'discharge' };

const pad = (n: number) => String(n).padStart(2, '0');

function encounter(n: number): Encounter {
  const date = VISIT_DATES[n - 1] as string;
  const type = TYPES[n] ?? 'treatment';
  return {
    resourceType: 'Encounter',
    id: `enc-${pad(n)}`,
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
    type: [{ coding: [{ system: VISIT_TYPE, code: type }] }],
    subject: PATIENT,
    episodeOfCare: [{ reference: 'EpisodeOfCare/episode-1' }],
    basedOn: [REFERRAL],
    appointment: [{ reference: `Appointment/appt-${pad(n)}` }],
    period: { start: `${date}T15:00:00Z`, end: `${date}T16:00:00Z` },
    serviceProvider: PRACTICE,
  };
}

function appointment(id: string, date: string, status: Appointment['status']): Appointment {
  return {
    resourceType: 'Appointment',
    id,
    status,
    basedOn: [REFERRAL],
    start: `${date}T15:00:00Z`,
    end: `${date}T16:00:00Z`,
    participant: [
      { actor: PATIENT, status: 'accepted' },
      { actor: PRACTICE, status: 'accepted' },
    ],
  };
}

type MeasureKey = 'nprs' | 'lefs' | 'rom';

function observation(key: MeasureKey, visit: number, value: number): Observation {
  const date = VISIT_DATES[visit - 1] as string;
  const base = {
    resourceType: 'Observation' as const,
    id: `obs-${key}-${pad(visit)}`,
    status: 'final' as const,
    subject: PATIENT,
    encounter: { reference: `Encounter/enc-${pad(visit)}` },
    effectiveDateTime: `${date}T15:20:00Z`,
  };
  switch (key) {
    case 'nprs':
      return {
        ...base,
        category: [survey()],
        code: {
          coding: [
            {
              system: 'http://loinc.org',
              code: '72514-3',
              display: 'Pain severity - 0-10 verbal numeric rating [Score] - Reported',
            },
          ],
          text: 'Pain severity (0-10 NRS)',
        },
        valueInteger: value,
      };
    case 'lefs':
      return {
        ...base,
        category: [survey()],
        code: {
          coding: [{ system: OUTCOME, code: 'lefs', display: 'Lower Extremity Functional Scale (LEFS)' }],
        },
        valueInteger: value,
      };
    case 'rom':
      return {
        ...base,
        category: [
          {
            coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'exam' }],
          },
        ],
        code: {
          coding: [{ system: OUTCOME, code: 'knee-flexion-rom', display: 'Knee flexion range of motion' }],
        },
        bodySite: {
          coding: [
            { system: 'http://snomed.info/sct', code: '6757004', display: 'Structure of right knee region' },
          ],
          text: 'Right knee',
        },
        valueQuantity: { value, unit: 'deg', system: 'http://unitsofmeasure.org', code: 'deg' },
      };
  }
}

function survey() {
  return {
    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey' }],
  };
}

/** Measured at the initial evaluation, re-evaluation, progress report and discharge visits. */
const MEASURED: [number, number, number, number][] = [
  // visit, NPRS, LEFS, knee flexion
  [1, 6, 38, 105],
  [6, 5, 47, 115],
  [10, 3, 56, 120],
  [12, 2, 62, 125],
];

type Achievement = 'in-progress' | 'improving' | 'achieved';

function goal(id: string, text: string, achievement: Achievement, done = false): Goal {
  const display = { 'in-progress': 'In Progress', improving: 'Improving', achieved: 'Achieved' }[achievement];
  return {
    resourceType: 'Goal',
    id,
    lifecycleStatus: done ? 'completed' : 'active',
    achievementStatus: { coding: [{ system: GOAL_ACHIEVEMENT, code: achievement, display }] },
    description: { text },
    subject: PATIENT,
    startDate: '2026-03-09',
    target: [{ dueDate: '2026-04-20' }],
    expressedBy: PATIENT,
  };
}

function goals(walk: Achievement, stairs: Achievement, done = false): Goal[] {
  return [
    goal('goal-walk', 'Walk 30 minutes on level ground with right knee pain of 3/10 or less', walk, done),
    goal('goal-stairs', 'Climb a flight of 12 stairs step-over-step without a handrail', stairs, done),
  ];
}

export function carePlan(status: CarePlan['status'] = 'active'): CarePlan {
  const activity = status === 'completed' ? 'completed' : 'in-progress';
  return {
    resourceType: 'CarePlan',
    id: 'careplan-1',
    status,
    intent: 'plan',
    title: 'Physical therapy plan of care: right knee osteoarthritis',
    subject: PATIENT,
    period: { start: '2026-03-09', end: '2026-04-20' },
    created: '2026-03-09T16:00:00Z',
    addresses: [{ display: 'Primary osteoarthritis, right knee' }],
    goal: [{ reference: 'Goal/goal-walk' }, { reference: 'Goal/goal-stairs' }],
    activity: [
      {
        detail: {
          kind: 'Appointment',
          status: activity,
          description: 'Therapeutic exercise, manual therapy and gait training',
          scheduledTiming: {
            repeat: {
              boundsDuration: { value: 6, unit: 'weeks', system: 'http://unitsofmeasure.org', code: 'wk' },
              frequency: 2,
              period: 1,
              periodUnit: 'wk',
            },
          },
        },
      },
      {
        detail: {
          status: activity,
          description: 'Home exercise programme: quadriceps strengthening and knee range-of-motion exercises',
          scheduledString: 'daily',
        },
      },
    ],
  };
}

export type Stage =
  | 'received'
  | 'accepted'
  | 'declined'
  | 'booked'
  | 'initial-evaluation'
  | 'no-show'
  | 're-evaluation'
  | 'progress-report'
  | 'discharge'
  | 'cancelled';

/** Visits held, whether the missed visit has happened, and the goal statuses, at each stage. */
const STAGES: Record<Stage, { visits: number; noShow: boolean; goals: Goal[]; plan: boolean }> = {
  received: { visits: 0, noShow: false, goals: [], plan: false },
  accepted: { visits: 0, noShow: false, goals: [], plan: false },
  declined: { visits: 0, noShow: false, goals: [], plan: false },
  booked: { visits: 0, noShow: false, goals: [], plan: false },
  'initial-evaluation': { visits: 1, noShow: false, goals: goals('in-progress', 'in-progress'), plan: true },
  'no-show': { visits: 4, noShow: true, goals: goals('in-progress', 'in-progress'), plan: true },
  're-evaluation': { visits: 6, noShow: true, goals: goals('improving', 'in-progress'), plan: true },
  'progress-report': { visits: 10, noShow: true, goals: goals('improving', 'improving'), plan: true },
  discharge: { visits: 12, noShow: true, goals: goals('achieved', 'improving', true), plan: true },
  cancelled: { visits: 2, noShow: false, goals: goals('in-progress', 'in-progress'), plan: true },
};

export function snapshotAt(stage: Stage): EpisodeSnapshot {
  const { visits, noShow, goals, plan } = STAGES[stage];
  const held = Array.from({ length: visits }, (_, i) => i + 1);
  const appointments: Appointment[] = held.map((n) =>
    appointment(`appt-${pad(n)}`, VISIT_DATES[n - 1] as string, 'fulfilled'),
  );
  if (noShow) appointments.push(appointment('appt-noshow', NO_SHOW_DATE, 'noshow'));
  // The next visit is booked, except once the episode is over.
  if (!['received', 'accepted', 'declined', 'discharge', 'cancelled'].includes(stage)) {
    const next = stage === 'no-show' ? 5 : visits + 1;
    appointments.push(appointment(`appt-${pad(next)}`, VISIT_DATES[next - 1] as string, 'booked'));
  }
  return {
    referral: stage === 'discharge' ? { ...referral, status: 'completed' } : referral,
    patient,
    practice,
    episode: episode(EPISODE_STATUS[stage]),
    task: TASKS[stage](),
    encounters: held.map(encounter),
    appointments,
    observations: MEASURED.filter(([v]) => v <= visits).flatMap(([v, nprs, lefs, rom]) => [
      observation('nprs', v, nprs),
      observation('lefs', v, lefs),
      observation('rom', v, rom),
    ]),
    goals,
    carePlans: plan ? [carePlan(stage === 'discharge' ? 'completed' : 'active')] : [],
  };
}

const EPISODE_STATUS: Record<Stage, EpisodeOfCare['status']> = {
  received: 'waitlist',
  accepted: 'waitlist',
  declined: 'cancelled',
  booked: 'waitlist',
  'initial-evaluation': 'active',
  'no-show': 'active',
  're-evaluation': 'active',
  'progress-report': 'active',
  discharge: 'finished',
  cancelled: 'cancelled',
};

const TASKS: Record<Stage, () => Task> = {
  received: () => task('received'),
  accepted: () => task('accepted'),
  declined: () =>
    task('rejected', {
      coding: [
        {
          system: 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-decline-reason',
          code: 'no-capacity',
          display: 'No capacity',
        },
      ],
    }),
  booked: () => task('accepted'),
  'initial-evaluation': () => task('in-progress'),
  'no-show': () => task('in-progress'),
  're-evaluation': () => task('in-progress'),
  'progress-report': () => task('in-progress'),
  discharge: () => task('completed'),
  cancelled: () => task('cancelled', { text: 'Patient moved out of the area' }),
};

/** The event that produced each stage, as the workflow reports it. */
export const EVENTS: Record<Stage, ProgressEvent> = {
  received: {
    code: 'referral-received',
    occurredAt: '2026-03-02T15:40:00Z',
    source: { reference: 'Task/task-1' },
    sourceVersion: '1',
  },
  accepted: {
    code: 'referral-accepted',
    occurredAt: '2026-03-03T14:05:00Z',
    source: { reference: 'Task/task-1' },
    sourceVersion: '2',
  },
  declined: {
    code: 'referral-declined',
    occurredAt: '2026-03-03T14:05:00Z',
    source: { reference: 'Task/task-1' },
    sourceVersion: '2',
    advice:
      'Cedar Valley Hospital Outpatient Rehabilitation accepts knee osteoarthritis referrals and currently offers a first visit within two weeks.',
  },
  booked: {
    code: 'appointment-booked',
    occurredAt: '2026-03-03T16:30:00Z',
    source: { reference: 'Appointment/appt-01' },
    sourceVersion: '1',
    appointment: appointment('appt-01', '2026-03-09', 'booked'),
  },
  'initial-evaluation': {
    code: 'initial-evaluation',
    occurredAt: '2026-03-09T16:00:00Z',
    source: { reference: 'Encounter/enc-01' },
    sourceVersion: '3',
    encounter: { reference: 'Encounter/enc-01' },
  },
  'no-show': {
    code: 'no-show',
    occurredAt: '2026-03-23T15:30:00Z',
    source: { reference: 'Appointment/appt-noshow' },
    sourceVersion: '2',
  },
  're-evaluation': {
    code: 're-evaluation',
    occurredAt: '2026-03-30T16:00:00Z',
    source: { reference: 'Encounter/enc-06' },
    sourceVersion: '2',
    encounter: { reference: 'Encounter/enc-06' },
  },
  'progress-report': {
    code: 'progress-report',
    occurredAt: '2026-04-13T16:00:00Z',
    source: { reference: 'Encounter/enc-10' },
    sourceVersion: '2',
    encounter: { reference: 'Encounter/enc-10' },
  },
  discharge: {
    code: 'discharge',
    occurredAt: '2026-04-20T16:00:00Z',
    source: { reference: 'Encounter/enc-12' },
    sourceVersion: '2',
    encounter: { reference: 'Encounter/enc-12' },
    advice: 'Continue the home exercise programme three times a week.',
  },
  cancelled: {
    code: 'cancellation',
    occurredAt: '2026-03-14T10:00:00Z',
    source: { reference: 'Task/task-1' },
    sourceVersion: '5',
    cancelledBy: { reference: 'Practitioner/priya-raman', display: 'Priya Raman, MD' },
  },
};

export const STAGE_NAMES = Object.keys(STAGES) as Stage[];
