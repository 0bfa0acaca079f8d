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
