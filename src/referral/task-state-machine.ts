import type { EpisodeOfCare, Task } from '@medplum/fhirtypes';
import type { BusinessStatus } from './codes.js';

/**
 * The referral Task's state machine, after the FHIR workflow Task state machine
 * (https://hl7.org/fhir/R4/task.html#statemachine) as the BSeR and Gravity referral guides use
 * it: the practice (filler) accepts or rejects a received referral, starts and completes the work;
 * the referrer (placer) cancels. Terminal states accept no further transition.
 */
export type TaskStatus = Task['status'];
export type Actor = 'practice' | 'referrer' | 'any';

interface Transition {
  to: TaskStatus;
  by: Exclude<Actor, 'any'>[];
}

const TRANSITIONS: Record<TaskStatus, Transition[]> = {
  draft: [],
  requested: [
    { to: 'received', by: ['practice'] },
    { to: 'accepted', by: ['practice'] },
    { to: 'rejected', by: ['practice'] },
    { to: 'cancelled', by: ['referrer'] },
  ],
  received: [
    { to: 'accepted', by: ['practice'] },
    { to: 'rejected', by: ['practice'] },
    { to: 'cancelled', by: ['referrer'] },
  ],
  accepted: [
    { to: 'in-progress', by: ['practice'] },
    { to: 'on-hold', by: ['practice'] },
    { to: 'cancelled', by: ['referrer'] },
  ],
  ready: [],
  'in-progress': [
    { to: 'completed', by: ['practice'] },
    { to: 'on-hold', by: ['practice'] },
    { to: 'failed', by: ['practice'] },
    { to: 'cancelled', by: ['referrer'] },
  ],
  'on-hold': [
    { to: 'in-progress', by: ['practice'] },
    { to: 'cancelled', by: ['referrer'] },
  ],
  rejected: [],
  completed: [],
  cancelled: [],
  failed: [],
  'entered-in-error': [],
};

export function allowedTransitions(from: TaskStatus, actor: Actor = 'any'): TaskStatus[] {
  return TRANSITIONS[from].filter((t) => actor === 'any' || t.by.includes(actor)).map((t) => t.to);
}

export function isAllowedTransition(from: TaskStatus, to: TaskStatus, actor: Actor = 'any'): boolean {
  return from === to || allowedTransitions(from, actor).includes(to);
}

/** The business status a transition implies when the client did not set a finer one. */
export function defaultBusinessStatus(status: TaskStatus): BusinessStatus | undefined {
  switch (status) {
    case 'received':
    case 'requested':
      return 'awaiting-triage';
    case 'accepted':
      return 'accepted-awaiting-booking';
    case 'in-progress':
      return 'in-treatment';
    case 'completed':
      return 'discharged';
    case 'rejected':
      return 'declined';
    case 'cancelled':
      return 'cancelled';
    default:
      return undefined;
  }
}

/** Where the episode of care stands for a Task status (https://hl7.org/fhir/R4/valueset-episode-of-care-status.html). */
export function episodeStatusFor(status: TaskStatus): EpisodeOfCare['status'] | undefined {
  switch (status) {
    case 'requested':
    case 'received':
    case 'accepted':
      return 'waitlist';
    case 'in-progress':
      return 'active';
    case 'on-hold':
      return 'onhold';
    case 'completed':
      return 'finished';
    case 'rejected':
    case 'cancelled':
    case 'failed':
      return 'cancelled';
    default:
      return undefined;
  }
}

/** Moves an episode to a new status, closing the open statusHistory period. Pure. */
export function moveEpisode(
  episode: EpisodeOfCare,
  status: EpisodeOfCare['status'],
  now: string,
): EpisodeOfCare {
  if (episode.status === status) {
    return episode;
  }
  const history = (episode.statusHistory ?? []).map((h) =>
    h.period.end ? h : { ...h, period: { ...h.period, end: now } },
  );
  const ended = status === 'finished' || status === 'cancelled';
  return {
    ...episode,
    status,
    statusHistory: [...history, { status, period: ended ? { start: now, end: now } : { start: now } }],
    period: ended ? { ...episode.period, end: now } : episode.period,
  };
}
