import type { OutcomeMeasure } from '../../progress/outcome-measures.js';
import type { OutcomeChange } from '../facts.js';
import { mean, round } from '../stats.js';
import { proportion } from './scores.js';
import { MEAN_DIGITS, UCUM, type AnalyticsSubset, type GroupComputation } from './types.js';

/** Every initial-evaluation → discharge change of the measure among the discharged referrals. */
export function changesOf(subset: AnalyticsSubset, measure: OutcomeMeasure): OutcomeChange[] {
  const out: OutcomeChange[] = [];
  for (const f of subset.facts) {
    for (const o of f.outcomes) if (o.measure === measure.id) out.push(o);
  }
  return out;
}

/** Mean change (discharge − initial evaluation), in the measure's unit. */
export function meanChange(measure: OutcomeMeasure): GroupComputation {
  return (subset) => {
    const changes = changesOf(subset, measure);
    const value = mean(changes.map((c) => c.change));
    return {
      populations: {
        'initial-population': subset.facts.filter((f) => f.discharged).length,
        'measure-population': changes.length,
      },
      ...(value !== undefined
        ? {
            score: { value: round(value, MEAN_DIGITS), unit: measure.unit, system: UCUM, code: measure.unit },
          }
        : {}),
    };
  };
}

/** The share of changes that reach the measure's MCID in its better direction. */
export function mcidReached(measure: OutcomeMeasure): GroupComputation {
  return (subset) => {
    const changes = changesOf(subset, measure);
    return proportion(changes.length, changes.length, changes.filter((c) => c.mcidReached === true).length);
  };
}
