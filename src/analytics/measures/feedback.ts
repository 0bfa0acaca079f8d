import { mean, round } from '../stats.js';
import { MEAN_DIGITS, UCUM, type GroupComputation } from './types.js';

/** Mean 1-5 satisfaction over the feedback responses of the period that answered the question. */
export function satisfaction(item: 'communication' | 'outcomes'): GroupComputation {
  return ({ feedback }) => {
    const scores = feedback.map((f) => f[item]).filter((s): s is number => s !== undefined);
    const value = mean(scores);
    return {
      populations: { 'initial-population': feedback.length, 'measure-population': scores.length },
      ...(value !== undefined
        ? { score: { value: round(value, MEAN_DIGITS), unit: '{score}', system: UCUM, code: '{score}' } }
        : {}),
    };
  };
}
