import type { OperationOutcome, Parameters, Resource } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import { toOperationOutcome, type ResourceValidator } from '../validation/resource-validator.js';
import { PROFILES } from '../validation/profile-registry.js';
import { assertResourceType, assertValidId } from './resource-identity.js';

/**
 * `$validate` (https://hl7.org/fhir/R4/resource-operation-validate.html): the resource comes as the
 * body or in a Parameters `resource`; a `profile` (parameter or query) adds a profile to check.
 * The answer is always 200 with the OperationOutcome: the outcome, not the status, says valid or not.
 * Every ServiceRequest sent here is a referral, so ServiceRequests are checked against the
 * referral profile by default, as intake would.
 */
export interface ValidateRequest {
  resourceType: string;
  id?: string;
  body: unknown;
  queryProfile?: string;
}

export function validateOperation(validator: ResourceValidator, request: ValidateRequest): OperationOutcome {
  assertResourceType(request.resourceType);
  if (request.id) assertValidId(request.id, 'id');
  const { resource, profile, mode } = unpack(request.body);
  if (
    typeof resource !== 'object' ||
    resource === null ||
    (resource as Resource).resourceType !== request.resourceType
  ) {
    throw fhirError(
      'resource-type-mismatch',
      `$validate on ${request.resourceType} needs a ${request.resourceType} resource`,
      'Parameters.parameter.resource',
    );
  }
  if (mode === 'delete') {
    return toOperationOutcome({ issues: [] });
  }
  if (request.id && (resource as Resource).id !== undefined && (resource as Resource).id !== request.id) {
    throw fhirError(
      'resource-id-mismatch',
      `The resource id differs from the URL id '${request.id}'`,
      `${request.resourceType}.id`,
    );
  }
  const profiles = [profile ?? request.queryProfile].filter((p): p is string => typeof p === 'string');
  if (request.resourceType === 'ServiceRequest' && profiles.length === 0) {
    profiles.push(PROFILES.referralServiceRequest);
  }
  const unknown = profiles.filter((p) => !validator.knowsProfile(p));
  if (unknown.length > 0) {
    throw fhirError('unknown-profile', `Profile ${unknown[0]} is not known to this server`, 'profile');
  }
  return toOperationOutcome(validator.validate(resource as Resource, { profiles }));
}

function unpack(body: unknown): { resource: unknown; profile?: string; mode?: string } {
  const params = (body as Parameters | undefined)?.parameter;
  // A Parameters body wraps the resource, unless it is itself the Parameters resource to validate.
  if (
    (body as Resource | undefined)?.resourceType === 'Parameters' &&
    Array.isArray(params) &&
    params.some((p) => p?.name === 'resource')
  ) {
    return {
      resource: params.find((p) => p.name === 'resource')?.resource,
      profile:
        params.find((p) => p.name === 'profile')?.valueUri ??
        params.find((p) => p.name === 'profile')?.valueCanonical,
      mode: params.find((p) => p.name === 'mode')?.valueCode,
    };
  }
  return { resource: body };
}
