import type { Resource } from '@medplum/fhirtypes';
import { extractIndexRows, type SearchIndexRows } from './index-rows.js';
import type { RangeValue, SearchFilter } from './search-query.js';

/**
 * Evaluates search filters against one resource in memory, from the same index rows the store
 * writes, so a subscription filter (`Communication?recipient=...`) means exactly what the same
 * search means.
 */
export function matchesFilters(resource: Resource, filters: SearchFilter[]): boolean {
  const rows = extractIndexRows(resource);
  return filters.every((filter) => matchesFilter(resource, rows, filter));
}

function inRange(low: number, high: number, v: RangeValue): boolean {
  switch (v.prefix) {
    case 'eq':
      return low >= v.low && high <= v.high;
    case 'ne':
      return !(low >= v.low && high <= v.high);
    case 'gt':
      return high > v.high;
    case 'lt':
      return low < v.low;
    case 'ge':
      return high > v.high || (low >= v.low && high <= v.high);
    case 'le':
      return low < v.low || (low >= v.low && high <= v.high);
    case 'sa':
      return low > v.high;
    case 'eb':
      return high < v.low;
    case 'ap':
      return low <= v.high && high >= v.low;
  }
}

function matchesFilter(resource: Resource, rows: SearchIndexRows, filter: SearchFilter): boolean {
  switch (filter.kind) {
    case 'id':
      return filter.values.includes(resource.id ?? '') !== (filter.not === true);
    case 'lastUpdated': {
      const ms = Date.parse(resource.meta?.lastUpdated ?? '');
      return filter.values.some((v) => inRange(ms, ms, v));
    }
    case 'missing': {
      const table = {
        token: rows.tokens,
        string: rows.strings,
        reference: rows.references,
        date: rows.dates,
        number: rows.numbers,
        quantity: rows.quantities,
        uri: rows.uris,
      }[filter.table];
      return table.some((r) => r.code === filter.code) !== filter.missing;
    }
    case 'token': {
      const hit = rows.tokens.some(
        (r) =>
          r.code === filter.code &&
          filter.values.some(
            (v) =>
              (v.value === undefined || r.value === v.value) &&
              (v.system === undefined || (v.system === null ? r.system === null : r.system === v.system)),
          ),
      );
      return hit !== filter.not;
    }
    case 'string':
      return rows.strings.some(
        (r) =>
          r.code === filter.code &&
          filter.values.some((v) =>
            filter.match === 'exact'
              ? r.value === v
              : filter.match === 'contains'
                ? r.norm.includes(v)
                : r.norm.startsWith(v),
          ),
      );
    case 'reference':
      return rows.references.some(
        (r) =>
          r.code === filter.code &&
          filter.values.some((v) =>
            v.reference !== undefined
              ? r.reference === v.reference
              : r.targetId === v.targetId && (v.targetType === undefined || r.targetType === v.targetType),
          ),
      );
    case 'date':
    case 'number':
      return (filter.kind === 'date' ? rows.dates : rows.numbers).some(
        (r) => r.code === filter.code && filter.values.some((v) => inRange(r.low, r.high, v)),
      );
    case 'quantity':
      return rows.quantities.some(
        (r) =>
          r.code === filter.code &&
          filter.values.some(
            (v) =>
              inRange(r.low, r.high, v) &&
              (!v.system || r.system === v.system) &&
              (!v.unit || r.unit === v.unit),
          ),
      );
    case 'uri':
      return rows.uris.some(
        (r) =>
          r.code === filter.code &&
          filter.values.some((v) =>
            filter.match === 'below'
              ? r.value.startsWith(v)
              : filter.match === 'above'
                ? v.startsWith(r.value)
                : r.value === v,
          ),
      );
  }
}
