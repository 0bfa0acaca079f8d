import type { ReferralFact } from '../facts.js';
import { daysBetween, median, percentile } from '../stats.js';
import { days } from './scores.js';
import { DAYS_DIGITS, type GroupComputation } from './types.js';

export type Interval = 'first-contact' | 'booking' | 'first-visit';

const END: Record<Interval, (f: ReferralFact) => number | undefined> = {
  'first-contact': (f) => (f.triage === 'accepted' || f.triage === 'declined' ? f.triagedMs : undefined),
  booking: (f) => f.bookedMs,
  'first-visit': (f) => f.firstVisitMs,
};

/** Days from the referral's authoredOn to the event, for the referrals where it happened. */
export function intervalDays(facts: ReferralFact[], interval: Interval): number[] {
  const out: number[] = [];
  for (const f of facts) {
    const end = END[interval](f);
    if (end !== undefined) out.push(daysBetween(f.authoredMs, end));
  }
  return out;
}

/**
 * Median or 90th percentile (nearest rank) of the days to the event: a continuous-variable group
 * whose measure population is the referrals where the event happened (the others are censored).
 */
export function timeTo(interval: Interval, statistic: 'median' | 'p90'): GroupComputation {
  return ({ facts }) => {
    const values = intervalDays(facts, interval);
    const value = statistic === 'median' ? median(values) : percentile(values, 90);
    return {
      populations: { 'initial-population': facts.length, 'measure-population': values.length },
      ...(value !== undefined ? { score: days(value, DAYS_DIGITS) } : {}),
    };
  };
}
