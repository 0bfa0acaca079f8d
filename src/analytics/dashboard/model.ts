import { OUTCOME_MEASURES } from '../../progress/outcome-measures.js';
import type { ReferralFact, WaitStage } from '../facts.js';
import type { AnalyticsDataset } from '../loader.js';
import { GROUPS } from '../measures/index.js';
import { STAGE_DISPLAY } from '../measures/stratifiers.js';
import { intervalDays } from '../measures/timeliness.js';
import type { AnalyticsSubset, MeasureContext } from '../measures/types.js';
import { isoWeekOf, monthOf, type Period } from '../period.js';
import { subsetOf } from '../service.js';
import { median, percentile, round } from '../stats.js';

/**
 * Everything the dashboard shows, computed from a period's dataset and the chosen source. Every
 * figure that is also in a MeasureReport is taken from the same group computation, so the two
 * always agree. Pure.
 */
export interface DashboardModel {
  period: { start: string; end: string };
  source?: { key: string; display: string };
  sources: { key: string; display: string; kind: 'referrer' | 'organization'; referrals: number }[];
  kpis: Kpi[];
  volume: {
    buckets: string[];
    unit: 'month' | 'week';
    series: { key: string; display: string; counts: number[] }[];
  };
  funnel: { code: string; label: string; count: number; share?: number }[];
  dropOff: {
    stage: WaitStage;
    label: string;
    count: number;
    reasons: { display: string; count: number }[];
  }[];
  declineReasons: { display: string; count: number }[];
  timing: {
    intervals: { code: string; label: string; n: number; median?: number; p90?: number }[];
    histogram: { label: string; count: number }[];
    firstVisit: { median?: number; p90?: number; max: number };
  };
  outcomes: {
    id: string;
    label: string;
    unit: string;
    better: 'higher' | 'lower';
    n: number;
    meanChange?: number;
    mcid?: number;
    mcidShare?: number;
  }[];
  feedback: {
    responses: number;
    items: {
      code: 'communication' | 'outcomes';
      label: string;
      n: number;
      mean?: number;
      distribution: number[];
    }[];
    comments: { authored: string; source: string; text: string }[];
  };
}

export interface Kpi {
  code: string;
  label: string;
  value?: number;
  format: 'count' | 'percent' | 'days' | 'score';
}

const HISTOGRAM_BINS: [number, number, string][] = [
  [0, 3, '0–2'],
  [3, 7, '3–6'],
  [7, 10, '7–9'],
  [10, 14, '10–13'],
  [14, 21, '14–20'],
  [21, 28, '21–27'],
  [28, 42, '28–41'],
  [42, Infinity, '42+'],
];
const TOP_SERIES = 7;

export function dashboardModel(
  dataset: AnalyticsDataset,
  period: Period,
  sourceKey?: string,
): DashboardModel {
  const subset = subsetOf(dataset, sourceKey);
  const context: MeasureContext = { newReferrers: dataset.newReferrers };
  const score = (code: string, part: AnalyticsSubset = subset): number | undefined =>
    GROUPS[code]?.(part, context).score?.value;
  const count = (code: string, population: 'numerator' | 'initial-population' | 'denominator'): number =>
    GROUPS[code]?.(subset, context).populations[population] ?? 0;
  const source = sourceKey ? dataset.sources.get(sourceKey) : undefined;
  const { facts } = subset;

  const feedbackScores = (item: 'communication' | 'outcomes'): number[] =>
    subset.feedback.map((f) => f[item]).filter((s): s is number => s !== undefined);

  return {
    period: { start: period.start, end: period.end },
    ...(sourceKey ? { source: { key: sourceKey, display: source?.display ?? sourceKey } } : {}),
    sources: [...dataset.sources.entries()]
      .map(([key, s]) => ({ key, ...s }))
      .sort((a, b) => b.referrals - a.referrals || a.display.localeCompare(b.display)),
    kpis: [
      { code: 'referrals', label: 'Referrals', value: facts.length, format: 'count' },
      {
        code: 'new-referrers',
        label: 'New referrers',
        value: count('new-referrers', 'numerator'),
        format: 'count',
      },
      { code: 'acceptance', label: 'Accepted (of triaged)', value: score('acceptance'), format: 'percent' },
      {
        code: 'conversion',
        label: 'Seen (first visit)',
        value: score('funnel-first-visit'),
        format: 'percent',
      },
      {
        code: 'days-to-first-visit',
        label: 'Days to first visit, median',
        value: score('days-to-first-visit-median'),
        format: 'days',
      },
      { code: 'no-shows', label: 'No-show rate', value: score('no-shows'), format: 'percent' },
      {
        code: 'attendance',
        label: 'Visits attended / planned',
        value: score('visits-attended'),
        format: 'percent',
      },
      {
        code: 'satisfaction',
        label: 'Referrer satisfaction (communication)',
        value: score('communication-satisfaction'),
        format: 'score',
      },
    ],
    volume: volumeSeries(facts, period, dataset),
    funnel: [
      { code: 'referred', label: 'Referred', count: facts.length, ...(facts.length ? { share: 1 } : {}) },
      ...(
        [
          ['funnel-accepted', 'Accepted'],
          ['funnel-booked', 'Booked'],
          ['funnel-first-visit', 'First visit'],
          ['funnel-discharged', 'Discharged'],
        ] as const
      ).map(([code, label]) => {
        const s = score(code);
        return { code, label, count: count(code, 'numerator'), ...(s !== undefined ? { share: s } : {}) };
      }),
    ],
    dropOff: dropOffs(facts),
    declineReasons: tally(
      facts.filter((f) => f.declineReason).map((f) => f.declineReason?.display as string),
    ),
    timing: timing(facts),
    outcomes: OUTCOME_MEASURES.map((m) => {
      const change = GROUPS[`${m.id}-mean-change`]?.(subset, context);
      const mcid = m.mcid ? GROUPS[`${m.id}-mcid`]?.(subset, context) : undefined;
      return {
        id: m.id,
        label: m.abbreviation?.split(',')[0] ?? m.name,
        unit: m.unit,
        better: m.better,
        n: change?.populations['measure-population'] ?? 0,
        ...(change?.score ? { meanChange: change.score.value } : {}),
        ...(m.mcid ? { mcid: m.mcid.value } : {}),
        ...(mcid?.score ? { mcidShare: mcid.score.value } : {}),
      };
    }).filter((o) => o.n > 0),
    feedback: {
      responses: subset.feedback.length,
      items: (
        [
          ['communication', 'Communication'],
          ['outcomes', 'Outcomes'],
        ] as const
      ).map(([code, label]) => {
        const scores = feedbackScores(code);
        const mean = score(code === 'communication' ? 'communication-satisfaction' : 'outcome-satisfaction');
        return {
          code,
          label,
          n: scores.length,
          ...(mean !== undefined ? { mean } : {}),
          distribution: [1, 2, 3, 4, 5].map((v) => scores.filter((s) => s === v).length),
        };
      }),
      comments: subset.feedback
        .filter((f) => f.comment)
        .sort((a, b) => b.authoredMs - a.authoredMs)
        .slice(0, 12)
        .map((f) => ({
          authored: new Date(f.authoredMs).toISOString().slice(0, 10),
          source: f.referrer.display,
          text: f.comment as string,
        })),
    },
  };
}

function volumeSeries(
  facts: ReferralFact[],
  period: Period,
  dataset: AnalyticsDataset,
): DashboardModel['volume'] {
  const spanDays = (period.endMs - period.startMs) / 86_400_000;
  const unit = spanDays <= 120 ? 'week' : 'month';
  const bucketOf = unit === 'week' ? isoWeekOf : monthOf;
  const buckets: string[] = [];
  for (let t = period.startMs; t <= period.endMs; t += 86_400_000) {
    const b = bucketOf(t);
    if (buckets[buckets.length - 1] !== b && !buckets.includes(b)) buckets.push(b);
  }
  const index = new Map(buckets.map((b, i) => [b, i]));
  const bySource = new Map<string, number[]>();
  for (const f of facts) {
    const counts = bySource.get(f.referrer.key) ?? buckets.map(() => 0);
    const i = index.get(bucketOf(f.authoredMs));
    if (i !== undefined) counts[i] = (counts[i] ?? 0) + 1;
    bySource.set(f.referrer.key, counts);
  }
  const ranked = [...bySource.entries()].sort((a, b) => sum(b[1]) - sum(a[1]) || a[0].localeCompare(b[0]));
  const top = ranked.slice(0, TOP_SERIES);
  const rest = ranked.slice(TOP_SERIES);
  const series = top.map(([key, counts]) => ({
    key,
    display: dataset.sources.get(key)?.display ?? key,
    counts,
  }));
  if (rest.length) {
    series.push({
      key: '~other',
      display: `${rest.length} other referrer${rest.length === 1 ? '' : 's'}`,
      counts: buckets.map((_, i) => rest.reduce((s, [, c]) => s + (c[i] ?? 0), 0)),
    });
  }
  return { buckets, unit, series };
}

function dropOffs(facts: ReferralFact[]): DashboardModel['dropOff'] {
  const stages: WaitStage[] = ['triage', 'booking', 'first-visit', 'treatment'];
  return stages
    .map((stage) => {
      const dropped = facts.filter((f) => f.state === 'dropped' && f.stage === stage);
      return {
        stage,
        label: STAGE_DISPLAY[stage] ?? stage,
        count: dropped.length,
        reasons: tally(dropped.map((f) => f.dropReason?.display ?? 'Unknown')),
      };
    })
    .filter((d) => d.count > 0);
}

function timing(facts: ReferralFact[]): DashboardModel['timing'] {
  const intervals = (
    [
      ['first-contact', 'First contact (triage decision)'],
      ['booking', 'Booking'],
      ['first-visit', 'First visit'],
    ] as const
  ).map(([code, label]) => {
    const values = intervalDays(facts, code);
    const m = median(values);
    const p = percentile(values, 90);
    return {
      code,
      label,
      n: values.length,
      ...(m !== undefined ? { median: round(m, 2) } : {}),
      ...(p !== undefined ? { p90: round(p, 2) } : {}),
    };
  });
  const values = intervalDays(facts, 'first-visit');
  const firstVisit = intervals[2];
  return {
    intervals,
    histogram: HISTOGRAM_BINS.map(([from, to, label]) => ({
      label,
      count: values.filter((v) => v >= from && v < to).length,
    })),
    firstVisit: {
      ...(firstVisit?.median !== undefined ? { median: firstVisit.median } : {}),
      ...(firstVisit?.p90 !== undefined ? { p90: firstVisit.p90 } : {}),
      max: values.length ? Math.max(...values) : 0,
    },
  };
}

function tally(values: string[]): { display: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()]
    .map(([display, count]) => ({ display, count }))
    .sort((a, b) => b.count - a.count || a.display.localeCompare(b.display));
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
