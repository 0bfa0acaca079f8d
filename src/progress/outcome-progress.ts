import type { Encounter } from '@medplum/fhirtypes';
import {
  measurementOf,
  OUTCOME_MEASURES,
  type Measurement,
  type OutcomeMeasure,
} from './outcome-measures.js';
import type { EpisodeSnapshot, ProgressEvent } from './progress-types.js';
import { formatDate, instantOf, round2 } from './text-format.js';
import { atOrBefore, idOf, initialEvaluation, refersTo } from './visits.js';

/**
 * Each outcome measure's latest value as of the event and its change since the initial evaluation.
 *
 * The initial-evaluation value is the earliest value recorded in the initial evaluation visit
 * (Observation.encounter); failing that, the earliest at or before that visit; failing that (no
 * initial evaluation on record), the earliest value of all, reported as "first recorded".
 */
export interface OutcomeRow {
  measure: OutcomeMeasure;
  /** Body site for one-sided measures (range of motion), so left and right are not mixed. */
  site?: string;
  latest: Measurement;
  baseline?: Measurement;
  /** Whether the baseline was taken at the initial evaluation, or is only the first value recorded. */
  baselineAtInitialEvaluation?: boolean;
  /** latest − baseline, in the measure's unit. */
  change?: number;
  /** The change in the measure's better direction (positive = better). */
  improvement?: number;
  mcidReached: boolean;
}

export function outcomeRows(snapshot: EpisodeSnapshot, event: ProgressEvent): OutcomeRow[] {
  const eventEncounterId = idOf(event.encounter, 'Encounter');
  const groups = new Map<string, Measurement[]>();
  for (const observation of snapshot.observations) {
    if (observation.subject && !refersTo(observation.subject, 'Patient', snapshot.patient.id)) continue;
    const m = measurementOf(observation);
    if (!m) continue;
    const inEventVisit =
      eventEncounterId !== undefined && refersTo(observation.encounter, 'Encounter', eventEncounterId);
    if (!inEventVisit && !atOrBefore(m.time, event)) continue;
    const key = `${m.measure.id}|${m.site ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const ie = initialEvaluation(snapshot, event);
  return [...groups.values()]
    .map((list) => list.sort(byTime))
    .sort(
      (a, b) =>
        OUTCOME_MEASURES.indexOf((a[0] as Measurement).measure) -
          OUTCOME_MEASURES.indexOf((b[0] as Measurement).measure) ||
        ((a[0] as Measurement).site ?? '').localeCompare((b[0] as Measurement).site ?? ''),
    )
    .map((list) => toRow(list, ie));
}

function toRow(list: Measurement[], ie: Encounter | undefined): OutcomeRow {
  const latest = list[list.length - 1] as Measurement;
  const { measure, site } = latest;
  const found = baselineOf(list, ie);
  if (!found || found.baseline === latest) {
    return { measure, ...(site ? { site } : {}), latest, mcidReached: false };
  }
  const change = round2(latest.value - found.baseline.value);
  const improvement = measure.better === 'higher' ? change : round2(-change);
  return {
    measure,
    ...(site ? { site } : {}),
    latest,
    baseline: found.baseline,
    baselineAtInitialEvaluation: found.atInitialEvaluation,
    change,
    improvement,
    mcidReached: measure.mcid !== undefined && improvement >= measure.mcid.value,
  };
}

function baselineOf(
  list: Measurement[],
  ie: Encounter | undefined,
): { baseline: Measurement; atInitialEvaluation: boolean } | undefined {
  if (ie) {
    const inVisit = list.find((m) => refersTo(m.observation.encounter, 'Encounter', ie.id));
    if (inVisit) return { baseline: inVisit, atInitialEvaluation: true };
    const end = ie.period?.end ?? ie.period?.start;
    const before = end ? list.find((m) => instantOf(m.time) <= instantOf(end)) : undefined;
    if (before) {
      // Recorded on the day of the evaluation (e.g. a questionnaire in the waiting room) counts as at it.
      const sameDay =
        ie.period?.start !== undefined && formatDate(before.time) === formatDate(ie.period.start);
      return { baseline: before, atInitialEvaluation: sameDay };
    }
  }
  const first = list[0];
  return first ? { baseline: first, atInitialEvaluation: false } : undefined;
}

function byTime(a: Measurement, b: Measurement): number {
  return (
    instantOf(a.time) - instantOf(b.time) || (a.observation.id ?? '').localeCompare(b.observation.id ?? '')
  );
}
