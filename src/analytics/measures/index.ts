import { OUTCOME_MEASURES } from '../../progress/outcome-measures.js';
import { noShows, visitsAttended } from './attendance.js';
import { dropOff, funnel } from './conversion.js';
import { satisfaction } from './feedback.js';
import { mcidReached, meanChange } from './outcomes.js';
import { timeTo } from './timeliness.js';
import { acceptance, decline } from './triage.js';
import type { GroupComputation } from './types.js';
import { newReferrers, referrals, referralsFromNewReferrers } from './volume.js';

/**
 * Every group a Measure in profiles/ may name (by its code), with the pure computation behind it.
 * The Measure resources are the contract; a test keeps the two in step.
 */
export const GROUPS: Record<string, GroupComputation> = {
  referrals,
  'new-referrers': newReferrers,
  'referrals-from-new-referrers': referralsFromNewReferrers,
  acceptance,
  decline,
  'funnel-accepted': funnel('accepted'),
  'funnel-booked': funnel('booked'),
  'funnel-first-visit': funnel('first-visit'),
  'funnel-discharged': funnel('discharged'),
  'drop-off': dropOff,
  'days-to-first-contact-median': timeTo('first-contact', 'median'),
  'days-to-first-contact-p90': timeTo('first-contact', 'p90'),
  'days-to-booking-median': timeTo('booking', 'median'),
  'days-to-booking-p90': timeTo('booking', 'p90'),
  'days-to-first-visit-median': timeTo('first-visit', 'median'),
  'days-to-first-visit-p90': timeTo('first-visit', 'p90'),
  'visits-attended': visitsAttended,
  'no-shows': noShows,
  'communication-satisfaction': satisfaction('communication'),
  'outcome-satisfaction': satisfaction('outcomes'),
  ...Object.fromEntries(
    OUTCOME_MEASURES.flatMap((m) => [
      [`${m.id}-mean-change`, meanChange(m)] as const,
      ...(m.mcid ? [[`${m.id}-mcid`, mcidReached(m)] as const] : []),
    ]),
  ),
};

export { STRATIFIERS, ANALYTICS_SYSTEM } from './stratifiers.js';
export type { AnalyticsSubset, GroupComputation, GroupResult, MeasureContext } from './types.js';
