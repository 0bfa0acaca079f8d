import type {
  Appointment,
  CarePlan,
  CodeableConcept,
  Encounter,
  EpisodeOfCare,
  Goal,
  Observation,
  Organization,
  Patient,
  Reference,
  ServiceRequest,
  Task,
} from '@medplum/fhirtypes';

/** The codes of profiles/CodeSystem-pt-referral-event.json. */
export type ProgressEventCode =
  | 'referral-received'
  | 'referral-accepted'
  | 'referral-declined'
  | 'appointment-booked'
  | 'no-show'
  | 'initial-evaluation'
  | 're-evaluation'
  | 'progress-report'
  | 'discharge'
  | 'cancellation';

/** Something that happened in an episode and that the referrer is told about. */
export interface ProgressEvent {
  code: ProgressEventCode;
  /** When it happened (dateTime); the report describes the episode as of this moment. */
  occurredAt: string;
  /** The Task, Appointment, Encounter or EpisodeOfCare (version) whose change is the event. */
  source: { reference: string };
  /** The version of `source` that triggered the event; part of the Communication's identifier. */
  sourceVersion?: string;
  /** The visit the event belongs to (evaluations, progress report, discharge). */
  encounter?: { reference: string };
  /** The booked or missed visit (appointment-booked, no-show); found in the snapshot when absent. */
  appointment?: Appointment;
  /** Why the referral was declined; the Task's statusReason when absent. */
  declineReason?: CodeableConcept;
  /** Why the referral was cancelled; the Task's statusReason when absent. */
  cancellationReason?: CodeableConcept;
  /** Who cancelled the referral, when known. */
  cancelledBy?: Reference;
  /** Advice for the referrer, in the practice's words (e.g. where else to refer, home programme). */
  advice?: string;
}

/** Everything already stored for one referral's episode; every resource has an id. */
export interface EpisodeSnapshot {
  referral: ServiceRequest;
  patient: Patient;
  practice: Organization;
  episode: EpisodeOfCare;
  task: Task;
  encounters: Encounter[];
  appointments: Appointment[];
  observations: Observation[];
  goals: Goal[];
  carePlans: CarePlan[];
}

export interface ComposeOptions {
  /** The Communication's id. */
  id: string;
  /** The time of composition (instant): Communication.sent and the report's creation. */
  now: string;
  /**
   * IANA time zone for dates and times in the texts, e.g. 'America/Chicago'. Without it,
   * appointment times are given in UTC and dates as recorded (the date part of the dateTime).
   */
  timeZone?: string;
}
