import type { Appointment, Encounter, Task } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import { ENCOUNTER_TYPE_SYSTEM, isProgressReportDue } from '../progress/index.js';
import { findAll } from '../rest/internal-write.js';
import type { UnitOfWork, WriteHandler } from '../rest/unit-of-work.js';
import { businessStatusOf, type BusinessStatus } from './codes.js';
import { tell } from './notices.js';
import { moveReferralTask, referralOf, referralTaskFor } from './referral-task.js';
import { isAllowedTransition } from './task-state-machine.js';

/**
 * Visits based on the referral: bookings and attended Appointments move the Task's business
 * status; the first attended visit starts the Task (and the episode); an Encounter typed as an
 * evaluation or a discharge (profiles/CodeSystem-pt-encounter-type.json) tells the referrer; and
 * every N attended visits a progress report goes out.
 */
const BEFORE_FIRST_VISIT: (BusinessStatus | undefined)[] = [
  'awaiting-triage',
  'accepted-awaiting-booking',
  'appointment-booked',
  'no-show',
  undefined,
];

export const appointmentVisits: WriteHandler = {
  name: 'referral.appointment-visits',
  phase: 'after-store',
  order: 10,
  types: ['Appointment'],
  origins: ['client'],
  async run(uow, change) {
    if (change.resource) await followAppointment(uow, change.resource as Appointment);
  },
};

export function encounterVisits(everyNVisits: number): WriteHandler {
  return {
    name: 'referral.encounter-visits',
    phase: 'after-store',
    order: 10,
    types: ['Encounter'],
    origins: ['client'],
    async run(uow, change) {
      if (change.resource) await followEncounter(uow, change.resource as Encounter, everyNVisits);
    },
  };
}

async function followAppointment(uow: UnitOfWork, appointment: Appointment): Promise<void> {
  const referral = referralOf(appointment.basedOn);
  if (!referral) return;
  const task = await referralTaskFor(uow, referral);
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
    await moveReferralTask(uow, task, 'in-progress', 'first-visit-attended');
  } else if (appointment.status === 'noshow') {
    await moveReferralTask(uow, task, task.status, 'no-show');
    tell(uow, referral, { code: 'no-show', source, appointment });
  } else if (appointment.status === 'booked' && firstVisitPending) {
    // Only the first visit is news to the referrer; later bookings are routine.
    const alreadyBooked = businessStatusOf(task) === 'appointment-booked';
    await moveReferralTask(uow, task, task.status, 'appointment-booked');
    if (!alreadyBooked) tell(uow, referral, { code: 'appointment-booked', source, appointment });
  } else if (appointment.status === 'pending' && firstVisitPending) {
    await moveReferralTask(uow, task, task.status, 'appointment-booked');
  }
}

async function followEncounter(uow: UnitOfWork, encounter: Encounter, everyNVisits: number): Promise<void> {
  const referral = referralOf(encounter.basedOn);
  if (!referral || !['arrived', 'in-progress', 'finished'].includes(encounter.status)) return;
  let task = await referralTaskFor(uow, referral);
  if (!task) return;
  if (BEFORE_FIRST_VISIT.includes(businessStatusOf(task))) {
    if (!['accepted', 'in-progress'].includes(task.status)) {
      throw fhirError(
        'business-rule',
        `The referral is ${task.status}: visits are recorded only once it is accepted`,
        'Encounter.basedOn',
      );
    }
    await moveReferralTask(uow, task, 'in-progress', 'first-visit-attended');
    task = (await referralTaskFor(uow, referral)) as Task;
  }
  if (encounter.status !== 'finished') return;
  const source = { reference: `Encounter/${encounter.id}` };
  const type = encounter.type
    ?.flatMap((t) => t.coding ?? [])
    .find((c) => c.system === ENCOUNTER_TYPE_SYSTEM)?.code;
  if (type === 'initial-evaluation' || type === 're-evaluation') {
    if (type === 'initial-evaluation') await moveReferralTask(uow, task, task.status, 'evaluation-done');
    tell(uow, referral, { code: type, source, encounter: source });
  } else if (type === 'discharge') {
    if (isAllowedTransition(task.status, 'completed', 'practice')) {
      await moveReferralTask(uow, task, 'completed', 'discharged');
    }
    tell(uow, referral, { code: 'discharge', source, encounter: source });
  } else {
    const attended = (
      await findAll<Encounter>(uow, 'Encounter', `based-on=${referral}&status=finished`, 1000)
    ).length;
    if (isProgressReportDue(attended, everyNVisits)) {
      tell(uow, referral, { code: 'progress-report', source, encounter: source });
    }
  }
}
