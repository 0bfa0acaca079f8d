import type { Resource } from '@medplum/fhirtypes';
import { FhirError, fhirError } from '../fhir/errors.js';

export interface PreparedResource {
  resource: Resource;
}

/**
 * Checks that a request body is a JSON object of the expected type and readies it for storage:
 * server-managed `meta` fields are dropped (https://hl7.org/fhir/R4/http.html#create: "the server
 * SHALL ignore" id, versionId and lastUpdated on create) and the id is the one the server decided.
 * Validation is the unit of work's (rest/unit-of-work.ts); the index is the store's.
 */
export function prepareResource(
  body: unknown,
  expectedType: string,
  id: string,
  expression = '',
): PreparedResource {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw fhirError(
      'invalid-resource',
      'The body must be a FHIR resource (a JSON object)',
      expression || undefined,
    );
  }
  const candidate = body as Partial<Resource>;
  if (candidate.resourceType !== expectedType) {
    throw new FhirError({
      code: 'resource-type-mismatch',
      message: `Expected a ${expectedType} resource but the body has resourceType '${String(candidate.resourceType)}'`,
      expression: expression ? `${expression}.resourceType` : 'resourceType',
    });
  }
  const { versionId: _v, lastUpdated: _l, ...meta } = candidate.meta ?? {};
  const resource = { ...candidate, id, ...(candidate.meta ? { meta } : {}) } as Resource;
  if (resource.meta && Object.keys(resource.meta).length === 0) {
    delete resource.meta;
  }
  return { resource };
}
