import type { Resource } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { StoreTransaction } from '../store/fhir-store.js';
import { findConditionalMatches } from './conditional.js';
import { prepareResource } from './prepare-resource.js';
import { assertResourceType, assertValidId, newId } from './resource-identity.js';
import type { RestResult } from './rest-result.js';

/**
 * The write interactions of https://hl7.org/fhir/R4/http.html, each run inside a store
 * transaction handed in by the caller (a single request, or one entry of a transaction Bundle).
 */
export interface CreateOptions {
  ifNoneExist?: string;
  /** Pre-assigned id (transaction Bundles assign ids before processing, to rewrite references). */
  id?: string;
  expression?: string;
}

export async function createResource(
  tx: StoreTransaction,
  resourceType: string,
  body: unknown,
  options: CreateOptions = {},
): Promise<RestResult> {
  assertResourceType(resourceType);
  const id = options.id ?? newId();
  const prepared = prepareResource(body, resourceType, id, options.expression);
  if (options.ifNoneExist) {
    const matches = await findConditionalMatches(tx, resourceType, options.ifNoneExist, 'If-None-Exist');
    if (matches.length > 1) {
      throw fhirError(
        'multiple-matches',
        `If-None-Exist matched ${matches.length} or more ${resourceType} resources`,
        'If-None-Exist',
      );
    }
    const existing = matches[0];
    if (existing?.id) {
      const version = await tx.read(resourceType, existing.id);
      return { status: 200, resource: existing, version };
    }
  }
  const version = await tx.write({ resourceType, id, resource: prepared.resource, index: prepared.index });
  return { status: 201, resource: version.resource, version, written: true };
}

export interface UpdateOptions {
  ifMatch?: string;
  expression?: string;
}

export async function updateResource(
  tx: StoreTransaction,
  resourceType: string,
  id: string,
  body: unknown,
  options: UpdateOptions = {},
): Promise<RestResult> {
  assertResourceType(resourceType);
  assertValidId(id, 'id');
  const bodyId = (body as Resource | undefined)?.id;
  if (typeof body === 'object' && body !== null && (body as Resource).resourceType === resourceType) {
    // See https://hl7.org/fhir/R4/http.html#update: the body SHALL carry the same id as the URL.
    if (bodyId === undefined) {
      throw fhirError(
        'resource-id-missing',
        'The resource must carry an id equal to the id in the URL',
        `${resourceType}.id`,
      );
    }
    if (bodyId !== id) {
      throw fhirError(
        'resource-id-mismatch',
        `The resource id '${String(bodyId).slice(0, 64)}' differs from the URL id '${id}'`,
        `${resourceType}.id`,
      );
    }
  }
  const prepared = prepareResource(body, resourceType, id, options.expression);
  const current = await tx.read(resourceType, id);
  if (options.ifMatch !== undefined) {
    const expected = parseEtag(options.ifMatch);
    if (!current || current.deleted || current.versionId !== expected) {
      throw fhirError(
        'precondition-failed',
        `If-Match ${options.ifMatch} does not match the current version${current && !current.deleted ? ` (W/"${current.versionId}")` : ''}`,
        'If-Match',
      );
    }
  }
  const version = await tx.write({ resourceType, id, resource: prepared.resource, index: prepared.index });
  const created = !current || current.deleted;
  return { status: created ? 201 : 200, resource: version.resource, version, written: true };
}

export async function conditionalUpdate(
  tx: StoreTransaction,
  resourceType: string,
  criteria: string,
  body: unknown,
  options: UpdateOptions = {},
): Promise<RestResult> {
  assertResourceType(resourceType);
  const matches = await findConditionalMatches(tx, resourceType, criteria, 'url');
  if (matches.length > 1) {
    throw fhirError(
      'multiple-matches',
      `Conditional update matched ${matches.length} or more ${resourceType} resources`,
      'url',
    );
  }
  const match = matches[0];
  const bodyId = (body as Resource | undefined)?.id;
  if (match?.id) {
    if (bodyId !== undefined && bodyId !== match.id) {
      throw fhirError(
        'resource-id-mismatch',
        `The resource id differs from the id of the matching resource`,
        `${resourceType}.id`,
      );
    }
    return updateResource(tx, resourceType, match.id, { ...(body as object), id: match.id }, options);
  }
  // No match: create, keeping a client-supplied id (https://hl7.org/fhir/R4/http.html#cond-update).
  if (bodyId !== undefined) {
    assertValidId(String(bodyId), `${resourceType}.id`);
    return updateResource(tx, resourceType, String(bodyId), body, options);
  }
  return createResource(tx, resourceType, body, { expression: options.expression });
}

export async function deleteResource(
  tx: StoreTransaction,
  resourceType: string,
  id: string,
): Promise<RestResult> {
  assertResourceType(resourceType);
  assertValidId(id, 'id');
  const current = await tx.read(resourceType, id);
  if (!current) {
    // "Upon successful deletion, or if the resource does not exist at all, the server should
    // return ... 204 No Content" (https://hl7.org/fhir/R4/http.html#delete).
    return { status: 204 };
  }
  if (current.deleted) {
    // Deleting a deleted resource succeeds and writes nothing (https://hl7.org/fhir/R4/http.html#delete).
    return { status: 204, version: current };
  }
  const version = await tx.write({ resourceType, id, deleted: true });
  return { status: 204, version, written: true };
}

export async function conditionalDelete(
  tx: StoreTransaction,
  resourceType: string,
  criteria: string,
): Promise<RestResult> {
  assertResourceType(resourceType);
  const matches = await findConditionalMatches(tx, resourceType, criteria, 'url');
  if (matches.length > 1) {
    throw fhirError(
      'multiple-matches',
      `Conditional delete matched ${matches.length} or more ${resourceType} resources`,
      'url',
    );
  }
  const match = matches[0];
  if (!match?.id) {
    return { status: 204 };
  }
  return deleteResource(tx, resourceType, match.id);
}

/** Accepts `W/"3"`, `"3"` and `3`. */
export function parseEtag(etag: string): string {
  return etag
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}
