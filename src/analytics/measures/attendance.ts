import { proportion } from './scores.js';
import type { GroupComputation } from './types.js';

/**
 * Visits attended against visits planned, over the referrals seen whose plan is known: the
 * numerator and denominator count visits, not referrals.
 */
export const visitsAttended: GroupComputation = ({ facts }) => {
  const planned = facts.filter((f) => f.firstVisit && f.visitsPlanned !== undefined);
  let attended = 0;
  let plannedVisits = 0;
  for (const f of planned) {
    attended += f.visitsAttended;
    plannedVisits += f.visitsPlanned as number;
  }
  return proportion(planned.length, plannedVisits, attended);
};

/** No-shows among the appointments that were due (fulfilled, arrived, checked-in or noshow). */
export const noShows: GroupComputation = ({ facts }) => {
  let due = 0;
  let missed = 0;
  for (const f of facts) {
    due += f.appointmentsDue;
    missed += f.noShows;
  }
  return proportion(facts.length, due, missed);
};
