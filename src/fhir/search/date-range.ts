/**
 * FHIR dates are ranges: `2024` means the whole year, `2024-03-05` the whole day, and a dateTime
 * to the second covers that second (https://hl7.org/fhir/R4/search.html#date). Search compares
 * ranges, so both stored values and search values become [low, high] in epoch milliseconds,
 * both ends inclusive. A value without a timezone is taken as UTC.
 */
export interface MillisRange {
  low: number;
  high: number;
}

export const MIN_MILLIS = -8.64e15;
export const MAX_MILLIS = 8.64e15;

const DATE_TIME =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function parseDateRange(text: string): MillisRange | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo === undefined ? undefined : Number(mo);
  const day = d === undefined ? undefined : Number(d);
  if (month !== undefined && (month < 1 || month > 12)) {
    return undefined;
  }
  if (day !== undefined && (day < 1 || day > daysInMonth(year, month ?? 1))) {
    return undefined;
  }
  const offsetMs = tz && tz !== 'Z' ? parseOffset(tz) : 0;
  if (h === undefined) {
    // A date: the whole year, month or day.
    const low = Date.UTC(year, (month ?? 1) - 1, day ?? 1);
    const high =
      day !== undefined
        ? Date.UTC(year, (month ?? 1) - 1, day + 1) - 1
        : month !== undefined
          ? Date.UTC(year, month, 1) - 1
          : Date.UTC(year + 1, 0, 1) - 1;
    return { low: fixYear(low, year), high: fixYear(high, year) };
  }
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? undefined : Number(s);
  if (hour > 24 || minute > 59 || (second !== undefined && second > 60)) {
    return undefined;
  }
  const base = Date.UTC(year, (month ?? 1) - 1, day ?? 1, hour, minute, second ?? 0) - offsetMs;
  if (second === undefined) {
    return { low: base, high: base + 60_000 - 1 };
  }
  if (frac === undefined) {
    return { low: base, high: base + 999 };
  }
  const digits = Math.min(frac.length, 3);
  const ms = Number(frac.slice(0, 3).padEnd(3, '0'));
  const width = 10 ** (3 - digits);
  return { low: base + ms, high: base + ms + width - 1 };
}

function parseOffset(tz: string): number {
  const sign = tz.startsWith('-') ? -1 : 1;
  const [hh, mm] = tz.slice(1).split(':').map(Number);
  return sign * ((hh ?? 0) * 60 + (mm ?? 0)) * 60_000;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Date.UTC maps years 0-99 to 1900-1999; FHIR years are literal. */
function fixYear(ms: number, year: number): number {
  if (year >= 100) {
    return ms;
  }
  const d = new Date(ms);
  d.setUTCFullYear(d.getUTCFullYear() - 1900);
  return d.getTime();
}
