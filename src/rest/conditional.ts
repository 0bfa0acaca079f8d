import type { Resource } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import { parseSearch } from '../fhir/search/parse-search.js';
import type { StoreTransaction } from '../store/fhir-store.js';

/**
 * Resolves the search criteria of a conditional interaction (If-None-Exist, conditional update or
 * delete). Criteria must be a real filter: unknown parameters are an error here, since ignoring
 * one would match the wrong resource (https://hl7.org/fhir/R4/http.html#ccreate).
 */
export async function findConditionalMatches(
  tx: StoreTransaction,
  resourceType: string,
  criteria: string,
  expression: string,
): Promise<Resource[]> {
  const params = [...new URLSearchParams(criteria.startsWith('?') ? criteria.slice(1) : criteria)];
  if (params.length === 0) {
    throw fhirError('invalid-conditional-url', 'Conditional criteria must not be empty', expression);
  }
  const parsed = parseSearch(resourceType, params, { strict: true });
  if (parsed.query.filters.length === 0) {
    throw fhirError(
      'invalid-conditional-url',
      'Conditional criteria must contain at least one search filter',
      expression,
    );
  }
  // Serialise concurrent requests with the same criteria, so two cannot both see "no match".
  await tx.lock(`${resourceType}?${canonicalCriteria(params)}`);
  const result = await tx.search({ ...parsed.query, count: 2, offset: 0, total: false, sort: [] });
  return result.resources;
}

function canonicalCriteria(params: [string, string][]): string {
  return params
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join('&');
}
