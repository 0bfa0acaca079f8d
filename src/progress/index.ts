/** Patient-progress communications to the referrer: pure composition, no I/O. */
export { composeProgressCommunication, communicationIdentifier } from './compose-communication.js';
export { attendanceAt, countAttendedVisits, type Attendance } from './attendance.js';
export { isProgressReportDue } from './progress-report-cadence.js';
export {
  OUTCOME_MEASURES,
  measureOf,
  measurementOf,
  type Measurement,
  type OutcomeMeasure,
  type OutcomeMeasureId,
} from './outcome-measures.js';
export { outcomeRows, type OutcomeRow } from './outcome-progress.js';
export {
  COMMUNICATION_ID_SYSTEM,
  ENCOUNTER_TYPE_SYSTEM,
  EVENT_DISPLAY,
  OUTCOME_MEASURE_SYSTEM,
  type EncounterType,
} from './progress-codes.js';
export type { ComposeOptions, EpisodeSnapshot, ProgressEvent, ProgressEventCode } from './progress-types.js';
