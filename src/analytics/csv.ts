import type { MeasureReport, MeasureReportGroupPopulation, Quantity } from '@medplum/fhirtypes';
import { OUTCOME_MEASURES } from '../progress/outcome-measures.js';
import type { ReferralFact } from './facts.js';
import { daysBetween, round } from './stats.js';

/**
 * CSV (RFC 4180) for spreadsheets: a MeasureReport flattened to one row per group and stratum,
 * and one row per referral for the detailed export. Text that a spreadsheet would run as a
 * formula is prefixed with an apostrophe (OWASP, CSV Injection:
 * https://owasp.org/www-community/attacks/CSV_Injection): a formula character (= + - @, tab, CR)
 * first, also behind leading whitespace, line breaks, no-break spaces, byte-order marks and other
 * invisible characters spreadsheets skip, and in the full-width and small forms (＝ ＋ － ＠,
 * U+FF1D…, ﹦ ﹢ ﹣ ﹫) that spreadsheets with East Asian input normalise to the ASCII ones.
 */
const FORMULA_START =
  // eslint-disable-next-line no-control-regex
  /^[\s\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2060\ufeff]*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b\u2212]/;

export function csvCell(value: string | number | boolean | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvLine(cells: (string | number | boolean | undefined)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

const POPULATIONS = ['initial-population', 'denominator', 'numerator', 'measure-population'] as const;

export const MEASURE_REPORT_HEADER = [
  'measure',
  'period_start',
  'period_end',
  'subject',
  'group',
  'group_display',
  'stratifier',
  'stratum',
  'stratum_code',
  ...POPULATIONS.map((p) => p.replace(/-/g, '_')),
  'score',
  'unit',
];

export function measureReportCsv(report: MeasureReport): string {
  let out = csvLine(MEASURE_REPORT_HEADER);
  const row = (
    group: { code?: { coding?: { code?: string; display?: string }[]; text?: string } },
    stratifier: string | undefined,
    stratum: { text?: string; coding?: { system?: string; code?: string }[] } | undefined,
    population: MeasureReportGroupPopulation[] | undefined,
    score: Quantity | undefined,
  ): string => {
    const count = (code: string): number | undefined =>
      population?.find((p) => p.code?.coding?.[0]?.code === code)?.count;
    const coding = stratum?.coding?.[0];
    return csvLine([
      report.measure,
      report.period.start,
      report.period.end,
      report.subject?.reference,
      group.code?.coding?.[0]?.code,
      group.code?.text ?? group.code?.coding?.[0]?.display,
      stratifier,
      stratum?.text,
      coding ? `${coding.system ?? ''}|${coding.code ?? ''}` : undefined,
      ...POPULATIONS.map(count),
      score?.value,
      score?.unit,
    ]);
  };
  for (const group of report.group ?? []) {
    out += row(group, undefined, undefined, group.population, group.measureScore);
    for (const stratifier of group.stratifier ?? []) {
      const name = stratifier.code?.[0]?.coding?.[0]?.code;
      for (const stratum of stratifier.stratum ?? []) {
        out += row(group, name, stratum.value, stratum.population, stratum.measureScore);
      }
    }
  }
  return out;
}

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();
const days = (from: number, to: number | undefined): number | undefined =>
  to === undefined ? undefined : round(daysBetween(from, to), 2);

export const REFERRAL_HEADER = [
  'referral',
  'authored_on',
  'referring_source',
  'referring_source_key',
  'referring_organization',
  'triage',
  'first_contact_at',
  'decline_reason',
  'booked_at',
  'first_visit_at',
  'discharged_at',
  'state',
  'stage',
  'drop_off_reason',
  'days_to_first_contact',
  'days_to_booking',
  'days_to_first_visit',
  'visits_attended',
  'visits_planned',
  'appointments_due',
  'no_shows',
  ...OUTCOME_MEASURES.flatMap((m) => [`${m.id}_initial`, `${m.id}_discharge`, `${m.id}_change`]),
];

/** One referral: dates, stages and outcome changes; no patient data beyond the referral id. */
export function referralCsvLine(f: ReferralFact): string {
  const contact = f.triage === 'accepted' || f.triage === 'declined' ? f.triagedMs : undefined;
  return csvLine([
    f.id,
    iso(f.authoredMs),
    f.referrer.display,
    f.referrer.key,
    f.referrer.organization?.display,
    f.triage,
    iso(contact),
    f.declineReason?.display,
    iso(f.bookedMs),
    iso(f.firstVisitMs),
    iso(f.dischargedMs),
    f.state,
    f.stage,
    f.dropReason?.display,
    days(f.authoredMs, contact),
    days(f.authoredMs, f.bookedMs),
    days(f.authoredMs, f.firstVisitMs),
    f.visitsAttended,
    f.visitsPlanned,
    f.appointmentsDue,
    f.noShows,
    ...OUTCOME_MEASURES.flatMap((m) => {
      // One-sided measures may have one change per site; the export lists the first.
      const o = f.outcomes.find((x) => x.measure === m.id);
      return [o?.initial, o?.final, o?.change];
    }),
  ]);
}
