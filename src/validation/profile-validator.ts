import {
  deepEquals,
  evalFhirPathTyped,
  parseFhirPath,
  toTypedValue,
  type FhirPathAtom,
  type TypedValue,
} from '@medplum/core';
import type {
  ElementDefinition,
  OperationOutcomeIssue,
  Resource,
  StructureDefinition,
} from '@medplum/fhirtypes';
import type { Terminology } from './terminology.js';

/**
 * Validation against one of the service's profiles. A profile's snapshot is its base plus its
 * differential, and the base rules are checked by the base validator, so the rules compiled here
 * are the snapshot elements its differential touches: cardinality, fixed and pattern values,
 * required bindings, reference target types and invariants. Compiled once per profile.
 */
interface ElementRule {
  id: string;
  /** FHIRPath selecting the element's values from the resource root. */
  select: FhirPathAtom;
  element: ElementDefinition;
  targetTypes?: string[];
  constraints: { key: string; human: string; atom: FhirPathAtom }[];
}

export interface CompiledProfile {
  url: string;
  type: string;
  rules: ElementRule[];
}

export interface ProfileContext {
  /** fullUrl → resourceType of the other entries of a Bundle, to type-check `urn:uuid:` references. */
  bundleTypes?: Map<string, string>;
}

export function compileProfile(profile: StructureDefinition): CompiledProfile {
  const touched = new Set((profile.differential?.element ?? []).map((e) => e.id));
  const rules: ElementRule[] = [];
  for (const element of profile.snapshot?.element ?? []) {
    if (!element.id || !touched.has(element.id)) continue;
    const path = element.path ?? element.id;
    const fhirPath = path.replace(/\[x\]$/, '');
    const targetTypes = element.type
      ?.filter((t) => t.code === 'Reference')
      .flatMap((t) => t.targetProfile ?? [])
      .map((url) => url.slice(url.lastIndexOf('/') + 1));
    rules.push({
      id: element.id,
      select: parseFhirPath(fhirPath),
      element,
      targetTypes: targetTypes?.length ? targetTypes : undefined,
      constraints: (element.constraint ?? [])
        .filter((c) => c.severity === 'error' && c.source === profile.url && c.expression)
        .map((c) => ({
          key: c.key as string,
          human: c.human ?? c.key ?? '',
          atom: parseFhirPath(c.expression as string),
        })),
    });
  }
  return { url: profile.url as string, type: profile.type as string, rules };
}

export function validateAgainstProfile(
  resource: Resource,
  profile: CompiledProfile,
  terminology: Terminology,
  context: ProfileContext = {},
): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const root = toTypedValue(resource);
  const variables = { '%resource': root, '%rootResource': root };
  const push = (code: OperationOutcomeIssue['code'], text: string, expression: string): void => {
    issues.push({
      severity: 'error',
      code,
      details: { text: `${text} (profile ${profile.url})` },
      expression: [expression],
    });
  };
  if (resource.resourceType !== profile.type) {
    push(
      'invalid',
      `The profile applies to ${profile.type}, not ${resource.resourceType}`,
      resource.resourceType,
    );
    return issues;
  }
  for (const rule of profile.rules) {
    const isRoot = rule.id === profile.type;
    const values = isRoot ? [root] : evalFhirPathTyped(rule.select, [root], variables);
    const where = (i: number): string =>
      isRoot
        ? profile.type
        : values.length > 1 || rule.element.max !== '1'
          ? `${rule.id.replace(/\[x\]$/, '')}[${i}]`
          : rule.id.replace(/\[x\]$/, '');
    const { element } = rule;
    if (!isRoot) {
      const min = element.min ?? 0;
      const max = element.max === '*' || element.max === undefined ? Infinity : Number(element.max);
      if (values.length < min) {
        push(
          'required',
          `${rule.id} is required (min ${min}) but ${values.length === 0 ? 'missing' : `has ${values.length}`}`,
          rule.id,
        );
      }
      if (values.length > max) {
        push('structure', `${rule.id} allows at most ${element.max} but has ${values.length}`, rule.id);
      }
    }
    values.forEach((value, i) => {
      const fixed = findPrefixed(element, 'fixed');
      if (fixed !== undefined && !deepEquals(value.value, fixed)) {
        push('value', `${rule.id} must be ${JSON.stringify(fixed)}`, where(i));
      }
      const pattern = findPrefixed(element, 'pattern');
      if (pattern !== undefined && !containsPattern(value.value, pattern)) {
        push('value', `${rule.id} must match the pattern ${JSON.stringify(pattern)}`, where(i));
      }
      if (element.binding?.strength === 'required' && element.binding.valueSet) {
        checkBinding(value, element.binding.valueSet, terminology, (text) =>
          push('code-invalid', text, where(i)),
        );
      }
      if (rule.targetTypes && value.type === 'Reference') {
        const type = referenceType((value.value as { reference?: string }).reference, context);
        if (type && !rule.targetTypes.includes(type) && !rule.targetTypes.includes('Resource')) {
          push('value', `${rule.id} must reference ${rule.targetTypes.join(' or ')}, not ${type}`, where(i));
        }
      }
      for (const constraint of rule.constraints) {
        try {
          const result = evalFhirPathTyped(constraint.atom, [value], { ...variables, '%context': value });
          if (result.length === 1 && result[0]?.value === false) {
            push('invariant', `${constraint.key}: ${constraint.human}`, where(i));
          }
        } catch {
          push('invariant', `${constraint.key}: could not be evaluated`, where(i));
        }
      }
    });
  }
  return issues;
}

function findPrefixed(element: ElementDefinition, prefix: 'fixed' | 'pattern'): unknown {
  for (const [key, value] of Object.entries(element)) {
    if (key.startsWith(prefix) && key.length > prefix.length) return value;
  }
  return undefined;
}

/** A pattern matches when every element it has is present with the same value (arrays: each item matched by some item). */
function containsPattern(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && pattern.every((p) => value.some((v) => containsPattern(v, p)));
  }
  if (typeof pattern === 'object' && pattern !== null) {
    if (typeof value !== 'object' || value === null) return false;
    return Object.entries(pattern).every(([k, p]) =>
      containsPattern((value as Record<string, unknown>)[k], p),
    );
  }
  return value === pattern;
}

function checkBinding(
  value: TypedValue,
  valueSet: string,
  terminology: Terminology,
  fail: (text: string) => void,
): void {
  const v = value.value as
    { code?: string; system?: string; coding?: { code?: string; system?: string }[] } | string;
  if (typeof v === 'string') {
    if (terminology.check(valueSet, undefined, v) === 'invalid')
      fail(`'${v}' is not in the value set ${valueSet}`);
    return;
  }
  const codings = value.type === 'CodeableConcept' ? (v.coding ?? []) : [v];
  const results = codings.map((c) => (c.code ? terminology.check(valueSet, c.system, c.code) : 'invalid'));
  if (!results.includes('valid') && !results.includes('unknown')) {
    fail(`No coding is in the value set ${valueSet}`);
  }
}

function referenceType(reference: unknown, context: ProfileContext): string | undefined {
  if (typeof reference !== 'string' || reference.startsWith('#')) return undefined;
  const inBundle = context.bundleTypes?.get(reference);
  if (inBundle) return inBundle;
  if (reference.startsWith('urn:')) return undefined;
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[^/]+)?$/.exec(
    reference.split('?')[0] as string,
  );
  return m?.[1] ?? (reference.includes('?') ? reference.split('?')[0] : undefined);
}
