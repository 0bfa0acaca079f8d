import type { Reference, Task } from '@medplum/fhirtypes';
import { findAll, storeResource } from '../rest/internal-write.js';
import type { UnitOfWork } from '../rest/unit-of-work.js';
import { businessStatus, businessStatusOf, TASK_CODE_SYSTEM, type BusinessStatus } from './codes.js';
import type { Actor } from './task-state-machine.js';

/** The referral's workflow Task (BSeR/360X pattern: code `fulfill`, focus the ServiceRequest). */
export function isReferralTask(task: Task): boolean {
  return (
    task.code?.coding?.some((c) => c.system === TASK_CODE_SYSTEM && c.code === 'fulfill') === true &&
    (task.focus?.reference?.startsWith('ServiceRequest/') ?? false)
  );
}

/** A Task asking to cancel a referral (code `abort`, focus the referral Task). */
export function isAbortTask(task: Task): boolean {
  return task.code?.coding?.some((c) => c.system === TASK_CODE_SYSTEM && c.code === 'abort') === true;
}

export async function referralTaskFor(uow: UnitOfWork, serviceRequest: string): Promise<Task | undefined> {
  const tasks = await findAll<Task>(
    uow,
    'Task',
    `focus=${serviceRequest}&code=${TASK_CODE_SYSTEM}|fulfill`,
    2,
  );
  return tasks[0];
}

/**
 * The server moves the referral Task itself (a visit, a cancellation); the episode and the
 * referral follow through their own handlers (episode-follows-task.ts), as for the practice's moves.
 */
export async function moveReferralTask(
  uow: UnitOfWork,
  task: Task,
  status: Task['status'],
  business: BusinessStatus,
  reason?: Task['statusReason'],
): Promise<void> {
  if (task.status === status && businessStatusOf(task) === business) return;
  await storeResource(uow, {
    ...task,
    status,
    businessStatus: businessStatus(business),
    lastModified: uow.now(),
    ...(reason ? { statusReason: reason } : {}),
  });
}

/** The ServiceRequest a visit or booking is based on. */
export function referralOf(basedOn: Reference[] | undefined): string | undefined {
  return basedOn?.find((r) => r.reference?.startsWith('ServiceRequest/'))?.reference;
}

/** Referrer clients act as the referrer side, practice clients as the practice; admins and AUTH=off as either. */
export function actorOf(uow: UnitOfWork): Actor {
  return uow.auth?.role === 'referrer' ? 'referrer' : uow.auth?.role === 'practice' ? 'practice' : 'any';
}
