import type { Resource } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import { findConditionalMatches } from './conditional.js';
import { prepareResource } from './prepare-resource.js';
import { assertResourceType, assertValidId, newId } from './resource-identity.js';
import type { RestResult } from './rest-result.js';
import type { WriteContext } from './write-context.js';

/**
 * The write interactions of https://hl7.org/fhir/R4/http.html, each run inside a store
 * transaction handed in by the caller (a single request, or one entry of a transaction Bundle),
 * every write through the unit of work (rest/unit-of-work.ts), whose handlers take part in it.
 */
export interface CreateOptions {
  ifNoneExist?: string;
  /** The Bundle has been validated as a whole already. */
  validated?: boolean;
  /** A transaction Bundle already looked for an existing copy. */
  identityResolved?: boolean;
  /** Pre-assigned id (transaction Bundles assign ids before processing, to rewrite references). */
  id?: string;
  expression?: string;
}

export async function createResource(
  ctx: WriteContext,
  resourceType: string,
  body: unknown,
  options: CreateOptions = {},
): Promise<RestResult> {
  assertResourceType(resourceType);
  const id = options.id ?? newId();
  const prepared = prepareResource(body, resourceType, id, options.expression);
  // Validated before any lookup, so an invalid resource is refused even when a copy exists.
  if (!options.validated) ctx.validate(prepared.resource, options.expression);
  const ifNoneExist =
    options.ifNoneExist ??
    (options.identityResolved ? undefined : ctx.services.handlers.identityCriteria(prepared.resource));
  if (ifNoneExist) {
    const matches = await findConditionalMatches(ctx.tx, resourceType, ifNoneExist, 'If-None-Exist');
    if (matches.length > 1) {
      throw fhirError(
        'multiple-matches',
        `If-None-Exist matched ${matches.length} or more ${resourceType} resources`,
        'If-None-Exist',
      );
    }
    const existing = matches[0];
    if (existing?.id) {
      const version = await ctx.tx.read(resourceType, existing.id);
      return { status: 200, resource: existing, version };
    }
  }
  const version = await ctx.write({
    resourceType,
    id,
    resource: prepared.resource,
    origin: 'client',
    validated: true,
    expression: options.expression,
  });
  return { status: 201, resource: version.resource, version, written: true };
}

export interface UpdateOptions {
  ifMatch?: string;
  validated?: boolean;
  expression?: string;
}

export async function updateResource(
  ctx: WriteContext,
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
  if (!options.validated) ctx.validate(prepared.resource, options.expression);
  const current = await ctx.tx.read(resourceType, id);
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
  const version = await ctx.write({
    resourceType,
    id,
    resource: prepared.resource,
    origin: 'client',
    validated: true,
    expression: options.expression,
  });
  const created = !current || current.deleted;
  return { status: created ? 201 : 200, resource: version.resource, version, written: true };
}

export async function conditionalUpdate(
  ctx: WriteContext,
  resourceType: string,
  criteria: string,
  body: unknown,
  options: UpdateOptions = {},
): Promise<RestResult> {
  assertResourceType(resourceType);
  const matches = await findConditionalMatches(ctx.tx, resourceType, criteria, 'url');
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
    return updateResource(ctx, resourceType, match.id, { ...(body as object), id: match.id }, options);
  }
  // No match: create, keeping a client-supplied id (https://hl7.org/fhir/R4/http.html#cond-update).
  if (bodyId !== undefined) {
    assertValidId(String(bodyId), `${resourceType}.id`);
    return updateResource(ctx, resourceType, String(bodyId), body, options);
  }
  return createResource(ctx, resourceType, body, {
    expression: options.expression,
    validated: options.validated,
  });
}

export async function deleteResource(
  ctx: WriteContext,
  resourceType: string,
  id: string,
): Promise<RestResult> {
  assertResourceType(resourceType);
  assertValidId(id, 'id');
  const current = await ctx.tx.read(resourceType, id);
  if (!current) {
    // "Upon successful deletion, or if the resource does not exist at all, the server should
    // return ... 204 No Content" (https://hl7.org/fhir/R4/http.html#delete).
    return { status: 204 };
  }
  if (current.deleted) {
    // Deleting a deleted resource succeeds and writes nothing (https://hl7.org/fhir/R4/http.html#delete).
    return { status: 204, version: current };
  }
  const version = await ctx.write({ resourceType, id, origin: 'client' });
  return { status: 204, version, written: true };
}

export async function conditionalDelete(
  ctx: WriteContext,
  resourceType: string,
  criteria: string,
): Promise<RestResult> {
  assertResourceType(resourceType);
  const matches = await findConditionalMatches(ctx.tx, resourceType, criteria, 'url');
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
  return deleteResource(ctx, resourceType, match.id);
}

/** Accepts `W/"3"`, `"3"` and `3`. */
export function parseEtag(etag: string): string {
  return etag
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}
