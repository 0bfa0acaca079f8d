import type { Task } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { WriteHandler } from '../rest/unit-of-work.js';
import { businessStatus, businessStatusOf, DECLINE_REASON_DISPLAY, DECLINE_REASON_SYSTEM } from './codes.js';
import { actorOf, isReferralTask } from './referral-task.js';
import { allowedTransitions, defaultBusinessStatus, isAllowedTransition } from './task-state-machine.js';

/**
 * Triage: a client's change of the referral Task's status must follow the referral state machine
 * (task-state-machine.ts) for its side, and a decline needs a coded reason. The server's own moves
 * (visits, cancellations) are not client requests and are not checked here.
 */
export const triage: WriteHandler = {
  name: 'referral.triage',
  phase: 'before-store',
  order: 20,
  types: ['Task'],
  actions: ['update'],
  origins: ['client'],
  run(uow, change) {
    const before = change.previous?.resource as Task | undefined;
    const task = change.resource as Task;
    if (!before || !isReferralTask(before)) return undefined;
    if (task.focus?.reference !== before.focus?.reference) {
      throw fhirError(
        'business-rule',
        'The referral Task cannot be moved to another ServiceRequest',
        'Task.focus',
      );
    }
    const actor = actorOf(uow);
    if (!isAllowedTransition(before.status, task.status, actor)) {
      const allowed = allowedTransitions(before.status, actor);
      throw fhirError(
        'business-rule',
        `A referral Task cannot go from ${before.status} to ${task.status}; allowed: ${allowed.length ? allowed.join(', ') : 'none (final state)'}`,
        'Task.status',
      );
    }
    if (task.status === 'rejected' && !task.statusReason?.coding?.length) {
      throw fhirError(
        'business-rule',
        'Declining a referral needs a coded statusReason',
        'Task.statusReason',
      );
    }
    if (task.status === before.status) return undefined;
    const keepsClientStatus =
      businessStatusOf(task) !== undefined && businessStatusOf(task) !== businessStatusOf(before);
    const implied = defaultBusinessStatus(task.status);
    return {
      ...task,
      lastModified: uow.now(),
      ...(implied && !keepsClientStatus ? { businessStatus: businessStatus(implied) } : {}),
      ...(task.statusReason ? { statusReason: withDeclineDisplays(task.statusReason) } : {}),
    } as Task;
  },
};

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
