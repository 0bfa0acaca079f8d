import type { CarePlan, CarePlanActivityDetail, Duration, TimingRepeat } from '@medplum/fhirtypes';
import { formatDate, instantOf } from './text-format.js';

/**
 * The plan of care (CarePlan) as the referrer reads it: each activity with its frequency and
 * duration, and the number of visits it plans. Visits are counted from the activities whose
 * detail.kind is Appointment (https://hl7.org/fhir/R4/valueset-care-plan-activity-kind.html); when no
 * activity says so, from every activity with a computable schedule.
 */

const CURRENT = ['active', 'on-hold', 'completed'];

/** The plan in force: active before on-hold or completed, then the most recently created. */
export function currentCarePlan(carePlans: CarePlan[]): CarePlan | undefined {
  return carePlans
    .filter((p) => CURRENT.includes(p.status))
    .sort(
      (a, b) =>
        CURRENT.indexOf(a.status) - CURRENT.indexOf(b.status) ||
        startOf(b) - startOf(a) ||
        (a.id ?? '').localeCompare(b.id ?? ''),
    )[0];
}

function startOf(plan: CarePlan): number {
  const t = plan.created ?? plan.period?.start;
  return t ? instantOf(t) : Number.NEGATIVE_INFINITY;
}

function activeDetails(plan: CarePlan): CarePlanActivityDetail[] {
  return (plan.activity ?? [])
    .map((a) => a.detail)
    .filter((d): d is CarePlanActivityDetail => d !== undefined)
    .filter((d) => !['cancelled', 'entered-in-error', 'stopped'].includes(d.status));
}

/** Planned visits: the sum over the visit activities, or undefined when none can be computed. */
export function plannedVisits(plan: CarePlan): number | undefined {
  const details = activeDetails(plan);
  const visits = details.some((d) => d.kind === 'Appointment')
    ? details.filter((d) => d.kind === 'Appointment')
    : details;
  const counts = visits.map((d) => timingVisits(d.scheduledTiming?.repeat)).filter((n) => n !== undefined);
  return counts.length ? counts.reduce((sum, n) => sum + n, 0) : undefined;
}

/** One line per activity: 'Therapeutic exercise: twice a week for 6 weeks (12 visits)'. */
export function planOfCareItems(plan: CarePlan): string[] {
  return activeDetails(plan).flatMap((d) => {
    const what = d.description ?? d.code?.text ?? d.code?.coding?.find((c) => c.display)?.display;
    if (!what) return [];
    const when = scheduleText(d);
    return [when ? `${what}: ${when}` : what];
  });
}

const DAYS: Record<string, number> = { d: 1, wk: 7, mo: 365.25 / 12, a: 365.25 };
const UNIT_NAMES: Record<string, [string, string]> = {
  d: ['day', 'days'],
  wk: ['week', 'weeks'],
  mo: ['month', 'months'],
  a: ['year', 'years'],
};
const UNIT_WORDS: Record<string, string> = {
  day: 'd',
  days: 'd',
  week: 'wk',
  weeks: 'wk',
  month: 'mo',
  months: 'mo',
  year: 'a',
  years: 'a',
};

function durationUnit(duration: Duration | undefined): string | undefined {
  const unit = duration?.code ?? UNIT_WORDS[duration?.unit?.toLowerCase() ?? ''];
  return unit && unit in DAYS ? unit : undefined;
}

/** Timing.repeat → number of occurrences: count, or frequency per period over the bounds. */
export function timingVisits(repeat: TimingRepeat | undefined): number | undefined {
  if (!repeat) return undefined;
  if (repeat.count !== undefined) return repeat.count;
  const periodDays = repeat.periodUnit ? DAYS[repeat.periodUnit] : undefined;
  if (periodDays === undefined) return undefined;
  const unit = durationUnit(repeat.boundsDuration);
  const span =
    unit !== undefined && repeat.boundsDuration?.value !== undefined
      ? repeat.boundsDuration.value * (DAYS[unit] as number)
      : repeat.boundsPeriod?.start && repeat.boundsPeriod.end
        ? (instantOf(repeat.boundsPeriod.end) - instantOf(repeat.boundsPeriod.start)) / 86_400_000
        : undefined;
  if (span === undefined) return undefined;
  const visits = Math.round(((repeat.frequency ?? 1) * span) / ((repeat.period ?? 1) * periodDays));
  return visits > 0 ? visits : undefined;
}

function scheduleText(detail: CarePlanActivityDetail): string | undefined {
  if (detail.scheduledString) return detail.scheduledString;
  if (detail.scheduledPeriod?.start) {
    const { start, end } = detail.scheduledPeriod;
    return end ? `from ${formatDate(start)} to ${formatDate(end)}` : `from ${formatDate(start)}`;
  }
  const timing = detail.scheduledTiming;
  const repeat = timing?.repeat;
  if (!repeat?.periodUnit || !UNIT_NAMES[repeat.periodUnit]) {
    return timing?.code?.text;
  }
  const [one, many] = UNIT_NAMES[repeat.periodUnit] as [string, string];
  const frequency = repeat.frequency ?? 1;
  const times = frequency === 1 ? 'once' : frequency === 2 ? 'twice' : `${frequency} times`;
  const period = repeat.period ?? 1;
  let text = period === 1 ? `${times} a ${one}` : `${times} every ${period} ${many}`;
  const unit = durationUnit(repeat.boundsDuration);
  if (unit && repeat.boundsDuration?.value !== undefined) {
    const [bOne, bMany] = UNIT_NAMES[unit] as [string, string];
    text += ` for ${repeat.boundsDuration.value} ${repeat.boundsDuration.value === 1 ? bOne : bMany}`;
  } else if (repeat.boundsPeriod?.start && repeat.boundsPeriod.end) {
    text += ` from ${formatDate(repeat.boundsPeriod.start)} to ${formatDate(repeat.boundsPeriod.end)}`;
  }
  const visits = detail.kind === 'Appointment' ? timingVisits(repeat) : undefined;
  return visits === undefined ? text : `${text} (${visits} ${visits === 1 ? 'visit' : 'visits'})`;
}
