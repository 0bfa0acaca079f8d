import { AsyncLocalStorage } from 'node:async_hooks';
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

/**
 * The ids the server assigned inside the current unit of work (rest/unit-of-work.ts). They are the
 * only ids a referrer's write may name before they exist (a transaction's `urn:uuid:` entries are
 * rewritten to them), and the only ones a referrer may create under: random, so naming one names
 * nothing that was already stored.
 */
const assignedIds = new AsyncLocalStorage<Set<string>>();

export function withAssignedIds<T>(ids: Set<string>, work: () => T): T {
  return assignedIds.run(ids, work);
}

export function newId(): string {
  const id = randomUUID();
  assignedIds.getStore()?.add(id);
  return id;
}

function truncate(text: string): string {
  return text.length > 70 ? `${text.slice(0, 64)}…` : text;
}
