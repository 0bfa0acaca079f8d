import type {
  Bundle,
  BundleEntry,
  EpisodeOfCare,
  OperationOutcome,
  Patient,
  Resource,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import type { Express } from 'express';
import request, { type Response } from 'supertest';
import { expect } from 'vitest';
import { ERROR_CODE_SYSTEM, type ErrorCode, ERROR_CODES } from '../../src/fhir/errors.js';
import { FHIR_JSON } from '../support/test-app.js';

/** Shared helpers for the HTTP suite: real requests through supertest, no mocks. */

export const SNOMED = 'http://snomed.info/sct';
export const MRN_SYSTEM = 'http://hospital.example.org/fhir/sid/mrn';
export const NPI_SYSTEM = 'http://hl7.org/fhir/sid/us-npi';

export function postResource(
  app: Express,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return request(app)
    .post(path)
    .set({ 'content-type': FHIR_JSON, ...headers })
    .send(JSON.stringify(body));
}

export function putResource(app: Express, path: string, body: unknown, headers: Record<string, string> = {}) {
  return request(app)
    .put(path)
    .set({ 'content-type': FHIR_JSON, ...headers })
    .send(JSON.stringify(body));
}

/** POSTs a batch or transaction Bundle to the base URL. */
export function postBundle(t: { app: Express }, bundle: unknown, headers: Record<string, string> = {}) {
  return request(t.app)
    .post('/fhir')
    .set({ 'content-type': FHIR_JSON, ...headers })
    .send(JSON.stringify(bundle));
}

export const transaction = (entry: BundleEntry[]): Bundle => ({
  resourceType: 'Bundle',
  type: 'transaction',
  entry,
});
export const batch = (entry: BundleEntry[]): Bundle => ({ resourceType: 'Bundle', type: 'batch', entry });

/** Creates a resource and returns it as stored (asserting the 201). */
export async function create<T extends Resource>(app: Express, resource: T): Promise<T> {
  const res = await postResource(app, `/fhir/${resource.resourceType}`, resource);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as T;
}

/** Number of versions ever written, server-wide: any write (create, update, delete) raises it. */
export async function versionCount(app: Express): Promise<number> {
  const res = await request(app).get('/fhir/_history?_count=0');
  expect(res.status).toBe(200);
  return (res.body as Bundle).total as number;
}

/** Current (not deleted) resources of one type. */
export async function resourceCount(app: Express, resourceType: string): Promise<number> {
  const res = await request(app).get(`/fhir/${resourceType}?_summary=count`);
  expect(res.status).toBe(200);
  return (res.body as Bundle).total as number;
}

/** Runs `act` and asserts that it wrote nothing anywhere (system history unchanged). */
export async function expectNothingWritten(app: Express, act: () => Promise<Response>): Promise<Response> {
  const before = await versionCount(app);
  const res = await act();
  expect(await versionCount(app)).toBe(before);
  return res;
}

/** Text that must never reach a client: stack frames, file paths, library and engine internals. */
const INTERNAL_TEXT =
  /\n\s+at |node_modules|\/src\/|\.ts:\d|\.js:\d|SQLITE|sqlite|better-sqlite|TypeError|ReferenceError|SyntaxError|Unexpected token|Cannot read prop/;

/**
 * Asserts an error answer: its status, `issue[0].code`, the stable service code in
 * `issue[0].details.coding[0]`, and that it carries no internals.
 */
export function expectOutcome(
  res: Response,
  status: number,
  issueCode: string,
  errorCode: ErrorCode,
): OperationOutcome {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  const outcome = res.body as OperationOutcome;
  expect(outcome.resourceType).toBe('OperationOutcome');
  const first = outcome.issue?.[0];
  expect(first?.severity).toBe('error');
  expect(first?.code).toBe(issueCode);
  expect(first?.details?.coding?.[0]).toEqual({ system: ERROR_CODE_SYSTEM, code: errorCode });
  expect(ERROR_CODES[errorCode].status).toBe(status);
  expectNoInternals(res);
  return outcome;
}

export function expectNoInternals(res: Response): void {
  expect(res.status).toBeLessThan(500);
  expect(res.text ?? '').not.toMatch(INTERNAL_TEXT);
  for (const issue of (res.body as OperationOutcome)?.issue ?? []) {
    expect(issue.diagnostics).toBeUndefined();
  }
}

/** Path and query of an absolute link from a Bundle, to follow it with supertest. */
export function pathOf(url: string): string {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}

export function link(bundle: Bundle, relation: string): string | undefined {
  return bundle.link?.find((l) => l.relation === relation)?.url;
}

export function ids(bundle: Bundle, mode: 'match' | 'include' | 'outcome' = 'match'): string[] {
  return (bundle.entry ?? [])
    .filter((e) => e.search?.mode === mode)
    .map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- FHIR-realistic data for a physical-therapy referral ----

let counter = 0;
const unique = (): string => `${Date.now().toString(36)}${(counter++).toString(36)}`;

export function patient(overrides: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    identifier: [{ system: MRN_SYSTEM, value: `MRN-${unique()}` }],
    active: true,
    name: [{ use: 'official', family: 'Okafor', given: ['Adaeze'] }],
    gender: 'female',
    birthDate: '1968-04-12',
    ...overrides,
  };
}

export function practitioner(family = 'Lindqvist', npi = `1${Math.floor(Math.random() * 1e9)}`): Resource {
  return {
    resourceType: 'Practitioner',
    identifier: [{ system: NPI_SYSTEM, value: npi }],
    name: [{ family, given: ['Maja'], prefix: ['Dr.'] }],
    qualification: [{ code: { text: 'Doctor of Physical Therapy' } }],
  };
}

/** The practice Organization every test app creates at start-up (test/support/test-app.ts). */
export const PRACTICE_REF = 'Organization/practice';
export const REFERRAL_ID_SYSTEM = 'https://referrer.example.org/fhir/sid/referral';
export const TASK_CODE_SYSTEM = 'http://hl7.org/fhir/CodeSystem/task-code';

export interface ReferralParties {
  /** The referred patient: `Patient/id`, or the fullUrl of a Patient entry of the same Bundle. */
  subject: string;
  /** The referrer: `Practitioner/id` (or PractitionerRole, Organization), or a fullUrl. */
  requester: string;
  /** The referrer's identifier value; unique per call unless given (same value = a re-send). */
  identifierValue?: string;
}

/**
 * A referral for outpatient physical therapy that meets the referral profile
 * (profiles/source/pt-referral-servicerequest.json): active order, category Patient referral,
 * a PT service code, subject, requester, authoredOn, the referrer's identifier and a reason.
 * The subject and requester must exist on the server (or be created in the same transaction).
 */
export function referralServiceRequest(
  { subject, requester, identifierValue = `REF-${unique()}` }: ReferralParties,
  overrides: Partial<ServiceRequest> = {},
): ServiceRequest {
  return {
    resourceType: 'ServiceRequest',
    identifier: [{ system: REFERRAL_ID_SYSTEM, value: identifierValue }],
    status: 'active',
    intent: 'order',
    category: [{ coding: [{ system: SNOMED, code: '3457005', display: 'Patient referral' }] }],
    code: { coding: [{ system: SNOMED, code: '91251008', display: 'Physical therapy procedure' }] },
    subject: { reference: subject },
    requester: { reference: requester },
    authoredOn: '2024-03-05T09:30:00Z',
    reasonCode: [{ text: 'Left knee pain after arthroscopic meniscectomy' }],
    ...overrides,
  };
}

/** Creates a Patient and a referring Practitioner, the parties every referral needs. */
export async function createReferralParties(
  app: Express,
): Promise<{ patientRef: string; requesterRef: string }> {
  const pt = await create(app, patient());
  const dr = await create(app, practitioner());
  return { patientRef: `Patient/${pt.id}`, requesterRef: `Practitioner/${dr.id}` };
}

/**
 * A Task about a referral that the referral state machine does not govern (its code is not
 * `fulfill`): for generic REST behaviour such as `_include=Task:focus` or `_revinclude`.
 */
export function bookingTask(focusRef: string, extra: Partial<Task> = {}): Task {
  return {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    code: { text: 'Phone the patient to book the first visit' },
    focus: { reference: focusRef },
    authoredOn: '2024-03-05T09:31:00Z',
    ...extra,
  };
}

/** What the server writes with every new referral: its EpisodeOfCare and its fulfilment Task. */
export interface ReferralIntake {
  episodes: EpisodeOfCare[];
  tasks: Task[];
}

/** The EpisodeOfCare resources and referral (`fulfill`) Tasks that point at a ServiceRequest. */
export async function intakeOf(app: Express, serviceRequestRef: string): Promise<ReferralIntake> {
  const episodes = await request(app).get(`/fhir/EpisodeOfCare?incoming-referral=${serviceRequestRef}`);
  const tasks = await request(app).get(
    `/fhir/Task?focus=${serviceRequestRef}&code=${TASK_CODE_SYSTEM}|fulfill`,
  );
  expect(episodes.status, JSON.stringify(episodes.body)).toBe(200);
  expect(tasks.status, JSON.stringify(tasks.body)).toBe(200);
  return {
    episodes: ((episodes.body as Bundle).entry ?? []).map((e) => e.resource as EpisodeOfCare),
    tasks: ((tasks.body as Bundle).entry ?? []).map((e) => e.resource as Task),
  };
}

/**
 * Asserts that a referral produced exactly one EpisodeOfCare (waitlist, for the referral's
 * patient) and exactly one referral Task (received, fulfil, owned by the practice), both linked to it.
 */
export async function expectIntake(app: Express, referral: ServiceRequest): Promise<ReferralIntake> {
  const ref = `ServiceRequest/${referral.id}`;
  const intake = await intakeOf(app, ref);
  expect(intake.episodes).toHaveLength(1);
  expect(intake.tasks).toHaveLength(1);
  const [episode] = intake.episodes as [EpisodeOfCare];
  const [task] = intake.tasks as [Task];
  expect(episode.status).toBe('waitlist');
  expect(episode.referralRequest).toEqual([{ reference: ref }]);
  expect(episode.patient?.reference).toBe(referral.subject?.reference);
  expect(episode.managingOrganization?.reference).toBe(PRACTICE_REF);
  expect(task.status).toBe('received');
  expect(task.focus?.reference).toBe(ref);
  expect(task.for?.reference).toBe(referral.subject?.reference);
  expect(task.owner?.reference).toBe(PRACTICE_REF);
  // The referrer is told the referral arrived: one acknowledgement Communication.
  const acks = await request(app).get(`/fhir/Communication?based-on=${ref}&category=referral-received`);
  expect(
    acks.body.entry?.map(
      (e: { resource: { recipient?: { reference?: string }[] } }) => e.resource.recipient?.[0]?.reference,
    ),
  ).toEqual([referral.requester?.reference]);
  return intake;
}
