import { proportion } from './scores.js';
import type { GroupComputation } from './types.js';

/** Of the referrals triaged (accepted or declined), the share accepted. */
export const acceptance: GroupComputation = ({ facts }) => {
  const triaged = facts.filter((f) => f.triage === 'accepted' || f.triage === 'declined');
  return proportion(facts.length, triaged.length, triaged.filter((f) => f.triage === 'accepted').length);
};

/** Of the referrals triaged, the share declined (stratified by decline reason). */
export const decline: GroupComputation = ({ facts }) => {
  const triaged = facts.filter((f) => f.triage === 'accepted' || f.triage === 'declined');
  return proportion(facts.length, triaged.length, triaged.filter((f) => f.triage === 'declined').length);
};
