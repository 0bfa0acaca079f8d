import type { FeedbackFact } from '../feedback.js';
import type { ReferralFact } from '../facts.js';

/** What a group is computed over: the referrals of the period (and source), and the feedback. */
export interface AnalyticsSubset {
  facts: ReferralFact[];
  feedback: FeedbackFact[];
}

export interface MeasureContext {
  /** Referrer keys whose first referral on record is in the period. */
  newReferrers: ReadonlySet<string>;
}

export type PopulationCode = 'initial-population' | 'numerator' | 'denominator' | 'measure-population';

export interface Score {
  value: number;
  unit: string;
  system?: string;
  code?: string;
}

export interface GroupResult {
  populations: Partial<Record<PopulationCode, number>>;
  score?: Score;
}

export type GroupComputation = (subset: AnalyticsSubset, context: MeasureContext) => GroupResult;

export const UCUM = 'http://unitsofmeasure.org';
export const PROPORTION_DIGITS = 4;
export const DAYS_DIGITS = 2;
export const MEAN_DIGITS = 2;
