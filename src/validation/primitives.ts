/**
 * Checks on primitive values that @medplum/core's regexes let through but the R4 spec and the HL7
 * reference validator reject (https://hl7.org/fhir/R4/datatypes.html#primitive).
 */

/** A dateTime or instant with a time SHALL have a timezone (https://hl7.org/fhir/R4/datatypes.html#dateTime). */
export function dateTimeLacksTimezone(value: string): boolean {
  return /T\d{2}:\d{2}/.test(value) && !/(Z|[+-]\d{2}:\d{2})$/.test(value);
}

/** A calendar date that does not exist, such as 2024-02-30 or 2023-02-29. */
export function isImpossibleDate(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!m) return false;
  const [, y, mo, d] = m.map(Number) as [number, number, number, number];
  if (mo < 1 || mo > 12) return true;
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return d < 1 || d > days;
}

/** R4 `time`/`dateTime` with hour 24 or leap-second minutes beyond what the regex allows are caught by Medplum; this catches 24:00 variants some clients send. */
export function isImpossibleTime(value: string): boolean {
  const m = /T?(\d{2}):(\d{2})(?::(\d{2}))?/.exec(
    value.includes('T') ? value.slice(value.indexOf('T')) : value,
  );
  if (!m) return false;
  return Number(m[1]) > 23 || Number(m[2]) > 59 || Number(m[3] ?? 0) > 60;
}
