import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

/**
 * The service's stable error codes. Clients and tests match on these (carried in
 * `OperationOutcome.issue.details.coding`), never on the human text, which may change.
 *
 * Each code has exactly one HTTP status and one FHIR `issue.code`
 * (https://hl7.org/fhir/R4/valueset-issue-type.html): this table is the single place that maps
 * an outcome to a status, following https://hl7.org/fhir/R4/http.html#Status-Codes.
 */
export const ERROR_CODES = {
  // 400: the request cannot be understood
  'body-not-json': { status: 400, issueCode: 'structure' },
  'body-invalid-utf8': { status: 400, issueCode: 'structure' },
  'body-too-deep': { status: 400, issueCode: 'structure' },
  'body-forbidden-key': { status: 400, issueCode: 'security' },
  'body-missing': { status: 400, issueCode: 'required' },
  'resource-type-mismatch': { status: 400, issueCode: 'invalid' },
  'resource-id-mismatch': { status: 400, issueCode: 'invalid' },
  'resource-id-missing': { status: 400, issueCode: 'required' },
  'invalid-id': { status: 400, issueCode: 'value' },
  'invalid-version-id': { status: 400, issueCode: 'value' },
  'invalid-resource': { status: 400, issueCode: 'structure' },
  'unsafe-narrative': { status: 400, issueCode: 'security' },
  'invalid-header': { status: 400, issueCode: 'value' },
  'invalid-search-parameter': { status: 400, issueCode: 'value' },
  'unknown-search-parameter': { status: 400, issueCode: 'not-supported' },
  'invalid-bundle': { status: 400, issueCode: 'invalid' },
  'duplicate-bundle-entry': { status: 400, issueCode: 'duplicate' },
  'unresolved-reference': { status: 400, issueCode: 'not-found' },
  'invalid-conditional-url': { status: 400, issueCode: 'invalid' },
  // 401 / 403: who is asking, and may they
  unauthorized: { status: 401, issueCode: 'login' },
  forbidden: { status: 403, issueCode: 'forbidden' },
  'insufficient-scope': { status: 403, issueCode: 'forbidden' },
  // 404 / 405 / 406 / 410
  'unknown-resource-type': { status: 404, issueCode: 'not-supported' },
  'unknown-route': { status: 404, issueCode: 'not-found' },
  'resource-not-found': { status: 404, issueCode: 'not-found' },
  'version-not-found': { status: 404, issueCode: 'not-found' },
  'resource-deleted': { status: 410, issueCode: 'deleted' },
  'method-not-allowed': { status: 405, issueCode: 'not-supported' },
  'not-acceptable': { status: 406, issueCode: 'not-supported' },
  // 409 / 412: version and identity conflicts
  'version-conflict': { status: 409, issueCode: 'conflict' },
  'precondition-failed': { status: 412, issueCode: 'conflict' },
  'multiple-matches': { status: 412, issueCode: 'multiple-matches' },
  // 413 / 415
  'body-too-large': { status: 413, issueCode: 'too-costly' },
  'unsupported-media-type': { status: 415, issueCode: 'not-supported' },
  // 422: well-formed, but breaks a profile or a business rule
  'profile-violation': { status: 422, issueCode: 'invariant' },
  'unknown-profile': { status: 422, issueCode: 'not-supported' },
  'business-rule': { status: 422, issueCode: 'business-rule' },
  'rate-limited': { status: 429, issueCode: 'throttled' },
  // 5xx: never carries internals
  'store-unavailable': { status: 503, issueCode: 'transient' },
  internal: { status: 500, issueCode: 'exception' },
} as const satisfies Record<string, { status: number; issueCode: OperationOutcomeIssue['code'] }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_CODE_SYSTEM = 'https://ptreferral.dev/fhir/CodeSystem/error-code';

export interface IssueInput {
  code: ErrorCode;
  message: string;
  /** FHIRPath of the element at fault, e.g. `ServiceRequest.subject` or `Bundle.entry[2].resource`. */
  expression?: string;
  severity?: OperationOutcomeIssue['severity'];
  /** Overrides the code's default `issue.code` where a finer FHIR code says more (e.g. `required`). */
  issueCode?: OperationOutcomeIssue['code'];
}

export function toIssue(input: IssueInput): OperationOutcomeIssue {
  return {
    severity: input.severity ?? 'error',
    code: input.issueCode ?? ERROR_CODES[input.code].issueCode,
    details: { coding: [{ system: ERROR_CODE_SYSTEM, code: input.code }], text: input.message },
    diagnostics: undefined,
    ...(input.expression ? { expression: [input.expression] } : {}),
  };
}

export function toOperationOutcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues.map(stripUndefined) };
}

function stripUndefined(issue: OperationOutcomeIssue): OperationOutcomeIssue {
  return Object.fromEntries(
    Object.entries(issue).filter(([, v]) => v !== undefined),
  ) as OperationOutcomeIssue;
}

/**
 * The one error type the service throws for anything a client did or may see. The HTTP status is
 * derived from the first error issue's stable code, so there is one mapping and no ad-hoc statuses.
 */
export class FhirError extends Error {
  readonly outcome: OperationOutcome;
  readonly status: number;
  readonly code: ErrorCode;

  constructor(primary: IssueInput, more: IssueInput[] = []) {
    super(primary.message);
    this.name = 'FhirError';
    this.code = primary.code;
    this.status = ERROR_CODES[primary.code].status;
    this.outcome = toOperationOutcome([primary, ...more].map(toIssue));
  }
}

export function fhirError(code: ErrorCode, message: string, expression?: string): FhirError {
  return new FhirError({ code, message, expression });
}

export function isFhirError(err: unknown): err is FhirError {
  return err instanceof FhirError;
}

export function informationOutcome(
  message: string,
  code: OperationOutcomeIssue['code'] = 'informational',
): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'information', code, diagnostics: message }],
  };
}
