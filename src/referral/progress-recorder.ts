import type {
  Appointment,
  CarePlan,
  Communication,
  Encounter,
  EpisodeOfCare,
  Goal,
  Observation,
  Organization,
  Patient,
  Resource,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';
import {
  COMMUNICATION_ID_SYSTEM,
  communicationIdentifier,
  composeProgressCommunication,
  type EpisodeSnapshot,
  type ProgressEvent,
  type ProgressEventCode,
} from '../progress/index.js';
import { findAll, storeResource } from '../rest/internal-write.js';
import { newId } from '../rest/resource-identity.js';
import type { WriteContext } from '../rest/write-context.js';

/**
 * The I/O side of progress updates: gathers what is stored about a referral's episode, lets the
 * pure composer write the Communication, stores it (once: its identifier is derived from the
 * event, so the same event never makes a second one) — in the transaction of the write that caused
 * the event.
 */
export const REFERRER_EVENTS_EXTENSION =
  'https://ptreferral.dev/fhir/StructureDefinition/referrer-progress-events';

export async function recordProgress(
  ctx: WriteContext,
  referralId: string,
  event: ProgressEvent,
): Promise<Communication | undefined> {
  const snapshot = await loadSnapshot(ctx, referralId);
  if (!snapshot || !(await referrerWants(ctx, snapshot.referral, event.code))) return undefined;
  const identifier = communicationIdentifier(event, snapshot);
  const existing = await findAll<Communication>(
    ctx,
    'Communication',
    `identifier=${encodeURIComponent(`${COMMUNICATION_ID_SYSTEM}|${escapeSearch(identifier)}`)}`,
    1,
  );
  if (existing.length > 0) return existing[0];
  const communication = composeProgressCommunication(event, snapshot, {
    id: newId(),
    now: ctx.services.now(),
  });
  // Subscribers hear of it through delivery's handler, as of any Communication written.
  const written = await storeResource(ctx, communication, { built: true });
  return written.resource as Communication;
}

/**
 * Which events a referrer receives is theirs to choose: an extension on the referring
 * Practitioner/PractitionerRole/Organization lists the event codes it wants (default: all).
 */
async function referrerWants(
  ctx: WriteContext,
  referral: ServiceRequest,
  code: ProgressEventCode,
): Promise<boolean> {
  const [type, id] = referral.requester?.reference?.split('/') ?? [];
  if (!type || !id) return true;
  const requester = (await ctx.system.read(type, id))?.resource as
    (Resource & { extension?: { url: string; valueCode?: string }[] }) | undefined;
  const wanted = requester?.extension
    ?.filter((e) => e.url === REFERRER_EVENTS_EXTENSION)
    .map((e) => e.valueCode);
  return !wanted || wanted.length === 0 || wanted.includes(code);
}

export async function loadSnapshot(
  ctx: WriteContext,
  referralId: string,
): Promise<EpisodeSnapshot | undefined> {
  const read = async <T extends Resource>(reference: string | undefined): Promise<T | undefined> => {
    const [type, id] = reference?.split('/') ?? [];
    if (!type || !id) return undefined;
    const v = await ctx.system.read(type, id);
    return v && !v.deleted ? (v.resource as T) : undefined;
  };
  const referral = await read<ServiceRequest>(`ServiceRequest/${referralId}`);
  if (!referral) return undefined;
  const focus = `ServiceRequest/${referralId}`;
  const [episode] = await findAll<EpisodeOfCare>(ctx, 'EpisodeOfCare', `incoming-referral=${focus}`, 1);
  const [task] = await findAll<Task>(
    ctx,
    'Task',
    `focus=${focus}&code=http://hl7.org/fhir/CodeSystem/task-code|fulfill`,
    1,
  );
  const patient = await read<Patient>(referral.subject?.reference);
  const practice = await read<Organization>(
    task?.owner?.reference ?? episode?.managingOrganization?.reference,
  );
  if (!episode || !task || !patient || !practice) return undefined;
  const patientRef = `Patient/${patient.id}`;
  const byId = <T extends Resource>(lists: T[][]): T[] => [
    ...new Map(lists.flat().map((r) => [r.id, r])).values(),
  ];
  const encounters = byId([
    await findAll<Encounter>(ctx, 'Encounter', `based-on=${focus}`, 1000),
    await findAll<Encounter>(ctx, 'Encounter', `episode-of-care=EpisodeOfCare/${episode.id}`, 1000),
  ]);
  const since = Date.parse(episode.period?.start ?? '1970-01-01T00:00:00Z');
  const encounterIds = new Set(encounters.map((e) => `Encounter/${e.id}`));
  const inEpisode = (encounter: string | undefined, when: string | undefined): boolean =>
    (encounter !== undefined && encounterIds.has(encounter)) ||
    (when !== undefined && Date.parse(when) >= since - 86_400_000);
  return {
    referral,
    patient,
    practice,
    episode,
    task,
    encounters,
    appointments: await findAll<Appointment>(ctx, 'Appointment', `based-on=${focus}`, 1000),
    observations: (await findAll<Observation>(ctx, 'Observation', `subject=${patientRef}`, 1000)).filter(
      (o) => inEpisode(o.encounter?.reference, o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.issued),
    ),
    goals: (await findAll<Goal>(ctx, 'Goal', `patient=${patientRef}`, 1000)).filter((g) =>
      inEpisode(undefined, g.startDate ?? g.statusDate ?? episode.period?.start),
    ),
    carePlans: (await findAll<CarePlan>(ctx, 'CarePlan', `subject=${patientRef}`, 1000)).filter((c) =>
      inEpisode(c.encounter?.reference, c.period?.start ?? c.created),
    ),
  };
}

/** FHIR search escaping for `,`, `|`, `$` and `\` inside a token value. */
function escapeSearch(value: string): string {
  return value.replace(/[\\,|$]/g, (c) => `\\${c}`);
}
