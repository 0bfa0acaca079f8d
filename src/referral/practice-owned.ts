import { isDeepStrictEqual } from 'node:util';
import type { Task } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { WriteHandler } from '../rest/unit-of-work.js';
import { businessStatusOf } from './codes.js';
import { isReferralTask } from './referral-task.js';

/**
 * Referrers cannot edit what the practice owns. The referral Task is the filler's record of the
 * work (FHIR R4 workflow, https://hl7.org/fhir/R4/workflow-management.html#optionh, as BSeR uses
 * it): its owner, businessStatus, description and progress are the practice's. The placer may ask
 * to cancel (BSeR business status 5.2 "Service Request Cancellation Requested";
 * https://hl7.org/fhir/us/bser/CodeSystem-TaskBusinessStatusCS.html) — `status` → cancelled, with a
 * `statusReason` — and add to the exchange: new `note`s and `input`s, never rewriting earlier ones.
 * Which status moves are allowed is the state machine's (triage.ts); this rule keeps every other
 * element as the practice left it. The EpisodeOfCare is the practice's record alone: a referrer
 * writes it in no way.
 */
const PLACER_MAY_CHANGE = new Set([
  'meta',
  'lastModified',
  'status',
  'statusReason',
  'businessStatus',
  'note',
  'input',
]);

export const practiceOwned: WriteHandler = {
  name: 'referral.practice-owned',
  phase: 'validate',
  order: 25,
  types: ['Task', 'EpisodeOfCare'],
  origins: ['client'],
  run(uow, change) {
    if (uow.auth?.role !== 'referrer') return;
    if (change.resourceType === 'EpisodeOfCare') {
      throw forbidden(
        'The EpisodeOfCare is the practice’s: a referrer cannot create, change or delete it',
        'EpisodeOfCare',
      );
    }
    const before = change.previous?.resource as Task | undefined;
    const task = change.resource as Task | undefined;
    if (change.action === 'create') {
      if (task && isReferralTask(task)) {
        throw forbidden('Referral Tasks are created by the server when a referral arrives', 'Task.code');
      }
      return;
    }
    if (!before || !isReferralTask(before)) return;
    if (!task)
      throw forbidden('The referral Task is the practice’s: cancel it instead of deleting it', 'Task');
    const keys = new Set([...Object.keys(before), ...Object.keys(task)]);
    for (const key of [...keys].sort()) {
      if (PLACER_MAY_CHANGE.has(key) || key === 'id' || key === 'resourceType') continue;
      const was = (before as unknown as Record<string, unknown>)[key];
      const is = (task as unknown as Record<string, unknown>)[key];
      if (!isDeepStrictEqual(was, is)) {
        throw forbidden(
          `Task.${key} is the practice’s: a referrer may cancel and add notes or inputs`,
          `Task.${key}`,
        );
      }
    }
    for (const key of ['note', 'input'] as const) {
      const was = before[key] ?? [];
      const is = task[key] ?? [];
      if (is.length < was.length || was.some((item, i) => !isDeepStrictEqual(item, is[i]))) {
        throw forbidden(
          `A referrer may add to Task.${key} but not change or remove what is there`,
          `Task.${key}`,
        );
      }
    }
    const cancelling = task.status === 'cancelled' && before.status !== 'cancelled';
    if (!cancelling && !isDeepStrictEqual(before.statusReason, task.statusReason)) {
      throw forbidden('A referrer gives a statusReason only when it cancels', 'Task.statusReason');
    }
    // The server sets the business status a cancel implies (triage.ts); naming that one is no change.
    const impliedByCancel = cancelling && businessStatusOf(task) === 'cancelled';
    if (!impliedByCancel && !isDeepStrictEqual(before.businessStatus, task.businessStatus)) {
      throw forbidden('Task.businessStatus is the practice’s', 'Task.businessStatus');
    }
  },
};

function forbidden(message: string, expression: string): Error {
  return fhirError('forbidden', message, expression);
}
