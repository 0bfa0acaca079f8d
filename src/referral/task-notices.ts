import type { Task } from '@medplum/fhirtypes';
import type { ProgressEventCode } from '../progress/index.js';
import type { WriteHandler } from '../rest/unit-of-work.js';
import { tell } from './notices.js';
import { isReferralTask } from './referral-task.js';

/**
 * The practice's own Task changes that the referrer hears about. The server's moves tell the
 * referrer through the event that caused them (a visit, a discharge, a cancellation).
 */
const TASK_STATUS_EVENTS: Partial<Record<Task['status'], ProgressEventCode>> = {
  accepted: 'referral-accepted',
  rejected: 'referral-declined',
  completed: 'discharge',
  cancelled: 'cancellation',
};

export const taskNotices: WriteHandler = {
  name: 'referral.task-notices',
  phase: 'after-store',
  order: 20,
  types: ['Task'],
  actions: ['update'],
  origins: ['client'],
  run(uow, change) {
    const task = change.resource as Task;
    const before = change.previous?.resource as Task | undefined;
    const written = change.written;
    if (!written || !isReferralTask(task) || !before || before.status === task.status) return;
    const code = TASK_STATUS_EVENTS[task.status];
    if (!code) return;
    tell(uow, task.focus?.reference as string, {
      code,
      source: { reference: `Task/${written.id}` },
      sourceVersion: written.versionId,
      ...(code === 'referral-declined' ? { declineReason: task.statusReason, advice: adviceOf(task) } : {}),
      ...(code === 'cancellation' ? { cancellationReason: task.statusReason } : {}),
    });
  },
};

/** Advice for the referrer is written in the Task's notes when declining. */
function adviceOf(task: Task): string | undefined {
  const text = task.note
    ?.map((n) => n.text)
    .filter(Boolean)
    .join(' ');
  return text || undefined;
}
