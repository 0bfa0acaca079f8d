import type { Resource } from '@medplum/fhirtypes';

/**
 * What PostgreSQL cannot store as JavaScript hands it: text with NUL, JSONB with NUL or lone
 * surrogates, and B-tree keys over ~2.7 kB.
 */

/** Bytes of an index column value kept in a B-tree key (PostgreSQL refuses keys over ~2.7 kB). */
export const MAX_INDEXED_BYTES = 1000;

/**
 * Cuts an indexed text value to MAX_INDEXED_BYTES of UTF-8 (at a character boundary), so a
 * pathological value cannot fail the write with "index row size exceeds maximum". Prefix and
 * `:contains` matches within the kept bytes still work, exact matches of a longer value do not
 * (as in other FHIR servers, which index a prefix too). Only columns a B-tree key holds are cut
 * (`keyed` in shared/index-tables.ts): `idx_string.value`, which `:exact` compares, is kept whole.
 */
export function clipIndexedText(value: string | null): string | null {
  if (value === null || value.length * 3 <= MAX_INDEXED_BYTES) {
    return value;
  }
  if (Buffer.byteLength(value, 'utf8') <= MAX_INDEXED_BYTES) {
    return value;
  }
  let bytes = 0;
  let end = 0;
  for (const ch of value) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (bytes + size > MAX_INDEXED_BYTES) {
      break;
    }
    bytes += size;
    end += ch.length;
  }
  return value.slice(0, end);
}

/**
 * JSONB refuses `\u0000` and unpaired surrogates, which JSON (and so `content_text`) allows. For
 * the rare resource holding one, the JSONB copy gets U+FFFD instead; `content_text`, which is what
 * the service answers with, keeps the exact value. Null when the text converts as it is.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function jsonbSafeText(text: string, resource: Resource | undefined): string | null {
  if (!/\\u(0000|d[89a-f])/i.test(text)) {
    return null;
  }
  return JSON.stringify(resource, (_key, value: unknown) =>
    typeof value === 'string'
      ? value.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATE, '\ufffd')
      : value,
  );
}

/** PostgreSQL text cannot hold NUL; index values and search values map it alike to U+FFFD. */
export function pgValue(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.includes('\u0000') ? value.replaceAll('\u0000', '\ufffd') : value;
  }
  if (Array.isArray(value)) {
    return value.some((v) => typeof v === 'string' && v.includes('\u0000')) ? value.map(pgValue) : value;
  }
  return value;
}
