import { evalFhirPath, OperationOutcomeError, validateResource as medplumValidate } from '@medplum/core';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { FhirError, type IssueInput } from '../fhir/errors.js';
import { loadFhirDefinitions } from '../fhir/definitions.js';

/**
 * Base-R4 structural validation of one resource (cardinality, unknown elements, JSON types,
 * primitive formats, resource invariants) with @medplum/core, collecting every issue.
 * Throws a FhirError (400, `invalid-resource`) listing all of them.
 */
export function assertValidResource(resource: Resource, expressionPrefix = ''): void {
  const issues = validateResourceStructure(resource);
  const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (errors.length > 0) {
    const inputs: IssueInput[] = errors.map((i) => ({
      code: 'invalid-resource',
      message: i.details?.text ?? i.diagnostics ?? 'Invalid resource',
      expression: prefixExpression(i.expression?.[0], expressionPrefix),
      issueCode: i.code,
    }));
    throw new FhirError(inputs[0] as IssueInput, inputs.slice(1));
  }
}

export function validateResourceStructure(resource: Resource): OperationOutcomeIssue[] {
  loadFhirDefinitions();
  // Medplum skips `{}` and `[]` wherever they appear (even as a string or an array), so check first.
  const empty = emptyValueIssues(resource, resource.resourceType);
  if (empty.length > 0) {
    return empty;
  }
  try {
    medplumValidate(resource);
    return [];
  } catch (err) {
    // validateResource throws (despite its return type) when it finds errors.
    if (err instanceof OperationOutcomeError) {
      return (err.outcome.issue ?? []).filter((issue) => !isFalsePositive(resource, issue));
    }
    throw err;
  }
}

/**
 * Every FHIR element has a value or children (ele-1) and strings are non-empty
 * (https://hl7.org/fhir/R4/datatypes.html#string, https://hl7.org/fhir/R4/json.html): `{}`, `[]`
 * and `""` are invalid anywhere. `null` is left to Medplum (allowed only in primitive arrays).
 */
function emptyValueIssues(value: unknown, path: string): OperationOutcomeIssue[] {
  const empty =
    value === '' ||
    (Array.isArray(value) && value.length === 0) ||
    (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0);
  if (empty) {
    return [
      {
        severity: 'error',
        code: 'structure',
        details: { text: 'Empty objects, arrays and strings are not allowed' },
        expression: [path],
      },
    ];
  }
  if (Array.isArray(value)) {
    return value.flatMap((v, i) => emptyValueIssues(v, `${path}[${i}]`));
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => emptyValueIssues(v, `${path}.${k}`));
  }
  return [];
}

/** R4's base64Binary regex allows whitespace (`(\s*([0-9a-zA-Z\+\=]){4}\s*)+`); Medplum's does not. */
const R4_BASE64 = /^(\s*([0-9a-zA-Z+/=]){4}\s*)+$/;

function isFalsePositive(resource: Resource, issue: OperationOutcomeIssue): boolean {
  const text = issue.details?.text ?? '';
  const expression = issue.expression?.[0];
  if (text === 'Invalid base64Binary format' && expression) {
    const values = safeEval(expression, resource);
    return values.length > 0 && values.every((v) => typeof v === 'string' && R4_BASE64.test(v));
  }
  return false;
}

function safeEval(expression: string, resource: Resource): unknown[] {
  try {
    return evalFhirPath(expression, resource);
  } catch {
    return [];
  }
}

function prefixExpression(expression: string | undefined, prefix: string): string | undefined {
  if (!prefix) {
    return expression;
  }
  return expression ? `${prefix}.${expression.replace(/^[A-Z][A-Za-z]+\.?/, '')}`.replace(/\.$/, '') : prefix;
}
