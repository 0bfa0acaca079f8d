import type { Appointment, CarePlan, Encounter } from '@medplum/fhirtypes';
import { currentCarePlan, plannedVisits } from './plan-of-care.js';
import type { EpisodeSnapshot, ProgressEvent } from './progress-types.js';
import { atOrBefore, episodeEncounters, isEpisodeAppointment } from './visits.js';

/**
 * Attendance as of an event: visits attended (Encounters of the referral or episode that are
 * finished, arrived or in progress), out of the visits planned (the plan of care's visit count, or
 * the episode's Appointments when there is no plan), and missed visits (Appointments marked noshow).
 */
export interface Attendance {
  attended: Encounter[];
  /** Visits planned and where the number comes from; undefined when nothing says. */
  planned?:
    { count: number; basis: 'care-plan'; carePlan: CarePlan } | { count: number; basis: 'appointments' };
  noShows: Appointment[];
}

const ATTENDED = new Set(['arrived', 'in-progress', 'finished']);

export function attendanceAt(snapshot: EpisodeSnapshot, event: ProgressEvent): Attendance {
  const attended = episodeEncounters(snapshot, event).filter((e) => ATTENDED.has(e.status));
  const appointments = snapshot.appointments.filter(
    (a) => isEpisodeAppointment(a, snapshot) && atOrBefore(a.start, event),
  );
  const noShows = appointments.filter((a) => a.status === 'noshow');
  const carePlan = currentCarePlan(snapshot.carePlans);
  const fromPlan = carePlan ? plannedVisits(carePlan) : undefined;
  if (carePlan && fromPlan !== undefined) {
    return { attended, planned: { count: fromPlan, basis: 'care-plan', carePlan }, noShows };
  }
  // Without a plan, every booking of the episode (past or future) except those called off.
  const booked = snapshot.appointments.filter(
    (a) => isEpisodeAppointment(a, snapshot) && !['cancelled', 'entered-in-error'].includes(a.status),
  );
  return {
    attended,
    ...(booked.length ? { planned: { count: booked.length, basis: 'appointments' as const } } : {}),
    noShows,
  };
}

/** The number of visits attended by the event, e.g. to decide whether a progress report is due. */
export function countAttendedVisits(snapshot: EpisodeSnapshot, event: ProgressEvent): number {
  return attendanceAt(snapshot, event).attended.length;
}
