import type { ProgressEvent } from '../progress/index.js';
import type { UnitOfWork } from '../rest/unit-of-work.js';
import { recordProgress } from './progress-recorder.js';

/** A progress event for the referrer, recorded once every write of the unit is done. */
export type Notice = Omit<ProgressEvent, 'occurredAt'> & { occurredAt?: string };

/**
 * Progress updates run last before commit: an evaluation's Observations may come later in the
 * same Bundle, and the intake (order 10) must have made the episode first.
 */
export const NOTICE_ORDER = 90;

export function tell(uow: UnitOfWork, referral: string, event: Notice): void {
  const referralId = referral.split('/')[1];
  if (!referralId) return;
  uow.defer(
    'before-commit',
    async () => {
      await recordProgress(uow, referralId, { occurredAt: uow.now(), ...event });
    },
    { order: NOTICE_ORDER },
  );
}
