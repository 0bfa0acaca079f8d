/**
 * Deterministic formatting of dates, times and numbers for the texts sent to the referrer: the same
 * input always gives the same text, whatever the server's locale or time zone.
 */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A FHIR date or dateTime as '9 Mar 2026' ('Mar 2026', '2026' for partial dates). Without a time
 * zone, the date is the one written in the value, i.e. the local date where it was recorded; with
 * one, a dateTime is converted to that zone first.
 */
export function formatDate(value: string, timeZone?: string): string {
  if (timeZone && value.includes('T')) {
    const p = zonedParts(value, timeZone);
    return `${p.day} ${MONTHS[p.month - 1]} ${p.year}`;
  }
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(value);
  if (!m) return value;
  const [, year, month, day] = m;
  if (!month) return year as string;
  const monthName = MONTHS[Number(month) - 1];
  return day ? `${Number(day)} ${monthName} ${year}` : `${monthName} ${year}`;
}

/** A dateTime as '9 Mar 2026 15:00 UTC', in UTC or the given IANA zone ('9 Mar 2026 10:00 CDT'). */
export function formatDateTime(value: string, timeZone = 'UTC'): string {
  if (!value.includes('T')) return formatDate(value);
  const p = zonedParts(value, timeZone);
  return `${p.day} ${MONTHS[p.month - 1]} ${p.year} ${p.hour}:${p.minute} ${p.zone}`;
}

interface ZonedParts {
  year: number;
  month: number;
  day: number;
  hour: string;
  minute: string;
  zone: string;
}

function zonedParts(value: string, timeZone: string): ZonedParts {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(new Date(value));
  const part = (type: Intl.DateTimeFormatPartTypes): string =>
    parts.find((p) => p.type === type)?.value ?? '';
  return {
    year: Number(part('year')),
    month: Number(part('month')),
    day: Number(part('day')),
    hour: part('hour').padStart(2, '0'),
    minute: part('minute').padStart(2, '0'),
    zone: part('timeZoneName'),
  };
}

/** Milliseconds since the epoch for ordering; partial dates sort at their start. */
export function instantOf(value: string): number {
  return Date.parse(value);
}

/** A number with at most two decimals and no trailing zeros: 15.9100 → '15.91', 4.0 → '4'. */
export function formatNumber(value: number): string {
  return String(round2(value));
}

export function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** '1 point', '3 points', '20°'. */
export function formatAmount(value: number, unit: 'points' | 'degrees'): string {
  const n = formatNumber(value);
  if (unit === 'degrees') return `${n}°`;
  return `${n} ${n === '1' ? 'point' : 'points'}`;
}
