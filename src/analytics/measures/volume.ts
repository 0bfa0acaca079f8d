import { proportion } from './scores.js';
import type { GroupComputation } from './types.js';

/** Referral volume: every referral authored in the period (stratified by source, month, week). */
export const referrals: GroupComputation = ({ facts }) => ({
  populations: { 'initial-population': facts.length },
});

/**
 * New referrers: of the referring sources with a referral in the period, those whose first
 * referral on record is in it (none before the period start).
 */
export const newReferrers: GroupComputation = ({ facts }, { newReferrers }) => {
  const keys = new Set(facts.map((f) => f.referrer.key));
  const fresh = [...keys].filter((k) => newReferrers.has(k)).length;
  return proportion(keys.size, keys.size, fresh);
};

/** Referrals that came from new referrers. */
export const referralsFromNewReferrers: GroupComputation = ({ facts }, { newReferrers }) =>
  proportion(facts.length, facts.length, facts.filter((f) => newReferrers.has(f.referrer.key)).length);
