import type {
  Communication,
  Appointment,
  Encounter,
  EpisodeOfCare,
  Organization,
  Reference,
  Resource,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import { FhirError, fhirError } from '../fhir/errors.js';
import { findAll, storeResource } from '../rest/internal-write.js';
import type { WriteContext, WriteHook } from '../rest/write-context.js';
import type { StoredVersion } from '../store/fhir-store.js';
import { PROFILES } from '../validation/profile-registry.js';
import { toFhirError } from '../validation/resource-validator.js';
import {
  ENCOUNTER_TYPE_SYSTEM,
  isProgressReportDue,
  type ProgressEvent,
  type ProgressEventCode,
} from '../progress/index.js';
import { recordProgress } from './progress-recorder.js';
import {
  businessStatus,
  businessStatusOf,
  DECLINE_REASON_DISPLAY,
  DECLINE_REASON_SYSTEM,
  TASK_CODE_SYSTEM,
  type BusinessStatus,
} from './codes.js';
import { stripUndefined, toEpisodeOfCare, toReferralTask } from './episode-mapping.js';
import {
  allowedTransitions,
  defaultBusinessStatus,
  episodeStatusFor,
  isAllowedTransition,
  moveEpisode,
  type Actor,
} from './task-state-machine.js';

/**
 * The referral workflow, as write hooks in the same database transaction as the write:
 * - a new ServiceRequest is a referral: it must meet the referral profile and arrive `active`;
 *   a re-sent one (same identifier) is recognised; once the request's writes are done, its
 *   EpisodeOfCare and Task are created;
 * - the practice moves the Task through the referral state machine; the EpisodeOfCare follows;
 * - the referrer cancels by revoking the ServiceRequest or with an `abort` Task;
 * - Appointments and Encounters based on the referral move the Task's business status and,
 *   at the first attended visit, the episode to active.
 */
export interface ReferralWorkflowOptions {
  /** The practice that receives referrals addressed to no other Organization. */
  practice: Reference<Organization>;
  /** Who is writing, from the request's client; `any` when authentication is off. */
  actor?: (ctx: WriteContext) => Actor;
  /** A progress report goes to the referrer every N attended visits. */
  progressReportEveryVisits?: number;
}

const PENDING_INTAKE = 'referral.pendingIntake';
const PENDING_NOTICES = 'referral.pendingNotices';

/** A progress event waiting for the end of the request, when everything it reports on is written. */
interface Notice {
  referralId: string;
  event: Omit<ProgressEvent, 'occurredAt'> & { occurredAt?: string };
}

export function referralWorkflow(options: ReferralWorkflowOptions): WriteHook {
  const actor = (ctx: WriteContext): Actor => options.actor?.(ctx) ?? actorOf(ctx);
  return {
    identityCriteria(resource) {
      if (resource.resourceType !== 'ServiceRequest') return undefined;
      const id = (resource as ServiceRequest).identifier?.find((i) => i.system && i.value);
      return id
        ? `identifier=${encodeURIComponent(`${escape(id.system as string)}|${escape(id.value as string)}`)}`
        : undefined;
    },

    async beforeWrite(ctx, change) {
      switch (change.resource.resourceType) {
        case 'ServiceRequest':
          return change.previous ? undefined : checkNewReferral(ctx, change.resource as ServiceRequest);
        case 'Task':
          return change.previous
            ? checkTaskTransition(ctx, change.previous, change.resource as Task, actor(ctx))
            : checkNewTask(ctx, change.resource as Task);
        default:
          return undefined;
      }
    },

    async afterWrite(ctx, written, previous) {
      if (written.deleted && written.resourceType === 'ServiceRequest' && previous?.resource) {
        // A deleted referral leaves no live work behind: its Task and episode are cancelled.
        await followReferralStatus(
          ctx,
          { ...(previous.resource as ServiceRequest), status: 'revoked' },
          previous,
        );
        return;
      }
      const resource = written.resource;
      if (!resource) return;
      switch (resource.resourceType) {
        case 'ServiceRequest':
          if (!previous || previous.deleted) {
            pending(ctx).push(written);
          } else {
            await followReferralStatus(ctx, resource as ServiceRequest, previous);
          }
          return;
        case 'Task':
          await followTask(ctx, resource as Task, previous, written);
          return;
        case 'Appointment':
          await followAppointment(ctx, resource as Appointment);
          return;
        case 'Encounter':
          // The cadence comes from the options: nothing in ctx.state is set yet at this point.
          await followEncounter(ctx, resource as Encounter, options.progressReportEveryVisits ?? 6);
          return;
      }
    },

    async beforeCommit(ctx) {
      const intakes = pending(ctx).splice(0);
      for (const written of intakes) {
        await completeIntake(ctx, written, options.practice);
      }
      // Progress updates last: an evaluation's Observations may come later in the same Bundle.
      const notices = (ctx.state.get(PENDING_NOTICES) as Notice[] | undefined)?.splice(0) ?? [];
      for (const notice of notices) {
        await recordProgress(ctx, notice.referralId, { occurredAt: ctx.services.now(), ...notice.event });
      }
    },
  };
}

/** Referrer clients act as the referrer side, practice clients as the practice; admins and AUTH=off as either. */
function actorOf(ctx: WriteContext): Actor {
  return ctx.auth?.role === 'referrer' ? 'referrer' : ctx.auth?.role === 'practice' ? 'practice' : 'any';
}

function pending(ctx: WriteContext): StoredVersion[] {
  let list = ctx.state.get(PENDING_INTAKE) as StoredVersion[] | undefined;
  if (!list) {
    list = [];
    ctx.state.set(PENDING_INTAKE, list);
  }
  return list;
}

/** A referral must meet the referral profile, whether or not it claims it, and arrive active. */
async function checkNewReferral(ctx: WriteContext, referral: ServiceRequest): Promise<undefined> {
  // The write path has just validated it against base R4 (and its claimed profiles); only the
  // referral profile remains, whether or not the referral claims it.
  const result = ctx.services.validator.validate(referral, {
    profiles: [PROFILES.referralServiceRequest],
    profilesOnly: true,
  });
  if (result.failure) {
    throw toFhirError(result, result.failure);
  }
  if (referral.status !== 'active') {
    throw fhirError(
      'business-rule',
      `A referral must arrive with status active, not '${referral.status}'`,
      'ServiceRequest.status',
    );
  }
  return undefined;
}

/** After every write of the request: the referral's references resolve, then its episode and Task. */
async function completeIntake(
  ctx: WriteContext,
  written: StoredVersion,
  defaultPractice: Reference<Organization>,
): Promise<void> {
  const referral = written.resource as ServiceRequest;
  const problems: FhirError[] = [];
  for (const [field, reference, types] of [
    ['subject', referral.subject, ['Patient']],
    ['requester', referral.requester, ['Practitioner', 'PractitionerRole', 'Organization']],
  ] as const) {
    if (!(await resolves(ctx, referral, reference, types))) {
      problems.push(
        fhirError(
          'business-rule',
          `ServiceRequest.${field} ${reference?.reference ?? '(none)'} does not resolve to a ${types.join(' or ')} on this server`,
          `ServiceRequest.${field}`,
        ),
      );
    }
  }
  if (problems.length > 0) {
    const inputs = problems.map((p) => ({
      code: p.code,
      message: p.message,
      expression: p.outcome.issue?.[0]?.expression?.[0],
    }));
    throw new FhirError(inputs[0] as (typeof inputs)[number], inputs.slice(1));
  }
  const practice =
    (referral.performer?.find((p) => p.reference?.startsWith('Organization/')) as
      Reference<Organization> | undefined) ?? defaultPractice;
  const context = { serviceRequestId: written.id, practice, now: ctx.services.now() };
  await storeResource(ctx, stripUndefined(toEpisodeOfCare(referral, context)), { built: true });
  const task = await storeResource(ctx, stripUndefined(toReferralTask(referral, context)), { built: true });
  tell(ctx, `ServiceRequest/${written.id}`, {
    code: 'referral-received',
    source: { reference: `Task/${task.id}` },
    sourceVersion: task.versionId,
  });
}

async function resolves(
  ctx: WriteContext,
  owner: Resource & { contained?: Resource[] },
  reference: Reference | undefined,
  types: readonly string[],
): Promise<boolean> {
  const ref = reference?.reference;
  if (!ref) return false;
  if (ref.startsWith('#')) {
    return (owner.contained ?? []).some((c) => `#${c.id}` === ref && types.includes(c.resourceType));
  }
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(ref);
  if (!m || !types.includes(m[1] as string)) return false;
  const target = await ctx.tx.read(m[1] as string, m[2] as string);
  return target !== undefined && !target.deleted;
}

function isReferralTask(task: Task): boolean {
  return (
    task.code?.coding?.some((c) => c.system === TASK_CODE_SYSTEM && c.code === 'fulfill') === true &&
    (task.focus?.reference?.startsWith('ServiceRequest/') ?? false)
  );
}

/** A status change of the referral Task must follow the state machine, and a decline needs a reason. */
async function checkTaskTransition(
  ctx: WriteContext,
  previous: StoredVersion,
  task: Task,
  actor: Actor,
): Promise<Resource | undefined> {
  const before = previous.resource as Task | undefined;
  if (!before || previous.deleted || !isReferralTask(before)) return undefined;
  if (task.focus?.reference !== before.focus?.reference) {
    throw fhirError(
      'business-rule',
      'The referral Task cannot be moved to another ServiceRequest',
      'Task.focus',
    );
  }
  if (!isAllowedTransition(before.status, task.status, actor)) {
    const allowed = allowedTransitions(before.status, actor);
    throw fhirError(
      'business-rule',
      `A referral Task cannot go from ${before.status} to ${task.status}; allowed: ${allowed.length ? allowed.join(', ') : 'none (final state)'}`,
      'Task.status',
    );
  }
  if (task.status === 'rejected' && !task.statusReason?.coding?.length) {
    throw fhirError('business-rule', 'Declining a referral needs a coded statusReason', 'Task.statusReason');
  }
  if (task.status === before.status) return undefined;
  const keepsClientStatus =
    businessStatusOf(task) !== undefined && businessStatusOf(task) !== businessStatusOf(before);
  const implied = defaultBusinessStatus(task.status);
  return {
    ...task,
    lastModified: ctx.services.now(),
    ...(implied && !keepsClientStatus ? { businessStatus: businessStatus(implied) } : {}),
    ...(task.statusReason ? { statusReason: withDeclineDisplays(task.statusReason) } : {}),
  } as Task;
}

/** A decline reason sent as a bare code gets its display, so the referrer reads words, not codes. */
function withDeclineDisplays(reason: NonNullable<Task['statusReason']>): Task['statusReason'] {
  return {
    ...reason,
    coding: reason.coding?.map((c) =>
      c.system === DECLINE_REASON_SYSTEM && !c.display && c.code && DECLINE_REASON_DISPLAY[c.code]
        ? { ...c, display: DECLINE_REASON_DISPLAY[c.code] }
        : c,
    ),
  };
}

/**
 * A new Task: the referrer's request to cancel (code `abort`, focus the referral Task) is
 * decided here — completed when the referral can still be cancelled, rejected otherwise.
 */
async function checkNewTask(ctx: WriteContext, task: Task): Promise<Resource | undefined> {
  const isAbort = task.code?.coding?.some((c) => c.system === TASK_CODE_SYSTEM && c.code === 'abort');
  const target = task.focus?.reference?.match(/^Task\/([A-Za-z0-9\-.]{1,64})$/)?.[1];
  if (!isAbort || !target) return undefined;
  const referralTask = (await ctx.tx.read('Task', target))?.resource as Task | undefined;
  if (!referralTask || !isReferralTask(referralTask)) {
    throw fhirError('business-rule', `Task/${target} is not a referral Task`, 'Task.focus');
  }
  const allowed =
    referralTask.status !== 'cancelled' && isAllowedTransition(referralTask.status, 'cancelled', 'referrer');
  return { ...task, status: allowed ? 'completed' : 'rejected', lastModified: ctx.services.now() } as Task;
}

async function followTask(
  ctx: WriteContext,
  task: Task,
  previous: StoredVersion | undefined,
  written: StoredVersion,
): Promise<void> {
  if (
    task.code?.coding?.some((c) => c.system === TASK_CODE_SYSTEM && c.code === 'abort') &&
    task.status === 'completed' &&
    !previous
  ) {
    const target = task.focus?.reference?.split('/')[1] as string;
    const referralTask = (await ctx.system.read('Task', target))?.resource as Task;
    await moveReferralTask(ctx, referralTask, 'cancelled', 'cancelled', task.reasonCode);
    tell(ctx, referralTask.focus?.reference as string, {
      code: 'cancellation',
      source: { reference: `Task/${written.id}` },
      sourceVersion: written.versionId,
      cancellationReason: task.reasonCode,
      cancelledBy: task.requester,
    });
    return;
  }
  const before = previous?.resource as Task | undefined;
  if (!isReferralTask(task) || !before || before.status === task.status) return;
  await moveEpisodeForTask(ctx, task);
  if (task.status === 'completed' || task.status === 'cancelled') {
    await settleReferral(ctx, task);
  }
  const code = TASK_STATUS_EVENTS[task.status];
  if (code) {
    tell(ctx, task.focus?.reference as string, {
      code,
      source: { reference: `Task/${written.id}` },
      sourceVersion: written.versionId,
      ...(code === 'referral-declined' ? { declineReason: task.statusReason, advice: adviceOf(task) } : {}),
      ...(code === 'cancellation' ? { cancellationReason: task.statusReason } : {}),
    });
  }
}

/** The practice's own Task changes that the referrer hears about. */
const TASK_STATUS_EVENTS: Partial<Record<Task['status'], ProgressEventCode>> = {
  accepted: 'referral-accepted',
  rejected: 'referral-declined',
  completed: 'discharge',
  cancelled: 'cancellation',
};

/** Advice for the referrer is written in the Task's notes when declining. */
function adviceOf(task: Task): string | undefined {
  const text = task.note
    ?.map((n) => n.text)
    .filter(Boolean)
    .join(' ');
  return text || undefined;
}

/** Queues a progress event; it is recorded once every write of the request is done. */
function tell(ctx: WriteContext, referral: string, event: Notice['event']): void {
  const referralId = referral.split('/')[1];
  if (!referralId) return;
  let notices = ctx.state.get(PENDING_NOTICES) as Notice[] | undefined;
  if (!notices) {
    notices = [];
    ctx.state.set(PENDING_NOTICES, notices);
  }
  notices.push({ referralId, event });
}

/** The ServiceRequest follows a finished Task: completed on discharge, revoked on cancel. */
async function settleReferral(ctx: WriteContext, task: Task): Promise<void> {
  const id = task.focus?.reference?.split('/')[1] as string;
  const referral = (await ctx.system.read('ServiceRequest', id))?.resource as ServiceRequest | undefined;
  const status = task.status === 'completed' ? 'completed' : 'revoked';
  if (referral && referral.status === 'active') {
    await storeResource(ctx, { ...referral, status });
  }
}

async function moveEpisodeForTask(ctx: WriteContext, task: Task): Promise<void> {
  const status = episodeStatusFor(task.status);
  if (!status) return;
  for (const episode of await findAll<EpisodeOfCare>(
    ctx,
    'EpisodeOfCare',
    `incoming-referral=${task.focus?.reference}`,
  )) {
    const moved = moveEpisode(episode, status, ctx.services.now());
    if (moved !== episode) await storeResource(ctx, moved);
  }
}

async function referralTaskFor(ctx: WriteContext, serviceRequest: string): Promise<Task | undefined> {
  const tasks = await findAll<Task>(
    ctx,
    'Task',
    `focus=${serviceRequest}&code=${TASK_CODE_SYSTEM}|fulfill`,
    2,
  );
  return tasks[0];
}

/** Moves the referral Task itself (a change the server makes), with the episode following. */
async function moveReferralTask(
  ctx: WriteContext,
  task: Task,
  status: Task['status'],
  business: BusinessStatus,
  reason?: Task['statusReason'],
): Promise<void> {
  if (task.status === status && businessStatusOf(task) === business) return;
  const next: Task = {
    ...task,
    status,
    businessStatus: businessStatus(business),
    lastModified: ctx.services.now(),
    ...(reason ? { statusReason: reason } : {}),
  };
  await storeResource(ctx, next);
  if (status !== task.status) {
    await moveEpisodeForTask(ctx, next);
    if (status === 'completed' || status === 'cancelled') await settleReferral(ctx, next);
  }
}

/** The referrer revoked (or entered-in-error) the referral: the Task and episode are cancelled. */
async function followReferralStatus(
  ctx: WriteContext,
  referral: ServiceRequest,
  previous: StoredVersion,
): Promise<void> {
  const before = previous.resource as ServiceRequest | undefined;
  if (before?.status === referral.status) return;
  if (referral.status !== 'revoked' && referral.status !== 'entered-in-error') return;
  const task = await referralTaskFor(ctx, `ServiceRequest/${referral.id}`);
  if (task && isAllowedTransition(task.status, 'cancelled', 'referrer') && task.status !== 'cancelled') {
    await moveReferralTask(ctx, task, 'cancelled', 'cancelled');
    tell(ctx, `ServiceRequest/${referral.id}`, {
      code: 'cancellation',
      source: { reference: `ServiceRequest/${referral.id}` },
      sourceVersion: String(Number(previous.versionId) + 1),
      cancelledBy: referral.requester,
    });
  }
}

function referralOf(basedOn: Reference[] | undefined): string | undefined {
  return basedOn?.find((r) => r.reference?.startsWith('ServiceRequest/'))?.reference;
}

const BEFORE_FIRST_VISIT: (BusinessStatus | undefined)[] = [
  'awaiting-triage',
  'accepted-awaiting-booking',
  'appointment-booked',
  'no-show',
  undefined,
];

async function followAppointment(ctx: WriteContext, appointment: Appointment): Promise<void> {
  const referral = referralOf(appointment.basedOn);
  if (!referral) return;
  const task = await referralTaskFor(ctx, referral);
  if (!task) return;
  if (!['accepted', 'in-progress', 'on-hold'].includes(task.status)) {
    throw fhirError(
      'business-rule',
      `The referral is ${task.status}: a visit can be booked only once it is accepted`,
      'Appointment.basedOn',
    );
  }
  // In progress means the first visit took place: a later no-show does not make the next booking the first.
  const firstVisitPending =
    task.status !== 'in-progress' && BEFORE_FIRST_VISIT.includes(businessStatusOf(task));
  const source = { reference: `Appointment/${appointment.id}` };
  if (['fulfilled', 'arrived', 'checked-in'].includes(appointment.status) && firstVisitPending) {
    await moveReferralTask(ctx, task, 'in-progress', 'first-visit-attended');
  } else if (appointment.status === 'noshow') {
    await moveReferralTask(ctx, task, task.status, 'no-show');
    tell(ctx, referral, { code: 'no-show', source, appointment });
  } else if (appointment.status === 'booked' && firstVisitPending) {
    // Only the first visit is news to the referrer; later bookings are routine.
    const alreadyBooked = businessStatusOf(task) === 'appointment-booked';
    await moveReferralTask(ctx, task, task.status, 'appointment-booked');
    if (!alreadyBooked) tell(ctx, referral, { code: 'appointment-booked', source, appointment });
  } else if (appointment.status === 'pending' && firstVisitPending) {
    await moveReferralTask(ctx, task, task.status, 'appointment-booked');
  }
}

/**
 * A visit based on the referral: the first attended one starts the Task; an Encounter typed as an
 * evaluation or a discharge (profiles/CodeSystem-pt-encounter-type.json) tells the referrer; and
 * every N attended visits a progress report goes out.
 */
async function followEncounter(ctx: WriteContext, encounter: Encounter, everyNVisits: number): Promise<void> {
  const referral = referralOf(encounter.basedOn);
  if (!referral || !['arrived', 'in-progress', 'finished'].includes(encounter.status)) return;
  let task = await referralTaskFor(ctx, referral);
  if (!task) return;
  if (BEFORE_FIRST_VISIT.includes(businessStatusOf(task))) {
    if (!['accepted', 'in-progress'].includes(task.status)) {
      throw fhirError(
        'business-rule',
        `The referral is ${task.status}: visits are recorded only once it is accepted`,
        'Encounter.basedOn',
      );
    }
    await moveReferralTask(ctx, task, 'in-progress', 'first-visit-attended');
    task = (await referralTaskFor(ctx, referral)) as Task;
  }
  if (encounter.status !== 'finished') return;
  const source = { reference: `Encounter/${encounter.id}` };
  const type = encounter.type
    ?.flatMap((t) => t.coding ?? [])
    .find((c) => c.system === ENCOUNTER_TYPE_SYSTEM)?.code;
  if (type === 'initial-evaluation' || type === 're-evaluation') {
    if (type === 'initial-evaluation') await moveReferralTask(ctx, task, task.status, 'evaluation-done');
    tell(ctx, referral, { code: type, source, encounter: source });
  } else if (type === 'discharge') {
    if (isAllowedTransition(task.status, 'completed', 'practice')) {
      await moveReferralTask(ctx, task, 'completed', 'discharged');
    }
    tell(ctx, referral, { code: 'discharge', source, encounter: source });
  } else {
    const attended = (
      await findAll<Encounter>(ctx, 'Encounter', `based-on=${referral}&status=finished`, 1000)
    ).length;
    if (isProgressReportDue(attended, everyNVisits)) {
      tell(ctx, referral, { code: 'progress-report', source, encounter: source });
    }
  }
}

/** A progress report on request (the `$progress-report` operation on the episode). */
export async function requestProgressReport(ctx: WriteContext, episodeId: string): Promise<Communication> {
  const episode = (await ctx.tx.read('EpisodeOfCare', episodeId))?.resource as EpisodeOfCare | undefined;
  const referral = episode?.referralRequest?.[0]?.reference;
  if (!episode || !referral) {
    throw fhirError('resource-not-found', `EpisodeOfCare/${episodeId} is not a referral episode`);
  }
  const communication = await recordProgress(ctx, referral.split('/')[1] as string, {
    code: 'progress-report',
    occurredAt: ctx.services.now(),
    source: { reference: `EpisodeOfCare/${episodeId}` },
    // Each request is its own report.
    sourceVersion: ctx.services.now(),
  });
  if (!communication) {
    throw fhirError(
      'business-rule',
      'The referrer does not receive progress reports, or the episode is incomplete',
    );
  }
  return communication;
}

/** FHIR search escaping for values that contain `,`, `|`, `$` or `\`. */
function escape(value: string): string {
  return value.replace(/[\\,|$]/g, (c) => `\\${c}`);
}
