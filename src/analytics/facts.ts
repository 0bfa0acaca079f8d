import type {
  Appointment,
  CarePlan,
  CodeableConcept,
  Encounter,
  EpisodeOfCare,
  Observation,
  Reference,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import { measurementOf, type Measurement, type OutcomeMeasureId } from '../progress/outcome-measures.js';
import { plannedVisits } from '../progress/plan-of-care.js';
import { ENCOUNTER_TYPE_SYSTEM } from '../progress/progress-codes.js';
import { instantMs } from './period.js';
import { resolveReferrer, type ReferrerDirectory, type ReferrerIdentity } from './referrer.js';
import { round } from './stats.js';

/**
 * What happened to each referral, derived from the stored resources by one pure function. Every
 * measure is computed from these facts, so each rule below is stated once:
 *
 * - Referral: a ServiceRequest (not entered-in-error); its date is `authoredOn`.
 * - Triage: the referral Task's first version (in version order) that is accepted, in-progress,
 *   on-hold, completed or failed (accepted) or rejected (declined); a cancelled version first means
 *   cancelled before triage; none yet means pending. Its time (Task.lastModified, else
 *   meta.lastUpdated) is the **first contact**: the practice's answer to the referral.
 * - Booking: an Appointment based on the referral, in any status but proposed, pending, waitlist or
 *   entered-in-error. Booked when accepted and booked or seen; booked at the earliest
 *   Appointment.created, else when the Task first said appointment-booked.
 * - Visits: Encounters based on the referral or of its EpisodeOfCare that are arrived, in-progress
 *   or finished (when there are none, Appointments fulfilled, arrived or checked-in). The first
 *   visit is the earliest start among them, counted when the referral was accepted.
 * - Discharged: seen, and the Task completed; at the Task's first completed version (else the
 *   episode's end).
 * - Dropped off: closed otherwise (Task rejected, cancelled, failed, entered-in-error, or completed
 *   without a visit), at the furthest stage reached, with the Task's statusReason as why.
 * - Planned visits: the visit count of the episode's plan of care — a CarePlan whose encounter is
 *   one of the episode's visits, in force or not (a plan revoked when the patient stopped still
 *   planned its visits), the latest made; progress/plan-of-care.ts counts its visits — else the
 *   episode's Appointments not cancelled or entered-in-error.
 * - Appointments due: fulfilled, arrived, checked-in or noshow; no-shows: noshow.
 * - Outcomes (discharged referrals): each outcome measure (progress/outcome-measures.ts) recorded
 *   at the initial evaluation (the visit typed initial-evaluation, else the first visit; its earliest
 *   value) and at discharge (the visit typed discharge, else the last visit; its latest value),
 *   linked by Observation.encounter.
 */
export interface ReferralBatch {
  referrals: ServiceRequest[];
  episodes: EpisodeOfCare[];
  /** Every stored version of the referral Tasks (their history), the current one included. */
  taskVersions: Task[];
  appointments: Appointment[];
  encounters: Encounter[];
  observations: Observation[];
  carePlans: CarePlan[];
}

export type TriageOutcome = 'accepted' | 'declined' | 'cancelled' | 'pending';
export type FunnelStage = 'accepted' | 'booked' | 'first-visit' | 'discharged';
/** Where a referral stopped, or for an open one where it waits. */
export type WaitStage = 'triage' | 'booking' | 'first-visit' | 'treatment';

export interface Reason {
  /** `system|code`, or `text|…` for a reason given only as text. */
  key: string;
  system?: string;
  code?: string;
  display: string;
}

export interface OutcomeChange {
  measure: OutcomeMeasureId;
  site?: string;
  initial: number;
  final: number;
  /** final − initial, in the measure's unit. */
  change: number;
  /** The change in the measure's better direction. */
  improvement: number;
  /** Undefined for a measure without an MCID. */
  mcidReached?: boolean;
}

export interface ReferralFact {
  id: string;
  authoredMs: number;
  referrer: ReferrerIdentity;
  triage: TriageOutcome;
  triagedMs?: number;
  declineReason?: Reason;
  accepted: boolean;
  booked: boolean;
  bookedMs?: number;
  firstVisit: boolean;
  firstVisitMs?: number;
  discharged: boolean;
  dischargedMs?: number;
  state: 'open' | 'discharged' | 'dropped';
  /** Dropped: the stage not reached; open: the stage it waits at. */
  stage?: WaitStage;
  dropReason?: Reason;
  visitsAttended: number;
  visitsPlanned?: number;
  appointmentsDue: number;
  noShows: number;
  outcomes: OutcomeChange[];
}

const ACCEPTED = new Set<Task['status']>(['accepted', 'in-progress', 'on-hold', 'completed', 'failed']);
const CLOSED = new Set<Task['status']>(['rejected', 'cancelled', 'failed', 'completed', 'entered-in-error']);
const NOT_A_BOOKING = new Set<Appointment['status']>(['proposed', 'pending', 'waitlist', 'entered-in-error']);
const NOT_PLANNED = new Set<Appointment['status']>(['cancelled', 'entered-in-error']);
const DUE = new Set<Appointment['status']>(['fulfilled', 'arrived', 'checked-in', 'noshow']);
const ATTENDED_APPOINTMENT = new Set<Appointment['status']>(['fulfilled', 'arrived', 'checked-in']);
const ATTENDED_ENCOUNTER = new Set<Encounter['status']>(['arrived', 'in-progress', 'finished']);
const BUSINESS_STATUS = 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-business-status';

export function referralFacts(batch: ReferralBatch, directory: ReferrerDirectory): ReferralFact[] {
  const by = indexBatch(batch);
  const facts: ReferralFact[] = [];
  for (const referral of batch.referrals) {
    if (!referral.id || referral.status === 'entered-in-error') continue;
    const authoredMs = instantMs(referral.authoredOn);
    if (authoredMs === undefined) continue;
    facts.push(
      factOf(
        referral,
        authoredMs,
        by,
        directory,
        referral.contained as Parameters<typeof resolveReferrer>[2],
      ),
    );
  }
  return facts;
}

interface BatchIndex {
  episodes: Map<string, EpisodeOfCare[]>;
  taskVersions: Map<string, Task[]>;
  appointments: Map<string, Appointment[]>;
  encountersByReferral: Map<string, Encounter[]>;
  encountersByEpisode: Map<string, Encounter[]>;
  observationsByEncounter: Map<string, Observation[]>;
  carePlansByEncounter: Map<string, CarePlan[]>;
}

function indexBatch(batch: ReferralBatch): BatchIndex {
  const episodes = new Map<string, EpisodeOfCare[]>();
  for (const e of batch.episodes) {
    for (const r of e.referralRequest ?? []) push(episodes, idOf(r, 'ServiceRequest'), e);
  }
  const taskVersions = new Map<string, Task[]>();
  for (const t of batch.taskVersions) {
    if (!isReferralTask(t)) continue;
    push(taskVersions, idOf(t.focus, 'ServiceRequest'), t);
  }
  const appointments = new Map<string, Appointment[]>();
  for (const a of batch.appointments) {
    for (const id of new Set((a.basedOn ?? []).map((r) => idOf(r, 'ServiceRequest'))))
      push(appointments, id, a);
  }
  const encountersByReferral = new Map<string, Encounter[]>();
  const encountersByEpisode = new Map<string, Encounter[]>();
  for (const e of batch.encounters) {
    for (const id of new Set((e.basedOn ?? []).map((r) => idOf(r, 'ServiceRequest')))) {
      push(encountersByReferral, id, e);
    }
    for (const id of new Set((e.episodeOfCare ?? []).map((r) => idOf(r, 'EpisodeOfCare')))) {
      push(encountersByEpisode, id, e);
    }
  }
  const observationsByEncounter = new Map<string, Observation[]>();
  for (const o of batch.observations) push(observationsByEncounter, idOf(o.encounter, 'Encounter'), o);
  const carePlansByEncounter = new Map<string, CarePlan[]>();
  for (const c of batch.carePlans) push(carePlansByEncounter, idOf(c.encounter, 'Encounter'), c);
  return {
    episodes,
    taskVersions,
    appointments,
    encountersByReferral,
    encountersByEpisode,
    observationsByEncounter,
    carePlansByEncounter,
  };
}

function factOf(
  referral: ServiceRequest,
  authoredMs: number,
  by: BatchIndex,
  directory: ReferrerDirectory,
  contained: Parameters<typeof resolveReferrer>[2],
): ReferralFact {
  const id = referral.id as string;
  const referrer = resolveReferrer(referral.requester, directory, contained);
  const versions = orderVersions(by.taskVersions.get(id) ?? []);
  const task = versions[versions.length - 1];
  const episodes = by.episodes.get(id) ?? [];

  // Triage: the first decisive version.
  let triage: TriageOutcome = 'pending';
  let triagedMs: number | undefined;
  for (const v of versions) {
    if (ACCEPTED.has(v.status) || v.status === 'rejected') {
      triage = v.status === 'rejected' ? 'declined' : 'accepted';
      triagedMs = versionTime(v);
      break;
    }
    if (v.status === 'cancelled' || v.status === 'entered-in-error') {
      triage = 'cancelled';
      break;
    }
  }
  const accepted = triage === 'accepted';
  const declineReason = triage === 'declined' ? reasonOf(task?.statusReason) : undefined;

  // Visits.
  const encounterMap = new Map<string, Encounter>();
  for (const e of by.encountersByReferral.get(id) ?? []) encounterMap.set(e.id as string, e);
  for (const episode of episodes) {
    for (const e of by.encountersByEpisode.get(episode.id as string) ?? [])
      encounterMap.set(e.id as string, e);
  }
  const encounters = [...encounterMap.values()];
  const attendedEncounters = encounters
    .filter((e) => ATTENDED_ENCOUNTER.has(e.status))
    .sort((a, b) => startOf(a) - startOf(b) || (a.id as string).localeCompare(b.id as string));
  const appointments = by.appointments.get(id) ?? [];
  const attendedAppointments = appointments.filter((a) => ATTENDED_APPOINTMENT.has(a.status));
  const visitsAttended = attendedEncounters.length || attendedAppointments.length;
  const visitStarts = [
    ...attendedEncounters.map((e) => instantMs(e.period?.start)),
    ...attendedAppointments.map((a) => instantMs(a.start)),
  ].filter((t): t is number => t !== undefined);
  const firstVisit = accepted && visitsAttended > 0;
  const firstVisitMs = firstVisit && visitStarts.length ? Math.min(...visitStarts) : undefined;

  // Booking.
  const bookings = appointments.filter((a) => !NOT_A_BOOKING.has(a.status));
  const booked = accepted && (bookings.length > 0 || firstVisit);
  let bookedMs: number | undefined;
  if (booked) {
    const created = bookings.map((a) => instantMs(a.created)).filter((t): t is number => t !== undefined);
    bookedMs = created.length
      ? Math.min(...created)
      : versionTime(versions.find((v) => businessStatusOf(v) === 'appointment-booked'));
  }

  // Discharge or drop-off.
  const status = task?.status;
  const discharged = firstVisit && status === 'completed';
  const dischargedMs = discharged
    ? (versionTime(versions.find((v) => v.status === 'completed')) ??
      instantMs(episodes.find((e) => e.period?.end)?.period?.end))
    : undefined;
  const reached: WaitStage = firstVisit
    ? 'treatment'
    : booked
      ? 'first-visit'
      : accepted
        ? 'booking'
        : 'triage';
  const closed =
    triage === 'declined' || triage === 'cancelled' || (status !== undefined && CLOSED.has(status));
  const noShows = appointments.filter((a) => a.status === 'noshow').length;
  let state: ReferralFact['state'] = 'open';
  let dropReason: Reason | undefined;
  if (discharged) {
    state = 'discharged';
  } else if (closed) {
    state = 'dropped';
    dropReason =
      (triage === 'declined' ? declineReason : undefined) ??
      reasonOf(task?.statusReason) ??
      (noShows > 0 && !firstVisit ? { key: 'no-show', display: 'No-show' } : undefined) ??
      closedWithoutReason(triage === 'cancelled' ? 'cancelled' : status);
  }

  // Plan and attendance.
  const encounterIds = encounters.map((e) => e.id as string);
  const plan = planOfCare(encounterIds.flatMap((e) => by.carePlansByEncounter.get(e) ?? []));
  const fromPlan = plan ? plannedVisits(plan) : undefined;
  const planned = appointments.filter((a) => !NOT_PLANNED.has(a.status)).length;
  const visitsPlanned = fromPlan ?? (planned > 0 ? planned : undefined);

  return {
    id,
    authoredMs,
    referrer,
    triage,
    ...(triagedMs !== undefined ? { triagedMs } : {}),
    ...(declineReason ? { declineReason } : {}),
    accepted,
    booked,
    ...(bookedMs !== undefined ? { bookedMs } : {}),
    firstVisit,
    ...(firstVisitMs !== undefined ? { firstVisitMs } : {}),
    discharged,
    ...(dischargedMs !== undefined ? { dischargedMs } : {}),
    state,
    ...(state !== 'discharged' ? { stage: reached } : {}),
    ...(dropReason ? { dropReason } : {}),
    visitsAttended,
    ...(visitsPlanned !== undefined ? { visitsPlanned } : {}),
    appointmentsDue: appointments.filter((a) => DUE.has(a.status)).length,
    noShows,
    outcomes: discharged ? outcomeChanges(attendedEncounters, by.observationsByEncounter) : [],
  };
}

function outcomeChanges(attended: Encounter[], byEncounter: Map<string, Observation[]>): OutcomeChange[] {
  if (attended.length < 2) return [];
  const initial =
    attended.find((e) => encounterType(e) === 'initial-evaluation') ?? (attended[0] as Encounter);
  const discharge =
    [...attended].reverse().find((e) => encounterType(e) === 'discharge') ??
    (attended[attended.length - 1] as Encounter);
  if (initial.id === discharge.id) return [];
  const first = measurementsAt(byEncounter.get(initial.id as string), 'earliest');
  const last = measurementsAt(byEncounter.get(discharge.id as string), 'latest');
  const out: OutcomeChange[] = [];
  for (const [key, start] of first) {
    const end = last.get(key);
    if (!end) continue;
    const change = round(end.value - start.value, 4);
    const improvement = start.measure.better === 'higher' ? change : round(-change, 4);
    out.push({
      measure: start.measure.id,
      ...(start.site ? { site: start.site } : {}),
      initial: start.value,
      final: end.value,
      change,
      improvement,
      ...(start.measure.mcid ? { mcidReached: improvement >= start.measure.mcid.value } : {}),
    });
  }
  return out;
}

function measurementsAt(
  observations: Observation[] | undefined,
  pick: 'earliest' | 'latest',
): Map<string, Measurement> {
  const out = new Map<string, Measurement>();
  const list = (observations ?? [])
    .map(measurementOf)
    .filter((m): m is Measurement => m !== undefined)
    .sort(
      (a, b) =>
        (instantMs(a.time) ?? 0) - (instantMs(b.time) ?? 0) ||
        (a.observation.id ?? '').localeCompare(b.observation.id ?? ''),
    );
  if (pick === 'latest') list.reverse();
  for (const m of list) {
    const key = `${m.measure.id}|${m.site ?? ''}`;
    if (!out.has(key)) out.set(key, m);
  }
  return out;
}

const PLAN_STATUSES = new Set<CarePlan['status']>(['active', 'on-hold', 'completed', 'revoked']);

/** The plan of care that was made: the latest created of the episode's plans (drafts and errors aside). */
function planOfCare(plans: CarePlan[]): CarePlan | undefined {
  return plans
    .filter((p) => PLAN_STATUSES.has(p.status))
    .sort(
      (a, b) =>
        (instantMs(b.created ?? b.period?.start) ?? 0) - (instantMs(a.created ?? a.period?.start) ?? 0) ||
        (a.id ?? '').localeCompare(b.id ?? ''),
    )[0];
}

function encounterType(encounter: Encounter): string | undefined {
  for (const type of encounter.type ?? []) {
    const code = type.coding?.find((c) => c.system === ENCOUNTER_TYPE_SYSTEM)?.code;
    if (code) return code;
  }
  return undefined;
}

function orderVersions(versions: Task[]): Task[] {
  // History gives versions newest first and may repeat the current one; order by versionId.
  const byVersion = new Map<string, Task>();
  versions.forEach((v, i) => byVersion.set(v.meta?.versionId ?? `#${i}`, v));
  return [...byVersion.values()].sort((a, b) => versionNumber(a) - versionNumber(b));
}

function versionNumber(task: Task): number {
  const n = Number(task.meta?.versionId);
  return Number.isFinite(n) ? n : 0;
}

function versionTime(task: Task | undefined): number | undefined {
  return instantMs(task?.lastModified) ?? instantMs(task?.meta?.lastUpdated);
}

function businessStatusOf(task: Task): string | undefined {
  return task.businessStatus?.coding?.find((c) => c.system === BUSINESS_STATUS)?.code;
}

function isReferralTask(task: Task): boolean {
  return (
    task.code?.coding?.some(
      (c) => c.system === 'http://hl7.org/fhir/CodeSystem/task-code' && c.code === 'fulfill',
    ) === true && idOf(task.focus, 'ServiceRequest') !== undefined
  );
}

export function reasonOf(concept: CodeableConcept | undefined): Reason | undefined {
  const coding = concept?.coding?.find((c) => c.code);
  if (coding) {
    return {
      key: `${coding.system ?? ''}|${coding.code}`,
      ...(coding.system ? { system: coding.system } : {}),
      code: coding.code as string,
      display: coding.display ?? concept?.text ?? (coding.code as string),
    };
  }
  const text = concept?.text?.trim();
  return text ? { key: `text|${text.toLowerCase()}`, display: text } : undefined;
}

function closedWithoutReason(status: Task['status'] | undefined): Reason {
  switch (status) {
    case 'cancelled':
      return { key: 'cancelled', display: 'Cancelled, no reason given' };
    case 'failed':
      return { key: 'failed', display: 'Stopped, no reason given' };
    case 'completed':
      return { key: 'completed-without-visit', display: 'Closed without an attended visit' };
    case 'entered-in-error':
      return { key: 'entered-in-error', display: 'Entered in error' };
    default:
      return { key: 'closed', display: 'Closed, no reason given' };
  }
}

function startOf(encounter: Encounter): number {
  return instantMs(encounter.period?.start) ?? Number.POSITIVE_INFINITY;
}

function push<T>(map: Map<string, T[]>, key: string | undefined, value: T): void {
  if (key === undefined) return;
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** 'ServiceRequest/sr-1', '.../fhir/ServiceRequest/sr-1/_history/2' → 'sr-1' when the type matches. */
export function idOf(reference: Reference | undefined, type: string): string | undefined {
  const ref = reference?.reference;
  if (!ref) return undefined;
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
  return m && m[1] === type ? m[2] : undefined;
}
