import type { ServiceRequest, Task } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { UnitOfWork, WriteHandler } from '../rest/unit-of-work.js';
import type { StoredVersion } from '../store/fhir-store.js';
import { tell } from './notices.js';
import { isAbortTask, isReferralTask, moveReferralTask, referralTaskFor } from './referral-task.js';
import { isAllowedTransition } from './task-state-machine.js';

/**
 * The referrer cancels a referral (BSeR): by revoking (or deleting) the ServiceRequest, or with an
 * `abort` Task whose focus is the referral Task. The referral Task is then cancelled by the server
 * and the episode follows (episode-follows-task.ts).
 */

/** An `abort` Task is decided as it arrives: completed when the referral can still be cancelled, rejected otherwise. */
export const abortDecision: WriteHandler = {
  name: 'referral.abort-decision',
  phase: 'before-store',
  order: 20,
  types: ['Task'],
  actions: ['create'],
  origins: ['client'],
  async run(uow, change) {
    const task = change.resource as Task;
    const target = task.focus?.reference?.match(/^Task\/([A-Za-z0-9\-.]{1,64})$/)?.[1];
    if (!isAbortTask(task) || !target) return undefined;
    const referralTask = (await uow.tx.read('Task', target))?.resource as Task | undefined;
    if (!referralTask || !isReferralTask(referralTask)) {
      throw fhirError('business-rule', `Task/${target} is not a referral Task`, 'Task.focus');
    }
    const allowed =
      referralTask.status !== 'cancelled' &&
      isAllowedTransition(referralTask.status, 'cancelled', 'referrer');
    return { ...task, status: allowed ? 'completed' : 'rejected', lastModified: uow.now() } as Task;
  },
};

/** A completed `abort` Task cancels the referral Task. */
export const abortCancels: WriteHandler = {
  name: 'referral.abort-cancels',
  phase: 'after-store',
  order: 10,
  types: ['Task'],
  actions: ['create'],
  origins: ['client'],
  async run(uow, change) {
    const task = change.resource as Task;
    const written = change.written as StoredVersion;
    if (!isAbortTask(task) || task.status !== 'completed') return;
    const target = task.focus?.reference?.split('/')[1] as string;
    const referralTask = (await uow.system.read('Task', target))?.resource as Task;
    await moveReferralTask(uow, referralTask, 'cancelled', 'cancelled', task.reasonCode);
    tell(uow, referralTask.focus?.reference as string, {
      code: 'cancellation',
      source: { reference: `Task/${written.id}` },
      sourceVersion: written.versionId,
      cancellationReason: task.reasonCode,
      cancelledBy: task.requester,
    });
  },
};

/** The referrer revoked (or entered-in-error, or deleted) the referral: its Task is cancelled. */
export const referralWithdrawn: WriteHandler = {
  name: 'referral.withdrawn',
  phase: 'after-store',
  order: 10,
  types: ['ServiceRequest'],
  actions: ['update', 'delete'],
  origins: ['client'],
  async run(uow, change) {
    const previous = change.previous as StoredVersion;
    const before = previous.resource as ServiceRequest | undefined;
    // A deleted referral leaves no live work behind.
    const referral =
      change.action === 'delete'
        ? ({ ...before, status: 'revoked' } as ServiceRequest)
        : (change.resource as ServiceRequest);
    if (change.action !== 'delete' && before?.status === referral.status) return;
    if (referral.status !== 'revoked' && referral.status !== 'entered-in-error') return;
    await cancelReferralTask(uow, referral, previous);
  },
};

async function cancelReferralTask(
  uow: UnitOfWork,
  referral: ServiceRequest,
  previous: StoredVersion,
): Promise<void> {
  const task = await referralTaskFor(uow, `ServiceRequest/${referral.id}`);
  if (task && isAllowedTransition(task.status, 'cancelled', 'referrer') && task.status !== 'cancelled') {
    await moveReferralTask(uow, task, 'cancelled', 'cancelled');
    tell(uow, `ServiceRequest/${referral.id}`, {
      code: 'cancellation',
      source: { reference: `ServiceRequest/${referral.id}` },
      sourceVersion: String(Number(previous.versionId) + 1),
      cancelledBy: referral.requester,
    });
  }
}
