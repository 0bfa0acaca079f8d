import { evalFhirPathTyped, toTypedValue, type TypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { MAX_MILLIS, MIN_MILLIS, parseDateRange, type MillisRange } from './date-range.js';
import { getIndexedSearchParameters } from './search-parameters.js';
import { normalizeString } from './normalize.js';

/**
 * Search index rows for one resource version, computed at write time from the R4 SearchParameter
 * FHIRPath expressions, so searches read indexes instead of scanning resources.
 */
export interface SearchIndexRows {
  tokens: { code: string; system: string | null; value: string | null }[];
  strings: { code: string; value: string; norm: string }[];
  references: { code: string; reference: string; targetType: string | null; targetId: string | null }[];
  dates: { code: string; low: number; high: number }[];
  numbers: { code: string; low: number; high: number }[];
  quantities: { code: string; system: string | null; unit: string | null; low: number; high: number }[];
  uris: { code: string; value: string }[];
}

export function emptyIndexRows(): SearchIndexRows {
  return { tokens: [], strings: [], references: [], dates: [], numbers: [], quantities: [], uris: [] };
}

/** FHIRPath yields untyped JSON values (a Coding, a Period, a string, ...), inspected by shape below. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type FhirJson = any;

const LOCAL_REFERENCE =
  /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

export function parseLocalReference(reference: string): { type: string; id: string } | undefined {
  const m = LOCAL_REFERENCE.exec(reference);
  return m ? { type: m[1] as string, id: m[2] as string } : undefined;
}

export function extractIndexRows(resource: Resource): SearchIndexRows {
  const rows = emptyIndexRows();
  const root = toTypedValue(resource);
  const variables = { '%resource': root, '%rootResource': root };
  for (const param of getIndexedSearchParameters(resource.resourceType).values()) {
    let values: TypedValue[];
    try {
      values = evalFhirPathTyped(param.expression, [root], variables);
    } catch {
      // An expression that cannot evaluate on this resource's shape indexes nothing for it.
      continue;
    }
    for (const typed of values) {
      try {
        addValue(rows, param.code, param.table, typed);
      } catch {
        // A value of an unexpected shape (validation should have refused it) is not indexed.
      }
    }
  }
  return dedupe(rows);
}

function addValue(rows: SearchIndexRows, code: string, table: string, typed: TypedValue): void {
  const { type, value } = typed;
  if (value === undefined || value === null) {
    return;
  }
  switch (table) {
    case 'token':
      addTokens(rows, code, type, value);
      break;
    case 'string':
      for (const s of stringsOf(type, value)) {
        rows.strings.push({ code, value: s, norm: normalizeString(s) });
      }
      break;
    case 'reference':
      addReference(rows, code, type, value);
      break;
    case 'date': {
      const range = dateRangeOf(type, value);
      if (range) {
        rows.dates.push({ code, ...range });
      }
      break;
    }
    case 'number':
      if (typeof value === 'number') {
        rows.numbers.push({ code, low: value, high: value });
      }
      break;
    case 'quantity':
      if (typeof value === 'object' && typeof value.value === 'number') {
        rows.quantities.push({
          code,
          system: value.system ?? null,
          unit: value.code ?? value.unit ?? value.currency ?? null,
          low: value.value,
          high: value.value,
        });
      }
      break;
    case 'uri':
      if (typeof value === 'string') {
        rows.uris.push({ code, value });
      }
      break;
  }
}

function addTokens(rows: SearchIndexRows, code: string, type: string, value: FhirJson): void {
  const push = (system: unknown, v: unknown): void => {
    if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') {
      rows.tokens.push({ code, system: typeof system === 'string' ? system : null, value: String(v) });
    }
  };
  switch (type) {
    case 'CodeableConcept':
      for (const coding of value.coding ?? []) {
        push(coding.system, coding.code);
      }
      break;
    case 'Coding':
      push(value.system, value.code);
      break;
    case 'Identifier':
      push(value.system, value.value);
      break;
    case 'ContactPoint':
      // R4: a token on ContactPoint matches ContactPoint.value; its system is not a code system.
      push(undefined, value.value);
      break;
    default:
      if (typeof value !== 'object') {
        push(undefined, value);
      }
  }
}

function stringsOf(type: string, value: FhirJson): string[] {
  if (typeof value === 'string') {
    return [value];
  }
  if (typeof value !== 'object') {
    return [];
  }
  // See: https://hl7.org/fhir/R4/search.html#string — HumanName and Address match any part.
  const parts: unknown[] =
    type === 'HumanName'
      ? [value.text, value.family, ...(value.given ?? []), ...(value.prefix ?? []), ...(value.suffix ?? [])]
      : type === 'Address'
        ? [
            value.text,
            ...(value.line ?? []),
            value.city,
            value.district,
            value.state,
            value.postalCode,
            value.country,
          ]
        : [];
  return parts.filter((p): p is string => typeof p === 'string' && p.length > 0);
}

function addReference(rows: SearchIndexRows, code: string, type: string, value: FhirJson): void {
  const literal = type === 'Reference' ? value.reference : typeof value === 'string' ? value : undefined;
  if (typeof literal !== 'string' || literal.startsWith('#')) {
    return;
  }
  const local = parseLocalReference(literal);
  rows.references.push({
    code,
    reference: literal,
    targetType: local?.type ?? null,
    targetId: local?.id ?? null,
  });
}

function dateRangeOf(type: string, value: FhirJson): MillisRange | undefined {
  if (typeof value === 'string') {
    return parseDateRange(value);
  }
  if (type === 'Period') {
    const start = typeof value.start === 'string' ? parseDateRange(value.start) : undefined;
    const end = typeof value.end === 'string' ? parseDateRange(value.end) : undefined;
    if (!start && !end) {
      return undefined;
    }
    return { low: start?.low ?? MIN_MILLIS, high: end?.high ?? MAX_MILLIS };
  }
  if (type === 'Timing') {
    const events = ((value.event ?? []) as string[]).map(parseDateRange).filter((r) => r !== undefined);
    const bounds = value.repeat?.boundsPeriod ? dateRangeOf('Period', value.repeat.boundsPeriod) : undefined;
    const all = bounds ? [...events, bounds] : events;
    if (all.length === 0) {
      return undefined;
    }
    return { low: Math.min(...all.map((r) => r.low)), high: Math.max(...all.map((r) => r.high)) };
  }
  return undefined;
}

function dedupe(rows: SearchIndexRows): SearchIndexRows {
  const unique = <T>(list: T[]): T[] => {
    const seen = new Set<string>();
    return list.filter((row) => {
      const key = JSON.stringify(row);
      if (seen.has(key)) {
        return false;
      }
      seen.add(key);
      return true;
    });
  };
  return {
    tokens: unique(rows.tokens),
    strings: unique(rows.strings),
    references: unique(rows.references),
    dates: unique(rows.dates),
    numbers: unique(rows.numbers),
    quantities: unique(rows.quantities),
    uris: unique(rows.uris),
  };
}

/** Local `Type/id` targets of one reference search parameter on a resource (for `_include`). */
export function referencedTargets(resource: Resource, code: string): { type: string; id: string }[] {
  const param = getIndexedSearchParameters(resource.resourceType).get(code);
  if (!param || param.table !== 'reference') {
    return [];
  }
  const rows = emptyIndexRows();
  const root = toTypedValue(resource);
  try {
    for (const typed of evalFhirPathTyped(param.expression, [root], { '%resource': root })) {
      addValue(rows, code, 'reference', typed);
    }
  } catch {
    return [];
  }
  return rows.references
    .filter((r) => r.targetType && r.targetId && !/^[a-z]+:/.test(r.reference))
    .map((r) => ({ type: r.targetType as string, id: r.targetId as string }));
}
