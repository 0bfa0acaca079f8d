import type { FunnelStage, ReferralFact } from '../facts.js';
import { proportion } from './scores.js';
import type { GroupComputation } from './types.js';

const REACHED: Record<FunnelStage, (f: ReferralFact) => boolean> = {
  accepted: (f) => f.accepted,
  booked: (f) => f.booked,
  'first-visit': (f) => f.firstVisit,
  discharged: (f) => f.discharged,
};

/** The share of the period's referrals that reached a stage of the funnel. */
export function funnel(stage: FunnelStage): GroupComputation {
  return ({ facts }) => proportion(facts.length, facts.length, facts.filter(REACHED[stage]).length);
}

/** The share that dropped off (closed without discharge); stratified by stage and reason. */
export const dropOff: GroupComputation = ({ facts }) =>
  proportion(facts.length, facts.length, facts.filter((f) => f.state === 'dropped').length);
