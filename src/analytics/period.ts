import { parseDateRange } from '../fhir/search/date-range.js';
import { fhirError } from '../fhir/errors.js';

/**
 * The reporting period of `$evaluate-measure` (periodStart, periodEnd: FHIR dates, both ends
 * inclusive: `periodEnd=2025-12-31` covers that whole day). A referral is in the period when its
 * `authoredOn` instant is; a value without a time zone is taken as UTC, as search does.
 */
export interface Period {
  /** As given, for MeasureReport.period. */
  start: string;
  end: string;
  startMs: number;
  /** Inclusive. */
  endMs: number;
}

/** Bounds the work one request can ask for. */
const MAX_PERIOD_MS = 3653 * 86_400_000;

export function parsePeriod(start: string | undefined, end: string | undefined): Period {
  if (!start || !end) {
    throw fhirError(
      'invalid-search-parameter',
      '$evaluate-measure needs periodStart and periodEnd (dates, e.g. 2025-01-01 and 2025-12-31)',
    );
  }
  const from = parseDateRange(start);
  const to = parseDateRange(end);
  if (!from || !to) {
    throw fhirError('invalid-search-parameter', 'periodStart and periodEnd must be FHIR dates or dateTimes');
  }
  if (to.high < from.low) {
    throw fhirError('invalid-search-parameter', 'periodEnd is before periodStart');
  }
  if (to.high - from.low > MAX_PERIOD_MS) {
    throw fhirError('invalid-search-parameter', 'A reporting period is at most 10 years');
  }
  return { start, end, startMs: from.low, endMs: to.high };
}

const FULL_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2})$/;

/** The instant of a FHIR date/dateTime (its start), or undefined when it does not parse. */
export function instantMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  // Full instants (nearly every stored value) the engine parses exactly and much faster.
  if (FULL_INSTANT.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  return parseDateRange(value)?.low;
}

export function inPeriod(ms: number, period: Pick<Period, 'startMs' | 'endMs'>): boolean {
  return ms >= period.startMs && ms <= period.endMs;
}

/** '2025-03' (UTC). */
export function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

/** ISO 8601 week, '2025-W09' (UTC): weeks start on Monday, week 1 holds the year's first Thursday. */
export function isoWeekOf(ms: number): string {
  const d = new Date(ms);
  const day = (d.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3);
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 86_400_000));
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** The UTC Monday (ms) of the ISO week holding `ms`. */
export function weekStartMs(ms: number): number {
  const d = new Date(ms);
  const day = (d.getUTCDay() + 6) % 7;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day);
}
