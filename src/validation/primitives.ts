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

/**
 * R4's base64Binary grammar, `(\s*([0-9a-zA-Z\+\=]){4}\s*)+` (https://hl7.org/fhir/R4/datatypes.html#base64Binary,
 * with `/` as in the spec's XML schema): quartets of base64 characters, whitespace only between
 * quartets. Checked in one pass instead of by that regex: its adjacent `\s*` make it backtrack
 * exponentially on a near-miss (a 141-character value took 11.7 s), blocking the event loop.
 */
export function isR4Base64(value: string): boolean {
  let count = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (isBase64Char(c)) {
      count++;
    } else if (isWhitespace(value[i] as string) && count % 4 === 0) {
      continue;
    } else {
      return false;
    }
  }
  return count > 0 && count % 4 === 0;
}

function isBase64Char(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || // 0-9
    (c >= 65 && c <= 90) || // A-Z
    (c >= 97 && c <= 122) || // a-z
    c === 43 || // +
    c === 47 || // /
    c === 61 // =
  );
}

/** `\s` of the grammar, tested one character at a time (linear). */
function isWhitespace(ch: string): boolean {
  return /^\s$/.test(ch);
}
