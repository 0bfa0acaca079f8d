import type { Resource } from '@medplum/fhirtypes';
import { FhirError, fhirError } from '../fhir/errors.js';
import { extractIndexRows, type SearchIndexRows } from '../fhir/search/index-rows.js';
import type { ResourceValidator } from '../validation/resource-validator.js';
import { toFhirError } from '../validation/resource-validator.js';

export interface PreparedResource {
  resource: Resource;
  index: SearchIndexRows;
}

/**
 * Checks a resource from a request body and readies it for storage: the body must be a JSON object
 * of the expected type; server-managed `meta` fields are dropped (https://hl7.org/fhir/R4/http.html#create:
 * "the server SHALL ignore" id, versionId and lastUpdated on create); the resource is validated and
 * its search index rows computed.
 */
export function prepareResource(
  validator: ResourceValidator,
  body: unknown,
  expectedType: string,
  id: string,
  expression = '',
  options: { skipValidation?: boolean } = {},
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
  if (!options.skipValidation) {
    const result = validator.validate(resource);
    if (result.failure) {
      throw toFhirError(withPrefix(result, expression, resource.resourceType), result.failure);
    }
  }
  return { resource, index: extractIndexRows(resource) };
}

/** Issues about a Bundle entry's resource name it from the Bundle: `Bundle.entry[2].resource.name`. */
function withPrefix<T extends { issues: { expression?: string[] }[] }>(
  result: T,
  prefix: string,
  resourceType: string,
): T {
  if (!prefix) return result;
  return {
    ...result,
    issues: result.issues.map((issue) => ({
      ...issue,
      expression: issue.expression?.map((e) =>
        e.startsWith(resourceType) ? `${prefix}${e.slice(resourceType.length)}` : e,
      ),
    })),
  };
}
