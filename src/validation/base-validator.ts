import {
  createConstraintIssue,
  crawlTypedValue,
  evalFhirPathTyped,
  getDataType,
  OperationOutcomeError,
  parseFhirPath,
  toTypedValue,
  validateResource,
  type CrawlerVisitor,
  type FhirPathAtom,
  type InternalSchemaElement,
  type InternalTypeSchema,
  type TypedValue,
} from '@medplum/core';
import type { Bundle, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { checkNarrative } from './narrative.js';
import { dateTimeLacksTimezone, isImpossibleDate, isR4Base64 } from './primitives.js';
import { referenceFormatProblem } from './references.js';
import type { Terminology } from './terminology.js';

/**
 * Validation against the base R4 specification. @medplum/core's validateResource checks
 * structure, cardinality, JSON types, primitive regexes and the invariants on each element; it
 * leaves out the following, which the HL7 reference validator checks, so this adds them:
 * - invariants on datatypes (per-1, qty-3, ...) and on nested resources (contained, Bundle entries),
 *   plus ele-1, dom-3 and org-1, which Medplum skips;
 * - required value-set bindings, from the terminology shipped with the definitions;
 * - empty strings, dateTimes with a time but no timezone, impossible dates, ids;
 * - narrative safety (txt-1, txt-2);
 * - the format of literal references (references.ts).
 * Invariants are evaluated with `%resource` bound to the resource holding the element and
 * `%rootResource` to the resource at the root of its containment: the entry's own resource in a
 * Bundle, the container for a contained resource (https://hl7.org/fhir/R4/fhirpath.html#variables).
 * Every issue names the element by a FHIRPath `expression` with indexes.
 */
export interface BaseValidationIssue extends OperationOutcomeIssue {
  /** Our stable classification, mapped to an error code by the caller. */
  kind: 'structure' | 'invariant' | 'binding' | 'narrative';
}

/** Medplum reports these itself; ours would be duplicates. */
const MEDPLUM_CHECKED_ON_ROOT = new Set<string>();
/** Not invariants of instances (ext-1 is checked on every Extension element by Medplum already). */
const NOT_EVALUATED = new Set(['ele-1', 'dom-3', 'dom-6', 'ext-1', 'sdf-19']);

const atoms = new Map<string, FhirPathAtom | null>();

function compile(expression: string): FhirPathAtom | null {
  let atom = atoms.get(expression);
  if (atom === undefined) {
    try {
      atom = parseFhirPath(expression);
    } catch {
      atom = null;
    }
    atoms.set(expression, atom);
  }
  return atom;
}

/**
 * `entryTypes` types `urn:uuid:` references to Bundle entries; a caller validating a large Bundle
 * slice by slice passes the whole Bundle's, so references across slices are typed as before.
 */
export function validateBaseR4(
  resource: Resource,
  terminology: Terminology,
  entryTypes: Map<string, string> = bundleEntryTypes(resource),
): BaseValidationIssue[] {
  // Medplum skips `{}`, `[]` and `""` wherever they appear (even where a string or an array
  // belongs), and later stages would trip on them: report them first, alone.
  const empty = emptyValueIssues(resource, resource.resourceType);
  if (empty.length > 0) {
    return empty;
  }
  const issues: BaseValidationIssue[] = [];
  try {
    // Medplum returns warnings when it finds no error; one of them is a real base-R4 error.
    for (const warning of validateResource(resource)) {
      if (isWrongReferenceTarget(warning)) {
        issues.push({ ...warning, severity: 'error', code: 'structure', kind: 'structure' });
      }
    }
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    for (const issue of err.outcome.issue ?? []) {
      if (isWrongReferenceTarget(issue)) {
        issues.push({ ...issue, severity: 'error', code: 'structure', kind: 'structure' });
      } else if (issue.severity !== 'warning' && !isMedplumFalsePositive(resource, issue)) {
        issues.push({
          ...inR4Terms(resource, issue),
          kind: issue.code === 'invariant' ? 'invariant' : 'structure',
        });
      }
    }
  }
  const root = toTypedValue(resource);
  const visitor = new GapVisitor(root, terminology, issues, entryTypes);
  try {
    crawlTypedValue(root, visitor, { initialPath: resource.resourceType });
  } catch {
    // The crawl cannot walk a shape Medplum already reported as broken; its issues stand.
  }
  return dedupe(issues);
}

class GapVisitor implements CrawlerVisitor {
  /** The resources the crawl is inside, innermost last: `%resource` is the last. */
  private readonly resources: TypedValue[] = [];
  /**
   * For each of `resources`, the root of its containment, `%rootResource`: the resource itself,
   * unless it is contained, where it is its container's. A resource in Bundle.entry (or in a
   * Parameters, a message...) is a root: `ref-1` asks whether `#id` is among
   * `%rootResource.contained.id`, the entry's contained resources, not the Bundle's.
   */
  private readonly roots: TypedValue[] = [];

  constructor(
    private readonly root: TypedValue,
    private readonly terminology: Terminology,
    private readonly issues: BaseValidationIssue[],
    /** fullUrl → resourceType of a Bundle's entries, to type-check `urn:uuid:` references. */
    private readonly entryTypes: Map<string, string>,
  ) {}

  onEnterResource(_path: string, value: TypedValue & { path: string }): void {
    this.resources.push(value);
    const container = this.roots[this.roots.length - 1];
    this.roots.push(container && CONTAINED_PATH.test(value.path) ? container : value);
    const resource = value.value as Resource & { contained?: Resource[] };
    // Resource.id is typed System.String in the R4 definitions, so its id regex is checked here.
    if (typeof resource.id === 'string' && !/^[A-Za-z0-9\-.]{1,64}$/.test(resource.id)) {
      this.push(
        'structure',
        'value',
        `'${resource.id.slice(0, 70)}' is not a valid id (1-64 of A-Z a-z 0-9 - .)`,
        `${value.path}.id`,
      );
    }
    if (value.path !== this.root.type && value.path !== resource.resourceType) {
      // A nested resource (contained, Bundle.entry.resource): Medplum checks only the root's invariants.
      this.checkConstraints(value, resource.resourceType, undefined);
    } else if (resource.resourceType === 'Organization') {
      this.checkConstraints(value, 'Organization', new Set(['org-1']));
    }
    if (resource.contained?.length) {
      this.checkContainedReferenced(value.path, resource);
    }
  }

  onExitResource(): void {
    this.resources.pop();
    this.roots.pop();
  }

  onEnterObject(_path: string, value: TypedValue & { path: string }, schema: InternalTypeSchema): void {
    if (schema.kind === 'complex-type' && schema.constraints?.length) {
      this.checkSchemaConstraints(value, schema);
    }
    if (schema.type === 'Narrative' && typeof (value.value as { div?: unknown }).div === 'string') {
      for (const problem of checkNarrative((value.value as { div: string }).div)) {
        this.push('narrative', 'invariant', problem.message, `${value.path}.div`);
      }
    }
    const obj = value.value as Record<string, unknown>;
    if (
      typeof obj === 'object' &&
      obj !== null &&
      !Array.isArray(obj) &&
      Object.keys(obj).every((k) => k === 'id')
    ) {
      this.push(
        'invariant',
        'invariant',
        'ele-1: All FHIR elements must have a @value or children',
        value.path,
      );
    }
  }

  visitProperty(
    _parent: TypedValue,
    key: string,
    _path: string,
    propertyValues: ((TypedValue & { path: string }) | (TypedValue & { path: string })[])[],
    schema: InternalTypeSchema,
  ): void {
    const element = schema.elements[key];
    if (!element) return;
    for (const property of propertyValues) {
      if (Array.isArray(property) && property.length === 0) {
        continue;
      }
      for (const value of Array.isArray(property) ? property : [property]) {
        if (!value || value.value === undefined || value.value === null) continue;
        this.checkPrimitive(value);
        if (element.binding?.strength === 'required' && element.binding.valueSet) {
          this.checkBinding(value, element);
        }
        if (value.type === 'Reference') {
          this.checkReferenceFormat(value);
          this.checkBundleReferenceTarget(value, element);
        }
      }
    }
  }

  private checkPrimitive(value: TypedValue & { path: string }): void {
    const { type, path } = value;
    const v = value.value as unknown;
    if (typeof v === 'string' && v === '' && type !== 'xhtml') {
      this.push('structure', 'value', 'Primitive values must not be empty strings', path);
      return;
    }
    if (
      typeof v === 'number' &&
      (type === 'integer' || type === 'positiveInt' || type === 'unsignedInt') &&
      Math.abs(v) > 2147483647
    ) {
      // R4 integers are 32-bit (https://hl7.org/fhir/R4/datatypes.html#integer).
      this.push('structure', 'value', `${v} is outside the 32-bit range of an R4 ${type}`, path);
      return;
    }
    if (typeof v !== 'string') return;
    if (type === 'id' && path.endsWith('.id') && !/^[A-Za-z0-9\-.]{1,64}$/.test(v)) {
      this.push('structure', 'value', `'${v.slice(0, 70)}' is not a valid id`, path);
    }
    if ((type === 'dateTime' || type === 'instant') && dateTimeLacksTimezone(v)) {
      this.push('structure', 'value', `The ${type} '${v}' has a time but no timezone`, path);
    }
    if ((type === 'date' || type === 'dateTime' || type === 'instant') && isImpossibleDate(v)) {
      this.push('structure', 'value', `'${v}' is not a real calendar date`, path);
    }
  }

  private checkBinding(value: TypedValue & { path: string }, element: InternalSchemaElement): void {
    const valueSet = element.binding?.valueSet as string;
    const v = value.value as
      { code?: string; system?: string; coding?: { code?: string; system?: string }[] } | string;
    if (value.type === 'code' && typeof v === 'string') {
      if (this.terminology.check(valueSet, undefined, v) === 'invalid') {
        this.push(
          'binding',
          'code-invalid',
          `'${v.slice(0, 70)}' is not a code of the required value set ${valueSet}`,
          value.path,
        );
      }
    } else if (value.type === 'Coding' && typeof v === 'object' && v.code) {
      if (this.terminology.check(valueSet, v.system, v.code) === 'invalid') {
        this.push(
          'binding',
          'code-invalid',
          `${v.system ?? ''}|${v.code} is not in the required value set ${valueSet}`,
          value.path,
        );
      }
    } else if (value.type === 'CodeableConcept' && typeof v === 'object' && v.coding?.length) {
      const results = v.coding.map((c) =>
        c.code ? this.terminology.check(valueSet, c.system, c.code) : 'unknown',
      );
      if (results.every((r) => r === 'invalid')) {
        this.push(
          'binding',
          'code-invalid',
          `None of the codings is in the required value set ${valueSet}`,
          value.path,
        );
      }
    }
  }

  /** A literal reference has one of the forms R4 defines (references.ts). */
  private checkReferenceFormat(value: TypedValue & { path: string }): void {
    const reference = (value.value as { reference?: unknown }).reference;
    if (typeof reference !== 'string' || reference === '') return;
    const problem = referenceFormatProblem(reference);
    if (problem) {
      this.push(
        'structure',
        'value',
        `'${reference.slice(0, 80)}' is not a valid reference: ${problem}`,
        `${value.path}.reference`,
      );
    }
  }

  /** Medplum types only literal references; one to another Bundle entry is typed by that entry. */
  private checkBundleReferenceTarget(
    value: TypedValue & { path: string },
    element: InternalSchemaElement,
  ): void {
    const reference = (value.value as { reference?: unknown }).reference;
    const target = typeof reference === 'string' ? this.entryTypes.get(reference) : undefined;
    if (!target || !reference?.toString().startsWith('urn:')) return;
    const allowed = element.type
      .filter((t) => t.code === 'Reference')
      .flatMap((t) => t.targetProfile ?? [])
      .map((url) => url.slice(url.lastIndexOf('/') + 1));
    if (allowed.length > 0 && !allowed.includes(target) && !allowed.includes('Resource')) {
      this.push(
        'structure',
        'structure',
        `Invalid reference: got "${target}", expected "${allowed.join('", "')}"`,
        value.path,
      );
    }
  }

  private checkSchemaConstraints(value: TypedValue & { path: string }, schema: InternalTypeSchema): void {
    for (const constraint of schema.constraints ?? []) {
      if (constraint.severity !== 'error' || NOT_EVALUATED.has(constraint.key)) continue;
      this.evaluate(value, constraint.key, constraint.expression, constraint.description);
    }
  }

  private checkConstraints(
    value: TypedValue & { path: string },
    resourceType: string,
    only: Set<string> | undefined,
  ): void {
    const schema = tryResourceSchema(resourceType);
    for (const constraint of schema?.constraints ?? []) {
      if (
        constraint.severity !== 'error' ||
        NOT_EVALUATED.has(constraint.key) ||
        MEDPLUM_CHECKED_ON_ROOT.has(constraint.key)
      )
        continue;
      if (only && !only.has(constraint.key)) continue;
      this.evaluate(value, constraint.key, constraint.expression, constraint.description);
    }
  }

  private evaluate(
    value: TypedValue & { path: string },
    key: string,
    expression: string,
    description: string,
  ): void {
    const atom = compile(expression);
    if (!atom) return;
    const resource = this.resources[this.resources.length - 1] ?? this.root;
    const rootResource = this.roots[this.roots.length - 1] ?? this.root;
    try {
      const result = evalFhirPathTyped(atom, [value], {
        '%context': value,
        '%resource': resource,
        '%rootResource': rootResource,
      });
      // Only a definite `false` fails: an empty result means the invariant had nothing to test
      // (e.g. ref-1 on a display-only Reference), which the reference validator also passes.
      if (result.length === 1 && result[0]?.value === false) {
        this.push('invariant', 'invariant', `${key}: ${description}`, value.path);
      }
    } catch {
      // An expression this engine cannot evaluate is not evidence of an invalid resource.
    }
  }

  /** dom-3: every contained resource is referenced from the container (or references it, via '#'). */
  private checkContainedReferenced(path: string, resource: Resource & { contained?: Resource[] }): void {
    // dom-3 looks in %resource.descendants(), which takes in the contained resources too: one
    // contained resource may be referenced only by another (https://hl7.org/fhir/R4/domainresource.html#invs).
    const references = new Set<string>();
    collectStrings(resource, references, false);
    resource.contained?.forEach((contained, i) => {
      const inner = new Set<string>();
      collectStrings(contained, inner, false);
      if (!references.has(`#${contained.id}`) && !inner.has('#')) {
        this.push(
          'invariant',
          'invariant',
          `dom-3: contained resource ${contained.resourceType}/${contained.id ?? '?'} is not referenced from the container`,
          `${path}.contained[${i}]`,
        );
      }
    });
  }

  private push(
    kind: BaseValidationIssue['kind'],
    code: OperationOutcomeIssue['code'],
    message: string,
    expression: string,
  ): void {
    this.issues.push({
      severity: 'error',
      code,
      kind,
      details: { text: message },
      expression: [concretePath(this.root.value, expression)],
    });
  }
}

/** A contained resource's path: `….contained[2]`. */
const CONTAINED_PATH = /\.contained\[\d+\]$/;

/**
 * The crawler names a choice element by its definition (`MedicationRequest.medication[x]`); an
 * issue names the element as written (`MedicationRequest.medicationReference`), read from the
 * resource along the path. One pass over the path's segments.
 */
export function concretePath(root: unknown, path: string): string {
  if (!path.includes('[x]')) return path;
  const segments = path.split('.');
  let current: unknown = root;
  for (let s = 1; s < segments.length; s++) {
    const segment = segments[s] as string;
    const bracket = segment.indexOf('[');
    const name = bracket === -1 ? segment : segment.slice(0, bracket);
    const rest = bracket === -1 ? '' : segment.slice(bracket);
    const obj = typeof current === 'object' && current !== null ? (current as Record<string, unknown>) : {};
    let key = name;
    let indexes = rest;
    if (rest.startsWith('[x]')) {
      indexes = rest.slice(3);
      key =
        Object.keys(obj).find(
          (k) => k.length > name.length && k.startsWith(name) && /^[A-Z]/.test(k.slice(name.length)),
        ) ?? `${name}[x]`;
      segments[s] = `${key}${indexes}`;
    }
    current = obj[key];
    for (const m of indexes.matchAll(/\[(\d+)\]/g)) {
      current = Array.isArray(current) ? current[Number(m[1])] : undefined;
    }
  }
  return segments.join('.');
}

/** Every string value under a resource that could be a reference (`#id`), skipping contained resources. */
function collectStrings(value: unknown, out: Set<string>, skipContained: boolean): void {
  if (typeof value === 'string') {
    if (value.startsWith('#')) out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectStrings(v, out, skipContained);
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (!(skipContained && k === 'contained')) collectStrings(v, out, skipContained);
    }
  }
}

function tryResourceSchema(resourceType: string): InternalTypeSchema | undefined {
  try {
    return getDataType(resourceType);
  } catch {
    return undefined;
  }
}

/**
 * Medplum reports a reference to a type the element does not allow as a warning; the R4
 * definitions (and the reference validator) make it an error. Only literal `Type/id` references
 * count: Medplum also "warns" on every `urn:uuid:` reference, which it cannot type.
 */
function isWrongReferenceTarget(issue: OperationOutcomeIssue): boolean {
  const text = issue.details?.text ?? issue.diagnostics ?? '';
  return /^Invalid reference: got "[A-Z][A-Za-z]+", expected/.test(text);
}

function isMedplumFalsePositive(resource: Resource, issue: OperationOutcomeIssue): boolean {
  const text = issue.details?.text;
  const expression = issue.expression?.[0];
  if (!expression) return false;
  // R4's base64Binary regex allows whitespace (`(\s*([0-9a-zA-Z\+\=]){4}\s*)+`); Medplum's does not.
  if (text === 'Invalid base64Binary format') {
    return allR4Base64(base64Values(resource, expression));
  }
  // R4 limits strings to 1 MB (https://hl7.org/fhir/R4/datatypes.html#string) but sets no limit on
  // base64Binary (https://hl7.org/fhir/R4/datatypes.html#base64Binary): the body limit bounds it.
  // Medplum skips its format check on a string it finds too large; the R4 grammar is checked here.
  if (text === 'String cannot be larger than 1 MB') {
    return allR4Base64(base64Values(resource, expression));
  }
  return false;
}

/** A base64Binary over 1 MB that breaks the R4 grammar is refused for its format, not its size. */
function inR4Terms(resource: Resource, issue: OperationOutcomeIssue): OperationOutcomeIssue {
  const expression = issue.expression?.[0];
  if (
    issue.details?.text === 'String cannot be larger than 1 MB' &&
    expression &&
    base64Values(resource, expression).length > 0
  ) {
    return { ...issue, details: { ...issue.details, text: 'Invalid base64Binary format' } };
  }
  return issue;
}

function allR4Base64(values: string[]): boolean {
  return values.length > 0 && values.every(isR4Base64);
}

/**
 * The base64Binary values at a Medplum issue's path (`DocumentReference.content[0].attachment.data`,
 * `Patient.extension[0].value[x]`), or none (so the issue stands) if the path holds anything else.
 */
function base64Values(resource: Resource, expression: string): string[] {
  try {
    const values = evalFhirPathTyped(expression.replaceAll('[x]', ''), [toTypedValue(resource)]);
    const strings = values.filter((v) => v.type === 'base64Binary' && typeof v.value === 'string');
    return strings.length > 0 && strings.length === values.length
      ? strings.map((v) => v.value as string)
      : [];
  } catch {
    return [];
  }
}

function dedupe(issues: BaseValidationIssue[]): BaseValidationIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.expression?.[0]}|${issue.details?.text ?? issue.diagnostics}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Every FHIR element has a value or children (ele-1) and strings are non-empty
 * (https://hl7.org/fhir/R4/datatypes.html#string, https://hl7.org/fhir/R4/json.html): `{}`, `[]`
 * and `""` are invalid anywhere. `null` is left to Medplum (allowed only in primitive arrays).
 */
export function emptyValueIssues(value: unknown, path: string): BaseValidationIssue[] {
  const empty =
    value === '' ||
    (Array.isArray(value) && value.length === 0) ||
    (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0);
  if (empty) {
    return [
      {
        severity: 'error',
        code: 'structure',
        kind: 'structure',
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

function isTrue(result: TypedValue[]): boolean {
  return result.length === 1 && result[0]?.value === true;
}

/**
 * bdl-7, `(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()`,
 * with a Set: the FHIRPath engine's isDistinct compares every pair, 0.4 s for 2,000 entries.
 */
function fullUrlsDistinct(bundle: Bundle): boolean {
  if (bundle.type === 'history') return true;
  const seen = new Set<string>();
  for (const entry of bundle.entry ?? []) {
    if (typeof entry?.fullUrl !== 'string') continue;
    const key = `${entry.fullUrl}${entry.resource?.meta?.versionId ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
  }
  return true;
}

/** The keys Medplum's validator skips (its `skippedConstraintKeys`). */
const MEDPLUM_SKIPPED = new Set(['ele-1', 'dom-3', 'org-1', 'sdf-19']);

/**
 * The Bundle's own invariants (bdl-*) on the whole Bundle, exactly as Medplum's validateResource
 * reports them on its root: the first error-level constraint not definitely true. For a Bundle
 * validated slice by slice, where bdl-7 (unique fullUrls) spans slices.
 */
export function bundleRootInvariantIssues(bundle: Resource): BaseValidationIssue[] {
  const root = toTypedValue(bundle);
  const value = { ...root, path: 'Bundle' };
  for (const constraint of tryResourceSchema('Bundle')?.constraints ?? []) {
    if (constraint.severity !== 'error' || MEDPLUM_SKIPPED.has(constraint.key)) continue;
    let holds: boolean;
    try {
      holds =
        constraint.key === 'bdl-7'
          ? fullUrlsDistinct(bundle as Bundle)
          : isTrue(
              evalFhirPathTyped(constraint.expression, [value], {
                '%context': value,
                '%resource': root,
                '%rootResource': root,
              }),
            );
    } catch {
      // Medplum reports an expression it cannot evaluate as not met.
      holds = false;
    }
    if (!holds) return [{ ...createConstraintIssue('Bundle', constraint), kind: 'invariant' }];
  }
  return [];
}

export function bundleEntryTypes(resource: Resource): Map<string, string> {
  const map = new Map<string, string>();
  if (resource.resourceType === 'Bundle') {
    for (const entry of (resource as { entry?: { fullUrl?: unknown; resource?: Resource }[] }).entry ?? []) {
      if (typeof entry?.fullUrl === 'string' && entry.resource?.resourceType)
        map.set(entry.fullUrl, entry.resource.resourceType);
    }
  }
  return map;
}
