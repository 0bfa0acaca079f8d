import type {
  CodeableConcept,
  Measure,
  MeasureGroupPopulation,
  MeasureReport,
  MeasureReportGroup,
  MeasureReportGroupPopulation,
  Organization,
  Reference,
} from '@medplum/fhirtypes';
import { groupCode } from './definitions.js';
import type { FeedbackFact } from './feedback.js';
import type { ReferralFact } from './facts.js';
import { GROUPS, STRATIFIERS } from './measures/index.js';
import type { Stratifier } from './measures/stratifiers.js';
import type { AnalyticsSubset, GroupResult, MeasureContext, PopulationCode } from './measures/types.js';
import type { Period } from './period.js';

/**
 * A summary MeasureReport (https://hl7.org/fhir/R4/measurereport.html) for one Measure over a
 * subset of the period's facts: per group the population counts and measureScore, per stratifier
 * one stratum per value with its own counts and score. Pure.
 */
export interface ReportOptions {
  period: Period;
  /** The referring source the report is for, when one was asked for. */
  subject?: MeasureReport['subject'];
  /** MeasureReport.date. */
  now: string;
  reporter?: Reference<Organization>;
}

export function evaluateMeasure(
  measure: Measure,
  subset: AnalyticsSubset,
  context: MeasureContext,
  options: ReportOptions,
): MeasureReport {
  // Groups of one Measure often share a stratifier: split the subset once per stratifier.
  const partitions = new Map<string, Strata>();
  const strataOf = (code: string, by: Stratifier): Strata => {
    let strata = partitions.get(code);
    if (!strata) {
      strata = stratify(subset, by);
      partitions.set(code, strata);
    }
    return strata;
  };
  return {
    resourceType: 'MeasureReport',
    status: 'complete',
    type: 'summary',
    measure: measure.url as string,
    ...(options.subject ? { subject: options.subject } : {}),
    date: options.now,
    ...(options.reporter ? { reporter: options.reporter } : {}),
    period: { start: options.period.start, end: options.period.end },
    ...(measure.improvementNotation ? { improvementNotation: measure.improvementNotation } : {}),
    group: (measure.group ?? []).map((group) => {
      const code = groupCode(group) as string;
      const compute = GROUPS[code];
      if (!compute) throw new Error(`No computation for group ${code}`);
      const result = compute(subset, context);
      return {
        code: group.code,
        ...populationsOf(group.population, result),
        ...(group.stratifier?.length
          ? {
              stratifier: group.stratifier.map((stratifier) => {
                const code = groupCode(stratifier) as string;
                const by = STRATIFIERS[code];
                if (!by) throw new Error(`No stratifier ${code}`);
                return {
                  code: [stratifier.code as NonNullable<typeof stratifier.code>],
                  stratum: strataOf(code, by).map(({ value, subset: part }) => ({
                    value,
                    ...populationsOf(group.population, compute(part, context)),
                  })),
                };
              }),
            }
          : {}),
      } satisfies MeasureReportGroup;
    }),
  };
}

function populationsOf(
  defined: MeasureGroupPopulation[] | undefined,
  result: GroupResult,
): Pick<MeasureReportGroup, 'population' | 'measureScore'> {
  const population: MeasureReportGroupPopulation[] = (defined ?? []).map((p) => {
    const code = p.code?.coding?.[0]?.code as PopulationCode;
    return { code: p.code, count: result.populations[code] ?? 0 };
  });
  return {
    population,
    ...(result.score
      ? {
          measureScore: {
            value: result.score.value,
            unit: result.score.unit,
            ...(result.score.system ? { system: result.score.system } : {}),
            ...(result.score.code ? { code: result.score.code } : {}),
          },
        }
      : {}),
  };
}

type Strata = { value: CodeableConcept; subset: AnalyticsSubset }[];

/**
 * The subset split by the stratifier, strata in key order. Each stratum's value is built once,
 * from its first member; the key alone decides membership.
 */
function stratify(subset: AnalyticsSubset, stratifier: Stratifier): Strata {
  const strata = new Map<
    string,
    { first: () => CodeableConcept; facts: ReferralFact[]; feedback: FeedbackFact[] }
  >();
  const slot = (key: string, first: () => CodeableConcept) => {
    let s = strata.get(key);
    if (!s) {
      s = { first, facts: [], feedback: [] };
      strata.set(key, s);
    }
    return s;
  };
  for (const fact of subset.facts) {
    const key = stratifier.keyOfReferral?.(fact) ?? stratifier.ofReferral(fact).key;
    slot(key, () => stratifier.ofReferral(fact).value).facts.push(fact);
  }
  const ofFeedback = stratifier.ofFeedback;
  if (ofFeedback) {
    for (const fact of subset.feedback) {
      const key = stratifier.keyOfFeedback?.(fact) ?? ofFeedback(fact).key;
      slot(key, () => ofFeedback(fact).value).feedback.push(fact);
    }
  }
  return [...strata.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, s]) => ({ value: s.first(), subset: { facts: s.facts, feedback: s.feedback } }));
}
