import type { EpisodeOfCare, ServiceRequest, Task } from '@medplum/fhirtypes';
import { findAll, storeResource } from '../rest/internal-write.js';
import type { UnitOfWork, WriteHandler } from '../rest/unit-of-work.js';
import { isReferralTask } from './referral-task.js';
import { episodeStatusFor, moveEpisode } from './task-state-machine.js';

/**
 * Whoever moves the referral Task (the practice, or the server on a visit or a cancellation), the
 * EpisodeOfCare follows its status, and a finished Task settles the referral: completed on
 * discharge, revoked on cancel. Written once here for every path.
 */
export const episodeFollowsTask: WriteHandler = {
  name: 'referral.episode-follows-task',
  phase: 'after-store',
  order: 10,
  types: ['Task'],
  actions: ['update'],
  async run(uow, change) {
    const task = change.resource as Task;
    const before = change.previous?.resource as Task | undefined;
    if (!isReferralTask(task) || !before || before.status === task.status) return;
    await moveEpisodeForTask(uow, task);
    if (task.status === 'completed' || task.status === 'cancelled') {
      await settleReferral(uow, task);
    }
  },
};

async function moveEpisodeForTask(uow: UnitOfWork, task: Task): Promise<void> {
  const status = episodeStatusFor(task.status);
  if (!status) return;
  for (const episode of await findAll<EpisodeOfCare>(
    uow,
    'EpisodeOfCare',
    `incoming-referral=${task.focus?.reference}`,
  )) {
    const moved = moveEpisode(episode, status, uow.now());
    if (moved !== episode) await storeResource(uow, moved);
  }
}

async function settleReferral(uow: UnitOfWork, task: Task): Promise<void> {
  const id = task.focus?.reference?.split('/')[1] as string;
  const referral = (await uow.system.read('ServiceRequest', id))?.resource as ServiceRequest | undefined;
  const status = task.status === 'completed' ? 'completed' : 'revoked';
  if (referral && referral.status === 'active') {
    await storeResource(uow, { ...referral, status });
  }
}
