import type { Appointment, Encounter, Reference } from '@medplum/fhirtypes';
import { ENCOUNTER_TYPE_SYSTEM, type EncounterType } from './progress-codes.js';
import type { EpisodeSnapshot, ProgressEvent } from './progress-types.js';
import { instantOf } from './text-format.js';

/**
 * Which visits (Encounters) and bookings (Appointments) belong to the episode, and where they stand
 * at the time of an event. A report describes the episode as of its event, so a visit after the
 * event is left out even when the snapshot already holds it: re-composing later gives the same text.
 */

/** Does the reference point at type/id? Accepts relative, absolute and versioned references. */
export function refersTo(reference: Reference | undefined, type: string, id: string | undefined): boolean {
  const ref = reference?.reference?.replace(/\/_history\/[^/]+$/, '');
  return id !== undefined && ref !== undefined && (ref === `${type}/${id}` || ref.endsWith(`/${type}/${id}`));
}

/** 'Encounter/enc-1/_history/3' → 'enc-1' when the type matches. */
export function idOf(reference: { reference?: string } | undefined, type: string): string | undefined {
  const m = reference?.reference?.match(
    new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]+)?$`),
  );
  return m?.[1];
}

export function isEpisodeEncounter(encounter: Encounter, snapshot: EpisodeSnapshot): boolean {
  return (
    (encounter.basedOn ?? []).some((r) => refersTo(r, 'ServiceRequest', snapshot.referral.id)) ||
    (encounter.episodeOfCare ?? []).some((r) => refersTo(r, 'EpisodeOfCare', snapshot.episode.id))
  );
}

export function isEpisodeAppointment(appointment: Appointment, snapshot: EpisodeSnapshot): boolean {
  return (appointment.basedOn ?? []).some((r) => refersTo(r, 'ServiceRequest', snapshot.referral.id));
}

export function encounterTypeOf(encounter: Encounter): EncounterType | undefined {
  for (const type of encounter.type ?? []) {
    const code = type.coding?.find((c) => c.system === ENCOUNTER_TYPE_SYSTEM)?.code;
    if (code) return code as EncounterType;
  }
  return undefined;
}

/** Did this happen by the time of the event? Undated items are counted rather than dropped. */
export function atOrBefore(time: string | undefined, event: ProgressEvent): boolean {
  return time === undefined || instantOf(time) <= instantOf(event.occurredAt);
}

const NOT_HELD = new Set(['planned', 'cancelled', 'entered-in-error', 'unknown']);

/** The episode's visits that took place (or were recorded) by the event, oldest first. */
export function episodeEncounters(snapshot: EpisodeSnapshot, event: ProgressEvent): Encounter[] {
  const eventEncounter = idOf(event.encounter, 'Encounter');
  return snapshot.encounters
    .filter((e) => isEpisodeEncounter(e, snapshot) && !NOT_HELD.has(e.status))
    .filter((e) => e.id === eventEncounter || atOrBefore(e.period?.start, event))
    .sort(byStart);
}

/** The initial evaluation: the earliest visit typed initial-evaluation, held by the event. */
export function initialEvaluation(snapshot: EpisodeSnapshot, event: ProgressEvent): Encounter | undefined {
  return episodeEncounters(snapshot, event).find((e) => encounterTypeOf(e) === 'initial-evaluation');
}

/** The event's own visit, when it has one and the snapshot holds it. */
export function eventEncounter(snapshot: EpisodeSnapshot, event: ProgressEvent): Encounter | undefined {
  const id = idOf(event.encounter, 'Encounter');
  return id ? snapshot.encounters.find((e) => e.id === id) : undefined;
}

/** The event's appointment: given with the event, or the snapshot's copy of its source. */
export function eventAppointment(snapshot: EpisodeSnapshot, event: ProgressEvent): Appointment | undefined {
  if (event.appointment) return event.appointment;
  const id = idOf(event.source, 'Appointment');
  return id ? snapshot.appointments.find((a) => a.id === id) : undefined;
}

function byStart(a: Encounter, b: Encounter): number {
  const ta = a.period?.start ? instantOf(a.period.start) : Number.POSITIVE_INFINITY;
  const tb = b.period?.start ? instantOf(b.period.start) : Number.POSITIVE_INFINITY;
  return ta - tb || (a.id ?? '').localeCompare(b.id ?? '');
}
