import type {
  Appointment,
  Bundle,
  BundleEntry,
  CarePlan,
  Communication,
  Encounter,
  EpisodeOfCare,
  Goal,
  Observation,
  Parameters,
  Resource,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockReceiver, type MockReceiver } from '../../bench/mock-receiver.js';
import { IDENTIFIER_SYSTEM, SECRET, topicSubscription, waitFor } from '../support/delivery-app.js';
import { listenProgressApp, type ProgressApp } from '../support/progress-app.js';
import { sharedValidator } from '../support/test-app.js';
import { readFixture } from '../referral/referral-fixtures.js';

/**
 * Acceptance: for each progress event, the exact Communication the referrer receives.
 *
 * Real episodes are driven over HTTP against the real app (SQLite, the delivery worker woken after
 * each commit, a fixed clock that each step sets to the time it happens), and the referrer's system
 * is the mock receiver (bench/mock-receiver.ts), subscribed with a topic Subscription (full-resource
 * payload, `Communication?recipient=<the referral's requester>`), verifying signatures and
 * deduplicating by identifier. Every step waits for its Communication at the receiver and checks it
 * field by field against what the referrer should read, then that the stored copy is the same and
 * that re-sending the step's source changes nothing.
 *
 * Episode A (fixtures/Bundle-referral-knee-osteoarthritis.json, Harold Whitfield, referred by Priya
 * Raman, MD): received, accepted, first visit booked, initial evaluation with NPRS, LEFS, goals and a
 * 2x/week-for-6-weeks plan of care, a missed visit, a progress report at the 3rd attended visit, a
 * re-evaluation (NPRS improved by 3: MCID reached; LEFS by 6: not reached), a progress report on
 * request, and discharge. Episode B: the same physician's referral for another patient, declined
 * with a coded reason and advice. Episode C: a third, cancelled by the referrer. Episode D
 * (fixtures/Bundle-referral-ankle-sprain.json): a referrer who asked for two events only.
 */

const PROFILE = 'https://ptreferral.dev/fhir/StructureDefinition/pt-progress-communication';
const EVENT_SYSTEM = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-event';
const ENCOUNTER_TYPE = 'https://ptreferral.dev/fhir/CodeSystem/pt-encounter-type';
const OUTCOME = 'https://ptreferral.dev/fhir/CodeSystem/pt-outcome-measure';
const DECLINE = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-decline-reason';
const TASK_CODE = 'http://hl7.org/fhir/CodeSystem/task-code';
const BUSINESS_STATUS = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-business-status';
const GOAL_ACHIEVEMENT = 'http://terminology.hl7.org/CodeSystem/goal-achievement';
const REFERRER_EVENTS = 'https://ptreferral.dev/fhir/StructureDefinition/referrer-progress-events';
const FHIR_JSON = 'application/fhir+json';
const WAIT_MS = 5_000;

/** The referring physician of episodes A-C, known to the practice before her first referral. */
const PRIYA = { reference: 'PractitionerRole/priya-raman-cvfm', display: 'Priya Raman, MD' };
/** The referrer of episode D, who asked for acceptance and cancellation only. */
const RACHEL = { reference: 'Practitioner/rachel-kim', display: 'Rachel Kim, PA-C' };
const PRACTICE = { reference: 'Organization/practice', display: 'Riverside Physical Therapy' };

const SIGN_OFF = ['Kind regards,', 'Riverside Physical Therapy', '(319) 555-0188'];
const NPRS = 'Numeric Pain Rating Scale (NPRS; 0-10, lower is better)';
const LEFS = 'Lower Extremity Functional Scale (LEFS; 0-80, higher is better)';
const WALK = 'Walk 30 minutes on level ground with right knee pain of 3/10 or less';
const STAIRS = 'Climb a flight of 12 stairs step-over-step without a handrail';
const PLAN_TITLE = 'Physical therapy plan of care: right knee osteoarthritis';
const PLAN = [
  'Plan of care:',
  '- Therapeutic exercise, manual therapy and gait training: twice a week for 6 weeks (12 visits)',
  '- Home exercise programme: quadriceps strengthening and knee range-of-motion exercises: daily',
];
const ADVICE =
  'Cedar Valley Hospital Outpatient Rehabilitation accepts knee osteoarthritis referrals ' +
  'and currently offers a first visit within two weeks.';

// ---------------------------------------------------------------------------------------------
// HTTP

let app: ProgressApp;
let receiver: MockReceiver;
let selectiveReceiver: MockReceiver;
let subscriptionId: string;

interface Answer<T> {
  status: number;
  body: T;
}

async function fhir<T = Resource>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const res = await fetch(`${app.fhirBase}/${path}`, {
    method,
    headers: { accept: FHIR_JSON, ...(body === undefined ? {} : { 'content-type': FHIR_JSON }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

async function ok<T extends Resource>(answer: Promise<Answer<T>>, status = [200, 201]): Promise<T> {
  const { status: got, body } = await answer;
  expect(status, JSON.stringify(body)).toContain(got);
  return body;
}

const read = <T extends Resource>(reference: string): Promise<T> => ok(fhir<T>('GET', reference), [200]);
const create = <T extends Resource>(resource: T): Promise<T> =>
  ok(fhir<T>('POST', resource.resourceType, resource), [201]);
const update = <T extends Resource>(resource: T): Promise<T> =>
  ok(fhir<T>('PUT', `${resource.resourceType}/${resource.id}`, { ...resource, meta: undefined }));

async function transaction(entries: BundleEntry[]): Promise<Bundle> {
  return ok(fhir<Bundle>('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: entries }), [200]);
}

/** 'Observation/abc' from the transaction-response entry at `index`. */
function locationAt(response: Bundle, index: number): string {
  const location = response.entry?.[index]?.response?.location as string;
  return location.replace(/\/_history\/.*$/, '');
}

async function search<T extends Resource>(query: string): Promise<T[]> {
  const bundle = await ok(fhir<Bundle>('GET', query), [200]);
  return (bundle.entry ?? []).map((e) => e.resource as T);
}

/** Every Communication stored, server-wide. */
async function communicationCount(): Promise<number> {
  const bundle = await ok(fhir<Bundle>('GET', 'Communication?_summary=count'), [200]);
  return bundle.total as number;
}

/** Sets the server's clock: what happens next happens at this instant. */
function at(instant: string): void {
  app.clock.now = instant;
}

// ---------------------------------------------------------------------------------------------
// Episodes

interface Episode {
  referral: ServiceRequest;
  episode: EpisodeOfCare;
  task: Task;
  patient: { reference: string; display: string };
  /** 'Your referral of … (ref. …): …', the second line of every summary. */
  referralLine: string;
  /** The first line's patient part: 'Harold Whitfield (DOB 2 Apr 1961)'. */
  who: string;
}

async function intake(bundle: Bundle, who: string, referralLine: string): Promise<Episode> {
  const response = await transaction(bundle.entry ?? []);
  const index = bundle.entry?.findIndex((e) => e.resource?.resourceType === 'ServiceRequest') as number;
  const referral = response.entry?.[index]?.resource as ServiceRequest;
  expect(referral?.id).toBeDefined();
  const [episode] = await search<EpisodeOfCare>(
    `EpisodeOfCare?incoming-referral=ServiceRequest/${referral.id}`,
  );
  const [task] = await search<Task>(`Task?focus=ServiceRequest/${referral.id}&code=${TASK_CODE}|fulfill`);
  const patient = referral.subject?.reference as string;
  return {
    referral,
    episode: episode as EpisodeOfCare,
    task: task as Task,
    patient: { reference: patient, display: who.replace(/ \(DOB .*\)$/, '') },
    referralLine,
    who,
  };
}

async function refresh(e: Episode): Promise<Episode> {
  return {
    ...e,
    referral: await read<ServiceRequest>(`ServiceRequest/${e.referral.id}`),
    episode: await read<EpisodeOfCare>(`EpisodeOfCare/${e.episode.id}`),
    task: await read<Task>(`Task/${e.task.id}`),
  };
}

/** The practice moves the referral Task, as its triage screen would: the whole Task, If-Match. */
async function moveTask(e: Episode, changes: Partial<Task>): Promise<Task> {
  const task = await read<Task>(`Task/${e.task.id}`);
  return ok(
    fhir<Task>(
      'PUT',
      `Task/${task.id}`,
      { ...task, ...changes, meta: undefined },
      {
        'if-match': `W/"${task.meta?.versionId}"`,
      },
    ),
    [200],
  );
}

/** Another referral of the same physician for another patient: the knee fixture, re-identified. */
function kneeReferralFor(p: {
  family: string;
  given: string[];
  birthDate: string;
  mrn: string;
  number: string;
  authoredOn: string;
}): Bundle {
  const bundle = readFixture<Bundle>('Bundle-referral-knee-osteoarthritis.json');
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (r?.resourceType === 'Patient') {
      r.name = [{ use: 'official', family: p.family, given: p.given }];
      r.birthDate = p.birthDate;
      r.identifier = [{ system: 'https://cedarvalleyfm.example.org/fhir/sid/mrn', value: p.mrn }];
      entry.request = {
        method: 'POST',
        url: 'Patient',
        ifNoneExist: `identifier=https://cedarvalleyfm.example.org/fhir/sid/mrn|${p.mrn}`,
      };
    }
    if (r?.resourceType === 'ServiceRequest') {
      r.identifier = [{ ...r.identifier?.[0], value: p.number }];
      r.authoredOn = p.authoredOn;
      if (r.subject) r.subject.display = `${p.given[0]} ${p.family}`;
      delete r.note;
    }
  }
  return bundle;
}

function ref(resource: Resource): { reference: string } {
  return { reference: `${resource.resourceType}/${resource.id}` };
}

// ---------------------------------------------------------------------------------------------
// Clinical resources of episode A, as the practice's EHR records them

function visitEncounter(
  e: Episode,
  type: 'initial-evaluation' | 'treatment' | 're-evaluation' | 'discharge',
  date: string,
  appointment?: string,
): Encounter {
  const display = {
    'initial-evaluation': 'Initial evaluation',
    treatment: 'Treatment visit',
    're-evaluation': 'Re-evaluation',
    discharge: 'Discharge visit',
  }[type];
  return {
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
    type: [{ coding: [{ system: ENCOUNTER_TYPE, code: type, display }] }],
    subject: e.patient,
    episodeOfCare: [ref(e.episode)],
    basedOn: [ref(e.referral)],
    ...(appointment ? { appointment: [{ reference: appointment }] } : {}),
    period: { start: `${date}T15:00:00Z`, end: `${date}T16:00:00Z` },
    serviceProvider: PRACTICE,
  };
}

function survey() {
  return [
    {
      coding: [
        {
          system: 'http://terminology.hl7.org/CodeSystem/observation-category',
          code: 'survey',
          display: 'Survey',
        },
      ],
    },
  ];
}

/** NPRS, coded with LOINC 72514-3 (the catalog's verified LOINC code). */
function nprs(e: Episode, encounter: string, date: string, value: number): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: survey(),
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
    subject: e.patient,
    encounter: { reference: encounter },
    effectiveDateTime: `${date}T15:20:00Z`,
    valueInteger: value,
  };
}

/** LEFS, coded with the service's outcome-measure code (no verified LOINC code in the catalog). */
function lefs(e: Episode, encounter: string, date: string, value: number): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: survey(),
    code: { coding: [{ system: OUTCOME, code: 'lefs', display: 'Lower Extremity Functional Scale (LEFS)' }] },
    subject: e.patient,
    encounter: { reference: encounter },
    effectiveDateTime: `${date}T15:25:00Z`,
    valueInteger: value,
  };
}

type Achievement = 'in-progress' | 'improving' | 'achieved';

/** Ids chosen by the EHR, in the order the goals were set. */
const GOAL_IDS = { walk: 'whitfield-goal-1-walk', stairs: 'whitfield-goal-2-stairs' } as const;
const CARE_PLAN_ID = 'whitfield-plan-of-care';

function goal(e: Episode, which: 'walk' | 'stairs', achievement: Achievement): Goal {
  const display = { 'in-progress': 'In Progress', improving: 'Improving', achieved: 'Achieved' }[achievement];
  return {
    resourceType: 'Goal',
    id: GOAL_IDS[which],
    lifecycleStatus: achievement === 'achieved' ? 'completed' : 'active',
    achievementStatus: { coding: [{ system: GOAL_ACHIEVEMENT, code: achievement, display }] },
    description: { text: which === 'walk' ? WALK : STAIRS },
    subject: e.patient,
    startDate: '2026-03-09',
    target: [{ dueDate: '2026-04-17' }],
    expressedBy: e.patient,
  };
}

function goalEntries(e: Episode, walk: Achievement, stairs: Achievement): BundleEntry[] {
  return [goal(e, 'walk', walk), goal(e, 'stairs', stairs)].map((g) => ({
    resource: g,
    request: { method: 'PUT', url: `Goal/${g.id}` },
  }));
}

/** The plan of care: exercise therapy twice a week for 6 weeks (12 visits), home exercises daily. */
function carePlan(e: Episode, encounter: string, status: CarePlan['status']): CarePlan {
  const activity = status === 'completed' ? 'completed' : 'in-progress';
  return {
    resourceType: 'CarePlan',
    id: CARE_PLAN_ID,
    status,
    intent: 'plan',
    title: PLAN_TITLE,
    subject: e.patient,
    encounter: { reference: encounter },
    period: { start: '2026-03-09', end: '2026-04-17' },
    created: '2026-03-09T16:00:00Z',
    goal: [{ reference: `Goal/${GOAL_IDS.walk}` }, { reference: `Goal/${GOAL_IDS.stairs}` }],
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

function appointment(e: Episode, date: string, status: Appointment['status']): Appointment {
  return {
    resourceType: 'Appointment',
    status,
    basedOn: [ref(e.referral)],
    start: `${date}T15:00:00Z`,
    end: `${date}T16:00:00Z`,
    participant: [{ actor: e.patient, status: 'accepted' }],
  };
}

// ---------------------------------------------------------------------------------------------
// What the referrer receives

type Cited = [reference: string, display: string];

interface Expected {
  episode: Episode;
  code: string;
  display: string;
  /** Communication.identifier value. */
  identifier: string;
  encounter?: string;
  sent: string;
  /** The summary's paragraphs after the title and referral line, before the sign-off. */
  paragraphs: (string | string[])[];
  cited: Cited[];
  /** The outcome measures whose change is flagged as reaching the MCID, e.g. { [NPRS]: 2 }. */
  mcid: Record<string, number>;
  recipient?: { reference: string; display: string };
}

function summaryOf(x: Expected): string {
  return [[`${x.display}: ${x.episode.who}`, x.episode.referralLine], ...x.paragraphs, SIGN_OFF]
    .map((p) => (Array.isArray(p) ? p.join('\n') : p))
    .join('\n\n');
}

/** The whole Communication the referrer must receive; the HTML report's bytes are checked apart. */
function expectedCommunication(x: Expected): Communication {
  const summary = summaryOf(x);
  return {
    resourceType: 'Communication',
    id: expect.any(String) as unknown as string,
    // meta also carries what the server keeps for itself (lastUpdated, access labels).
    meta: expect.objectContaining({ profile: [PROFILE], versionId: '1' }) as unknown as Communication['meta'],
    identifier: [{ system: IDENTIFIER_SYSTEM, value: x.identifier }],
    basedOn: [ref(x.episode.referral)],
    status: 'completed',
    category: [{ coding: [{ system: EVENT_SYSTEM, code: x.code, display: x.display }], text: x.display }],
    subject: x.episode.patient,
    about: [ref(x.episode.episode)],
    ...(x.encounter ? { encounter: { reference: x.encounter } } : {}),
    sent: x.sent,
    recipient: [x.recipient ?? PRIYA],
    sender: PRACTICE,
    payload: [
      { contentString: summary },
      {
        contentAttachment: {
          contentType: 'text/html',
          data: expect.any(String) as unknown as string,
          title: summary.split('\n')[0] as string,
          creation: x.sent,
        },
      },
      ...x.cited.map(([reference, display]) => ({ contentReference: { reference, display } })),
    ],
  };
}

function htmlOf(communication: Communication): string {
  const attachment = communication.payload?.find((p) => p.contentAttachment)?.contentAttachment;
  return Buffer.from(attachment?.data ?? '', 'base64').toString('utf8');
}

/** The text a reader of the HTML sees: tags dropped, entities decoded, whitespace collapsed. */
function visibleText(document: string): string {
  return document
    .replace(/<style>[\s\S]*?<\/style>/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

/** The facts of a summary line; an outcome line splits into measure, latest, initial, change, MCID. */
function facts(line: string): string[] {
  const body = line.replace(/^- /, '').replace(/:$/, '');
  if (!/ is better\): /.test(body)) return [body];
  return body
    .replace(/ \((MCID of [\d.]+ reached)\)$/, '; $1')
    .split(/: |; (?=\d+(?:\.\d+)?(?:\/|%|°)|improved|worsened|unchanged|MCID)/);
}

/** The HTML outcome table: measure label → the row's Change cell. */
function changeCells(document: string): Map<string, string> {
  const rows = [...document.matchAll(/<tr><td>(.*?)<\/td><td>.*?<\/td><td>.*?<\/td><td>(.*?)<\/td><\/tr>/g)];
  return new Map(rows.map((m) => [m[1] as string, m[2] as string]));
}

/** Every Communication delivered to a receiver, by its identifier value (the receiver's dedupe key). */
function delivered(r: MockReceiver, identifier: string): Communication | undefined {
  return r.unique.get(`${IDENTIFIER_SYSTEM}|${identifier}`);
}

/**
 * Waits for the event's Communication at the receiver and checks it: the exact resource, the
 * stored copy identical, one Communication with its identifier, the HTML report stating every fact
 * of the summary, and the MCID flags exactly where reached.
 */
async function expectReceived(x: Expected, r: MockReceiver = receiver): Promise<Communication> {
  await waitFor(`the ${x.code} Communication at the receiver`, () => !!delivered(r, x.identifier), WAIT_MS);
  const got = delivered(r, x.identifier) as Communication;
  expect(got).toEqual(expectedCommunication(x));

  const validation = sharedValidator().validate(got, { profiles: [PROFILE] });
  expect(validation.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal')).toEqual([]);

  const stored = await read<Communication>(`Communication/${got.id}`);
  expect(stored).toEqual(got);
  const same = await search<Communication>(
    `Communication?identifier=${encodeURIComponent(`${IDENTIFIER_SYSTEM}|${x.identifier}`)}`,
  );
  expect(same.map((c) => c.id)).toEqual([got.id]);

  const document = htmlOf(got);
  expect(document.startsWith('<!DOCTYPE html>\n<html lang="en">')).toBe(true);
  expect(document).toContain(`<title>${summaryOf(x).split('\n')[0]}</title>`);
  const seen = visibleText(document);
  for (const line of summaryOf(x)
    .split('\n')
    .filter((l) => l.trim())) {
    for (const fact of facts(line)) expect(seen, line).toContain(fact);
  }
  const outcomeLabels = summaryOf(x)
    .split('\n')
    .filter((l) => / is better\): /.test(l))
    .map((l) => l.replace(/^- /, '').split(': ')[0]);
  expect([...changeCells(document).keys()]).toEqual(outcomeLabels);
  const flagged = [...changeCells(document)]
    .filter(([, change]) => change.includes('MCID'))
    .map(([label, change]) => [label, change.match(/\(MCID of ([\d.]+) reached\)/)?.[1]]);
  expect(Object.fromEntries(flagged)).toEqual(
    Object.fromEntries(Object.entries(x.mcid).map(([label, value]) => [label, String(value)])),
  );
  const summary = got.payload?.[0]?.contentString as string;
  expect(summary.match(/MCID of/g)?.length ?? 0).toBe(Object.keys(x.mcid).length);
  return got;
}

/** Re-sending what caused an event stores no second Communication (and so notifies nobody). */
async function expectNothingNew(resend: () => Promise<unknown>): Promise<void> {
  const before = await communicationCount();
  await resend();
  expect(await communicationCount()).toBe(before);
}

/** Identifiers of the Communications the main referrer was sent, in the order they happened. */
const sentInOrder: string[] = [];

async function received(x: Expected, r?: MockReceiver): Promise<Communication> {
  const c = await expectReceived(x, r);
  if (!r || r === receiver) sentInOrder.push(x.identifier);
  return c;
}

// ---------------------------------------------------------------------------------------------

describe('progress events: the Communication the referrer receives for each event', () => {
  beforeAll(async () => {
    app = await listenProgressApp({ now: '2026-03-01T08:00:00Z', progressReportEveryVisits: 3 });
    app.worker.start();
    receiver = await startMockReceiver({ secret: SECRET });
    selectiveReceiver = await startMockReceiver({ secret: SECRET });

    // The practice's phone is on its Organization; updates sign off with it.
    const practice = await read<Resource & { telecom?: unknown }>('Organization/practice');
    await update({ ...practice, telecom: [{ system: 'phone', value: '(319) 555-0188', use: 'work' }] });
    // The referrers are known before they refer: their referral Bundles' conditional creates find them.
    await update({
      resourceType: 'Practitioner',
      id: 'priya-raman',
      identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1417623059' }],
      name: [{ use: 'official', family: 'Raman', given: ['Priya'], suffix: ['MD'] }],
    });
    await update({
      resourceType: 'PractitionerRole',
      id: 'priya-raman-cvfm',
      identifier: [{ system: 'https://cedarvalleyfm.example.org/practitioner-roles', value: 'CVFM-PR-022' }],
      active: true,
      practitioner: { reference: 'Practitioner/priya-raman', display: 'Priya Raman, MD' },
    });
    await update({
      resourceType: 'Practitioner',
      id: 'rachel-kim',
      extension: [
        { url: REFERRER_EVENTS, valueCode: 'referral-accepted' },
        { url: REFERRER_EVENTS, valueCode: 'cancellation' },
      ],
      identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1746209315' }],
      name: [{ use: 'official', family: 'Kim', given: ['Rachel'], suffix: ['PA-C'] }],
    });
    const subscription = await create(
      topicSubscription(receiver.url, { filter: `Communication?recipient=${PRIYA.reference}` }),
    );
    expect(subscription.status).toBe('active');
    subscriptionId = subscription.id as string;
    await create(
      topicSubscription(selectiveReceiver.url, { filter: `Communication?recipient=${RACHEL.reference}` }),
    );
  });

  afterAll(async () => {
    await app?.close();
    await receiver?.close();
    await selectiveReceiver?.close();
  });

  // Episode A, step by step; each step's ids are kept for the next.
  let a: Episode;
  const A = {
    appointment1: '',
    missed: '',
    ie: '',
    nprsIe: '',
    lefsIe: '',
    visit3: '',
    nprs3: '',
    reEval: '',
    nprsRe: '',
    lefsRe: '',
    discharge: '',
    nprsDc: '',
    lefsDc: '',
  };
  const KNEE_LINE =
    'Your referral of 2 Mar 2026 (ref. CVFM-RF-26-03117): ' +
    'Physical therapy: exercise therapy for right knee osteoarthritis';
  const goalsCited = (): Cited[] => [
    [`Goal/${GOAL_IDS.walk}`, WALK],
    [`Goal/${GOAL_IDS.stairs}`, STAIRS],
  ];
  const planCited: Cited = [`CarePlan/${CARE_PLAN_ID}`, PLAN_TITLE];
  const nprsCited = (id: string, date: string): Cited => [id, `Numeric Pain Rating Scale (NPRS), ${date}`];
  const lefsCited = (id: string, date: string): Cited => [
    id,
    `Lower Extremity Functional Scale (LEFS), ${date}`,
  ];

  it('referral-received: intake of the fixture referral acknowledges it to the referrer', async () => {
    at('2026-03-02T15:40:00Z');
    const bundle = readFixture<Bundle>('Bundle-referral-knee-osteoarthritis.json');
    a = await intake(bundle, 'Harold Whitfield (DOB 2 Apr 1961)', KNEE_LINE);
    expect(a.referral.requester).toEqual(PRIYA);
    expect(a.task.status).toBe('received');

    await received({
      episode: a,
      code: 'referral-received',
      display: 'Referral received',
      identifier: `${a.episode.id}/referral-received/Task/${a.task.id}/_history/1`,
      sent: '2026-03-02T15:40:00Z',
      paragraphs: [
        'Thank you for your referral. Riverside Physical Therapy received it on 2 Mar 2026. ' +
          'We will review it and let you know whether we can accept it.',
      ],
      cited: [],
      mcid: {},
    });
    // The referrer's system re-sends the same referral: recognised, nothing new.
    await expectNothingNew(() => transaction(bundle.entry ?? []));
  });

  it('referral-accepted: the practice accepts the Task', async () => {
    at('2026-03-03T14:05:00Z');
    const task = await moveTask(a, { status: 'accepted' });
    expect(task.meta?.versionId).toBe('2');

    await received({
      episode: a,
      code: 'referral-accepted',
      display: 'Referral accepted',
      identifier: `${a.episode.id}/referral-accepted/Task/${a.task.id}/_history/2`,
      sent: '2026-03-03T14:05:00Z',
      paragraphs: [
        'Riverside Physical Therapy accepted the referral on 3 Mar 2026. ' +
          'We will contact the patient to book the first visit and let you know when it is booked.',
      ],
      cited: [],
      mcid: {},
    });
    await expectNothingNew(() => moveTask(a, { status: 'accepted' }));
  });

  it('appointment-booked: the first booked visit, with its date and time', async () => {
    at('2026-03-03T16:30:00Z');
    const booked = await create(appointment(a, '2026-03-09', 'booked'));
    A.appointment1 = `Appointment/${booked.id}`;

    await received({
      episode: a,
      code: 'appointment-booked',
      display: 'First appointment booked',
      identifier: `${a.episode.id}/appointment-booked/${A.appointment1}`,
      sent: '2026-03-03T16:30:00Z',
      paragraphs: ['The first visit at Riverside Physical Therapy is booked for 9 Mar 2026 15:00 UTC.'],
      cited: [],
      mcid: {},
    });
    await expectNothingNew(() => update(booked));
  });

  it('initial-evaluation: the visit with NPRS, LEFS, goals and plan of care in one transaction', async () => {
    at('2026-03-09T16:05:00Z');
    const encounter = 'urn:uuid:3f0b6c9e-5a41-4d0f-9a57-1c2b7e9d4a10';
    const booked = await read<Appointment>(A.appointment1);
    const response = await transaction([
      {
        fullUrl: encounter,
        resource: visitEncounter(a, 'initial-evaluation', '2026-03-09', A.appointment1),
        request: { method: 'POST', url: 'Encounter' },
      },
      { resource: nprs(a, encounter, '2026-03-09', 6), request: { method: 'POST', url: 'Observation' } },
      { resource: lefs(a, encounter, '2026-03-09', 38), request: { method: 'POST', url: 'Observation' } },
      ...goalEntries(a, 'in-progress', 'in-progress'),
      {
        resource: carePlan(a, encounter, 'active'),
        request: { method: 'PUT', url: `CarePlan/${CARE_PLAN_ID}` },
      },
      {
        resource: { ...booked, status: 'fulfilled', meta: undefined },
        request: { method: 'PUT', url: A.appointment1 },
      },
    ]);
    A.ie = locationAt(response, 0);
    A.nprsIe = locationAt(response, 1);
    A.lefsIe = locationAt(response, 2);
    a = await refresh(a);
    expect(a.task.status).toBe('in-progress');
    expect(a.episode.status).toBe('active');

    await received({
      episode: a,
      code: 'initial-evaluation',
      display: 'Initial evaluation',
      identifier: `${a.episode.id}/initial-evaluation/${A.ie}`,
      encounter: A.ie,
      sent: '2026-03-09T16:05:00Z',
      paragraphs: [
        'Riverside Physical Therapy completed the initial evaluation on 9 Mar 2026.',
        ['Outcome measures:', `- ${NPRS}: 6/10 on 9 Mar 2026`, `- ${LEFS}: 38/80 on 9 Mar 2026`],
        [
          'Goals:',
          `- ${WALK} (target date 17 Apr 2026): in progress`,
          `- ${STAIRS} (target date 17 Apr 2026): in progress`,
        ],
        PLAN,
        'Attendance: 1 of 12 planned visits attended; no missed visits.',
      ],
      cited: [
        nprsCited(A.nprsIe, '9 Mar 2026'),
        lefsCited(A.lefsIe, '9 Mar 2026'),
        ...goalsCited(),
        planCited,
      ],
      mcid: {},
    });
    const ie = await read<Encounter>(A.ie);
    await expectNothingNew(() => update(ie));
  });

  it('no-show: a missed visit, with attendance against the plan of care', async () => {
    at('2026-03-09T16:10:00Z');
    const next = await create(appointment(a, '2026-03-12', 'booked'));
    A.missed = `Appointment/${next.id}`;
    at('2026-03-12T15:30:00Z');
    const missed = await update({ ...next, status: 'noshow' });

    await received({
      episode: a,
      code: 'no-show',
      display: 'No-show',
      identifier: `${a.episode.id}/no-show/${A.missed}`,
      sent: '2026-03-12T15:30:00Z',
      paragraphs: [
        'The patient did not attend the visit booked for 12 Mar 2026 15:00 UTC. ' +
          'We will contact the patient to offer another appointment.',
        'Attendance: 1 of 12 planned visits attended; 1 missed visit (no-show on 12 Mar 2026).',
      ],
      cited: [planCited],
      mcid: {},
    });
    await expectNothingNew(() => update(missed));
  });

  it('progress-report: every 3 attended visits, the scores since the initial evaluation', async () => {
    // The missed visit is rebooked for the next day: routine, the referrer is not told.
    at('2026-03-12T15:45:00Z');
    await expectNothingNew(() => create(appointment(a, '2026-03-13', 'booked')));
    // Visit 2: nothing to report yet.
    at('2026-03-13T16:05:00Z');
    await expectNothingNew(() => create(visitEncounter(a, 'treatment', '2026-03-13')));
    // Visit 3, with a pain score: the progress report is due.
    at('2026-03-16T16:05:00Z');
    const encounter = 'urn:uuid:8d1e2f3a-4b5c-4d6e-8f70-91a2b3c4d5e6';
    const response = await transaction([
      {
        fullUrl: encounter,
        resource: visitEncounter(a, 'treatment', '2026-03-16'),
        request: { method: 'POST', url: 'Encounter' },
      },
      { resource: nprs(a, encounter, '2026-03-16', 5), request: { method: 'POST', url: 'Observation' } },
    ]);
    A.visit3 = locationAt(response, 0);
    A.nprs3 = locationAt(response, 1);

    await received({
      episode: a,
      code: 'progress-report',
      display: 'Progress report',
      identifier: `${a.episode.id}/progress-report/${A.visit3}`,
      encounter: A.visit3,
      sent: '2026-03-16T16:05:00Z',
      paragraphs: [
        'Progress report as of 16 Mar 2026, after 3 attended visits.',
        [
          'Outcome measures:',
          // Improved by 1 of the 2 points needed: no MCID flag.
          `- ${NPRS}: 5/10 on 16 Mar 2026; 6/10 at the initial evaluation on 9 Mar 2026; improved by 1 point`,
          `- ${LEFS}: 38/80 on 9 Mar 2026`,
        ],
        [
          'Goals:',
          `- ${WALK} (target date 17 Apr 2026): in progress`,
          `- ${STAIRS} (target date 17 Apr 2026): in progress`,
        ],
        'Attendance: 3 of 12 planned visits attended; 1 missed visit (no-show on 12 Mar 2026).',
      ],
      cited: [
        nprsCited(A.nprs3, '16 Mar 2026'),
        nprsCited(A.nprsIe, '9 Mar 2026'),
        lefsCited(A.lefsIe, '9 Mar 2026'),
        ...goalsCited(),
        planCited,
      ],
      mcid: {},
    });
    const visit3 = await read<Encounter>(A.visit3);
    await expectNothingNew(() => update(visit3));
  });

  it('re-evaluation: NPRS improved by 3 (MCID of 2 reached), LEFS by 6 (MCID of 9 not reached)', async () => {
    at('2026-03-23T16:05:00Z');
    const encounter = 'urn:uuid:0c7d9a52-61e3-4b8f-a2d4-5e6f70819a2b';
    const response = await transaction([
      {
        fullUrl: encounter,
        resource: visitEncounter(a, 're-evaluation', '2026-03-23'),
        request: { method: 'POST', url: 'Encounter' },
      },
      { resource: nprs(a, encounter, '2026-03-23', 3), request: { method: 'POST', url: 'Observation' } },
      { resource: lefs(a, encounter, '2026-03-23', 44), request: { method: 'POST', url: 'Observation' } },
      ...goalEntries(a, 'improving', 'in-progress'),
    ]);
    A.reEval = locationAt(response, 0);
    A.nprsRe = locationAt(response, 1);
    A.lefsRe = locationAt(response, 2);

    await received({
      episode: a,
      code: 're-evaluation',
      display: 'Re-evaluation',
      identifier: `${a.episode.id}/re-evaluation/${A.reEval}`,
      encounter: A.reEval,
      sent: '2026-03-23T16:05:00Z',
      paragraphs: [
        'Riverside Physical Therapy completed a re-evaluation on 23 Mar 2026.',
        [
          'Outcome measures:',
          `- ${NPRS}: 3/10 on 23 Mar 2026; 6/10 at the initial evaluation on 9 Mar 2026; ` +
            'improved by 3 points (MCID of 2 reached)',
          `- ${LEFS}: 44/80 on 23 Mar 2026; 38/80 at the initial evaluation on 9 Mar 2026; improved by 6 points`,
        ],
        [
          'Goals:',
          `- ${WALK} (target date 17 Apr 2026): improving`,
          `- ${STAIRS} (target date 17 Apr 2026): in progress`,
        ],
        PLAN,
        'Attendance: 4 of 12 planned visits attended; 1 missed visit (no-show on 12 Mar 2026).',
      ],
      cited: [
        nprsCited(A.nprsRe, '23 Mar 2026'),
        nprsCited(A.nprsIe, '9 Mar 2026'),
        lefsCited(A.lefsRe, '23 Mar 2026'),
        lefsCited(A.lefsIe, '9 Mar 2026'),
        ...goalsCited(),
        planCited,
      ],
      mcid: { [NPRS]: 2 },
    });
    const reEval = await read<Encounter>(A.reEval);
    await expectNothingNew(() => update(reEval));
  });

  it('progress-report on request: $progress-report on the episode', async () => {
    at('2026-03-24T10:00:00Z');
    const answer = await ok(
      fhir<Communication>('POST', `EpisodeOfCare/${a.episode.id}/$progress-report`, {
        resourceType: 'Parameters',
      }),
      [200],
    );
    const identifier = `${a.episode.id}/progress-report/EpisodeOfCare/${a.episode.id}/_history/2026-03-24T10:00:00Z`;
    const got = await received({
      episode: a,
      code: 'progress-report',
      display: 'Progress report',
      identifier,
      sent: '2026-03-24T10:00:00Z',
      paragraphs: [
        'Progress report as of 24 Mar 2026, after 4 attended visits.',
        [
          'Outcome measures:',
          `- ${NPRS}: 3/10 on 23 Mar 2026; 6/10 at the initial evaluation on 9 Mar 2026; ` +
            'improved by 3 points (MCID of 2 reached)',
          `- ${LEFS}: 44/80 on 23 Mar 2026; 38/80 at the initial evaluation on 9 Mar 2026; improved by 6 points`,
        ],
        [
          'Goals:',
          `- ${WALK} (target date 17 Apr 2026): improving`,
          `- ${STAIRS} (target date 17 Apr 2026): in progress`,
        ],
        'Attendance: 4 of 12 planned visits attended; 1 missed visit (no-show on 12 Mar 2026).',
      ],
      cited: [
        nprsCited(A.nprsRe, '23 Mar 2026'),
        nprsCited(A.nprsIe, '9 Mar 2026'),
        lefsCited(A.lefsRe, '23 Mar 2026'),
        lefsCited(A.lefsIe, '9 Mar 2026'),
        ...goalsCited(),
        planCited,
      ],
      mcid: { [NPRS]: 2 },
    });
    // The operation answers the Communication it sent.
    expect(answer).toEqual(got);
    // The same request again at the same instant is the same report.
    await expectNothingNew(async () => {
      const again = await ok(
        fhir<Communication>('POST', `EpisodeOfCare/${a.episode.id}/$progress-report`, {
          resourceType: 'Parameters',
        }),
        [200],
      );
      expect(again.id).toBe(got.id);
    });
  });

  it('discharge: the discharge visit completes the Task and finishes the episode', async () => {
    at('2026-04-17T16:05:00Z');
    const encounter = 'urn:uuid:5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d';
    const response = await transaction([
      {
        fullUrl: encounter,
        resource: visitEncounter(a, 'discharge', '2026-04-17'),
        request: { method: 'POST', url: 'Encounter' },
      },
      { resource: nprs(a, encounter, '2026-04-17', 2), request: { method: 'POST', url: 'Observation' } },
      { resource: lefs(a, encounter, '2026-04-17', 52), request: { method: 'POST', url: 'Observation' } },
      ...goalEntries(a, 'achieved', 'achieved'),
      {
        resource: carePlan(a, A.ie, 'completed'),
        request: { method: 'PUT', url: `CarePlan/${CARE_PLAN_ID}` },
      },
    ]);
    A.discharge = locationAt(response, 0);
    A.nprsDc = locationAt(response, 1);
    A.lefsDc = locationAt(response, 2);
    a = await refresh(a);
    expect(a.task.status).toBe('completed');
    expect(a.task.businessStatus?.coding?.[0]).toMatchObject({ system: BUSINESS_STATUS, code: 'discharged' });
    expect(a.episode.status).toBe('finished');
    expect(a.referral.status).toBe('completed');

    await received({
      episode: a,
      code: 'discharge',
      display: 'Discharge',
      identifier: `${a.episode.id}/discharge/${A.discharge}`,
      encounter: A.discharge,
      sent: '2026-04-17T16:05:00Z',
      paragraphs: [
        'Riverside Physical Therapy discharged the patient from physical therapy on 17 Apr 2026.',
        [
          'Outcome measures:',
          `- ${NPRS}: 2/10 on 17 Apr 2026; 6/10 at the initial evaluation on 9 Mar 2026; ` +
            'improved by 4 points (MCID of 2 reached)',
          `- ${LEFS}: 52/80 on 17 Apr 2026; 38/80 at the initial evaluation on 9 Mar 2026; ` +
            'improved by 14 points (MCID of 9 reached)',
        ],
        [
          'Goals:',
          `- ${WALK} (target date 17 Apr 2026): achieved`,
          `- ${STAIRS} (target date 17 Apr 2026): achieved`,
        ],
        'Attendance: 5 of 12 planned visits attended; 1 missed visit (no-show on 12 Mar 2026).',
      ],
      cited: [
        nprsCited(A.nprsDc, '17 Apr 2026'),
        nprsCited(A.nprsIe, '9 Mar 2026'),
        lefsCited(A.lefsDc, '17 Apr 2026'),
        lefsCited(A.lefsIe, '9 Mar 2026'),
        ...goalsCited(),
        planCited,
      ],
      mcid: { [NPRS]: 2, [LEFS]: 9 },
    });
    const discharge = await read<Encounter>(A.discharge);
    await expectNothingNew(() => update(discharge));
  });

  it('referral-declined: a second referral, declined with a coded reason and advice', async () => {
    at('2026-04-20T16:00:00Z');
    const b = await intake(
      kneeReferralFor({
        family: 'Lindgren',
        given: ['Margaret'],
        birthDate: '1958-09-14',
        mrn: 'CV-0081377',
        number: 'CVFM-RF-26-04410',
        authoredOn: '2026-04-20T10:05:00-05:00',
      }),
      'Margaret Lindgren (DOB 14 Sep 1958)',
      'Your referral of 20 Apr 2026 (ref. CVFM-RF-26-04410): ' +
        'Physical therapy: exercise therapy for right knee osteoarthritis',
    );
    await received({
      episode: b,
      code: 'referral-received',
      display: 'Referral received',
      identifier: `${b.episode.id}/referral-received/Task/${b.task.id}/_history/1`,
      sent: '2026-04-20T16:00:00Z',
      paragraphs: [
        'Thank you for your referral. Riverside Physical Therapy received it on 20 Apr 2026. ' +
          'We will review it and let you know whether we can accept it.',
      ],
      cited: [],
      mcid: {},
    });

    at('2026-04-21T09:30:00Z');
    const declined = await moveTask(b, {
      status: 'rejected',
      statusReason: { coding: [{ system: DECLINE, code: 'no-capacity', display: 'No capacity' }] },
      note: [{ text: ADVICE }],
    });
    expect(declined.businessStatus?.coding?.[0]?.code).toBe('declined');
    expect((await read<EpisodeOfCare>(`EpisodeOfCare/${b.episode.id}`)).status).toBe('cancelled');

    await received({
      episode: b,
      code: 'referral-declined',
      display: 'Referral declined',
      identifier: `${b.episode.id}/referral-declined/Task/${b.task.id}/_history/2`,
      sent: '2026-04-21T09:30:00Z',
      paragraphs: [
        'We are sorry that Riverside Physical Therapy is unable to accept this referral (decided 21 Apr 2026).',
        'Reason: No capacity.',
        `Advice: ${ADVICE}`,
        'Please contact us if you would like to discuss this decision.',
      ],
      cited: [],
      mcid: {},
    });
    await expectNothingNew(() => update(declined));
  });

  it('cancellation: a third referral, revoked by the referrer', async () => {
    at('2026-04-22T15:00:00Z');
    const c = await intake(
      kneeReferralFor({
        family: 'Ortega',
        given: ['Luis'],
        birthDate: '1970-01-23',
        mrn: 'CV-0090512',
        number: 'CVFM-RF-26-04521',
        authoredOn: '2026-04-22T08:40:00-05:00',
      }),
      'Luis Ortega (DOB 23 Jan 1970)',
      'Your referral of 22 Apr 2026 (ref. CVFM-RF-26-04521): ' +
        'Physical therapy: exercise therapy for right knee osteoarthritis',
    );
    await received({
      episode: c,
      code: 'referral-received',
      display: 'Referral received',
      identifier: `${c.episode.id}/referral-received/Task/${c.task.id}/_history/1`,
      sent: '2026-04-22T15:00:00Z',
      paragraphs: [
        'Thank you for your referral. Riverside Physical Therapy received it on 22 Apr 2026. ' +
          'We will review it and let you know whether we can accept it.',
      ],
      cited: [],
      mcid: {},
    });

    at('2026-04-23T08:15:00Z');
    const revoked = await update({ ...c.referral, status: 'revoked' });
    expect(revoked.meta?.versionId).toBe('2');
    const now = await refresh(c);
    expect(now.task.status).toBe('cancelled');
    expect(now.episode.status).toBe('cancelled');

    await received({
      episode: c,
      code: 'cancellation',
      display: 'Referral cancelled',
      identifier: `${c.episode.id}/cancellation/ServiceRequest/${c.referral.id}/_history/2`,
      sent: '2026-04-23T08:15:00Z',
      paragraphs: [
        'This confirms that the referral was cancelled on 23 Apr 2026 by Priya Raman, MD.',
        'No visits had taken place.',
      ],
      cited: [],
      mcid: {},
    });
    await expectNothingNew(() => update(revoked));
  });

  it('the referrer received exactly one Communication per event, in order, with gap-free event numbers', async () => {
    expect(sentInOrder).toHaveLength(13);
    const stored = await search<Communication>(`Communication?recipient=${PRIYA.reference}&_count=100`);
    expect(stored).toHaveLength(13);
    // Nothing more arrives: the receiver holds exactly the stored Communications, each once.
    await waitFor('every notification', () => receiver.received.length >= 13, WAIT_MS);
    expect(receiver.duplicates).toBe(0);
    expect(receiver.refused).toBe(0);
    expect([...receiver.unique.keys()]).toEqual(sentInOrder.map((v) => `${IDENTIFIER_SYSTEM}|${v}`));
    expect(receiver.received.map((n) => n.type)).toEqual(Array(13).fill('event-notification'));
    expect(receiver.received.every((n) => n.signatureValid)).toBe(true);
    expect(receiver.received.flatMap((n) => n.eventNumbers)).toEqual(
      Array.from({ length: 13 }, (_, i) => i + 1),
    );
    expect(receiver.received.flatMap((n) => n.communicationIdentifiers)).toEqual(
      sentInOrder.map((v) => `${IDENTIFIER_SYSTEM}|${v}`),
    );
    expect(new Set(stored.map((c) => `${IDENTIFIER_SYSTEM}|${c.identifier?.[0]?.value}`))).toEqual(
      new Set(receiver.unique.keys()),
    );
    // $status agrees: 13 events since the subscription started.
    const status = await ok(fhir<Bundle>('GET', `Subscription/${subscriptionId}/$status`), [200]);
    const parameters = status.entry?.[0]?.resource as Parameters;
    expect(parameters.parameter?.find((p) => p.name === 'events-since-subscription-start')?.valueString).toBe(
      '13',
    );
  });

  it('a referrer whose Practitioner lists the events it wants receives only those', async () => {
    // Rachel Kim's Practitioner lists referral-accepted and cancellation (set up in beforeAll).
    const priyaBefore = await search<Communication>(`Communication?recipient=${PRIYA.reference}&_count=100`);
    const receivedBefore = receiver.received.length;

    at('2026-04-24T14:00:00Z');
    const d = await intake(
      readFixture<Bundle>('Bundle-referral-ankle-sprain.json'),
      'Jamal Whitaker (DOB 17 May 2001)',
      'Your referral of 11 Apr 2026 (ref. LUC-REF-0411-0093): ' +
        'Physical therapy evaluation and treatment: lateral ankle sprain',
    );
    expect(d.referral.requester).toEqual(RACHEL);
    const forReferral = () => search<Communication>(`Communication?based-on=ServiceRequest/${d.referral.id}`);
    // referral-received is not on her list: not composed, so neither stored nor sent.
    expect(await forReferral()).toEqual([]);

    at('2026-04-24T15:10:00Z');
    await moveTask(d, { status: 'accepted' });
    const accepted = await received(
      {
        episode: d,
        code: 'referral-accepted',
        display: 'Referral accepted',
        identifier: `${d.episode.id}/referral-accepted/Task/${d.task.id}/_history/2`,
        sent: '2026-04-24T15:10:00Z',
        paragraphs: [
          'Riverside Physical Therapy accepted the referral on 24 Apr 2026. ' +
            'We will contact the patient to book the first visit and let you know when it is booked.',
        ],
        cited: [],
        mcid: {},
        recipient: RACHEL,
      },
      selectiveReceiver,
    );

    // appointment-booked is not on her list either.
    at('2026-04-24T15:20:00Z');
    await expectNothingNew(() => create(appointment(d, '2026-04-28', 'booked')));
    expect((await read<Task>(`Task/${d.task.id}`)).businessStatus?.coding?.[0]?.code).toBe(
      'appointment-booked',
    );

    at('2026-04-25T09:00:00Z');
    await update({ ...(await read<ServiceRequest>(`ServiceRequest/${d.referral.id}`)), status: 'revoked' });
    const cancelled = await received(
      {
        episode: d,
        code: 'cancellation',
        display: 'Referral cancelled',
        identifier: `${d.episode.id}/cancellation/ServiceRequest/${d.referral.id}/_history/2`,
        sent: '2026-04-25T09:00:00Z',
        paragraphs: [
          'This confirms that the referral was cancelled on 25 Apr 2026 by Rachel Kim, PA-C.',
          'No visits had taken place.',
        ],
        cited: [],
        mcid: {},
        recipient: RACHEL,
      },
      selectiveReceiver,
    );

    expect((await forReferral()).map((c) => c.id)).toEqual([accepted.id, cancelled.id]);
    expect(selectiveReceiver.received.flatMap((n) => n.eventNumbers)).toEqual([1, 2]);
    expect(selectiveReceiver.duplicates).toBe(0);
    expect(selectiveReceiver.refused).toBe(0);
    expect([...selectiveReceiver.unique.values()].map((c) => c?.category?.[0]?.coding?.[0]?.code)).toEqual([
      'referral-accepted',
      'cancellation',
    ]);
    // The first referrer's subscription heard nothing of it.
    expect(await search<Communication>(`Communication?recipient=${PRIYA.reference}&_count=100`)).toEqual(
      priyaBefore,
    );
    expect(receiver.received.length).toBe(receivedBefore);
  });
});
