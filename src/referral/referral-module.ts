import type { Organization, Reference } from '@medplum/fhirtypes';
import type { WriteModule } from '../rest/unit-of-work.js';
import { abortCancels, abortDecision, referralWithdrawn } from './cancellation.js';
import { communicationSender } from './communication-sender.js';
import { feedbackAuthor } from './feedback-author.js';
import { episodeFollowsTask } from './episode-follows-task.js';
import { referralIntake, referralProfileCheck } from './intake.js';
import { practiceOwned } from './practice-owned.js';
import { referralLabels } from './referral-labels.js';
import { referrerIdentity } from './referrer-identity.js';
import { resendDetection } from './resend-detection.js';
import { taskNotices } from './task-notices.js';
import { triage } from './triage.js';
import { appointmentVisits, encounterVisits } from './visits.js';

export interface ReferralModuleOptions {
  /** The practice that receives referrals addressed to no other Organization. */
  practice: Reference<Organization>;
  /** A progress report goes to the referrer every N attended visits (default 6). */
  progressReportEveryVisits?: number;
}

/** The referral workflow's part of the write path, one handler per trigger. */
export function referralModule(options: ReferralModuleOptions): WriteModule {
  return {
    identity: [resendDetection(options.practice)],
    // Referrers address referrals to the practice without being able to read its Organization.
    publicReferences: options.practice.reference ? [options.practice.reference] : [],
    labels: referralLabels,
    handlers: [
      referralProfileCheck(options.practice),
      referrerIdentity,
      practiceOwned,
      communicationSender,
      feedbackAuthor,
      referralIntake(options.practice),
      triage,
      abortDecision,
      abortCancels,
      episodeFollowsTask,
      taskNotices,
      referralWithdrawn,
      appointmentVisits,
      encounterVisits(options.progressReportEveryVisits ?? 6),
    ],
  };
}
