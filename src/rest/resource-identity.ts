import { randomUUID } from 'node:crypto';
import { fhirError } from '../fhir/errors.js';
import { isKnownResourceType } from '../fhir/definitions.js';

/** See: https://hl7.org/fhir/R4/datatypes.html#id */
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function isValidId(id: string): boolean {
  return ID.test(id);
}

export function assertResourceType(type: string, expression = type): void {
  if (!isKnownResourceType(type)) {
    throw fhirError(
      'unknown-resource-type',
      `Resource type '${type.slice(0, 64)}' is not an R4 resource type`,
      expression,
    );
  }
}

export function assertValidId(id: string, expression: string): void {
  if (!isValidId(id)) {
    throw fhirError(
      'invalid-id',
      `'${truncate(id)}' is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)`,
      expression,
    );
  }
}

export function newId(): string {
  return randomUUID();
}

function truncate(text: string): string {
  return text.length > 70 ? `${text.slice(0, 64)}…` : text;
}
