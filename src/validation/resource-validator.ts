import { setImmediate } from 'node:timers/promises';
import type { Bundle, OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { ERROR_CODE_SYSTEM, FhirError, type ErrorCode, type IssueInput } from '../fhir/errors.js';
import { loadFhirDefinitions } from '../fhir/definitions.js';
import { activeAttachmentIssues } from './attachment-safety.js';
import {
  bundleEntryTypes,
  bundleRootInvariantIssues,
  emptyValueIssues,
  validateBaseR4,
} from './base-validator.js';
import { checkBundleRules } from './bundle-rules.js';
import { loadConformanceResources } from './profile-registry.js';
import { compileProfile, validateAgainstProfile, type CompiledProfile } from './profile-validator.js';
import { Terminology } from './terminology.js';

/**
 * The one validation stage: base R4 (structure, invariants, bindings, primitives, narrative),
 * Bundle rules, and the service's profiles, collecting every issue before anything runs.
 * Base-R4 problems make a 400; profile problems a 422 (https://hl7.org/fhir/R4/http.html#2.21.0.4.1).
 * Built once at start-up: the terminology expansions and compiled profiles are reused.
 */
export interface ValidationOptions {
  /** Profiles to validate against besides those the resource claims in meta.profile. */
  profiles?: string[];
  /**
   * Check only the profiles: the caller validated the same resource against base R4 already
   * (a hook adding a profile to a resource the write path has just validated).
   */
  profilesOnly?: boolean;
}

export interface ValidationResult {
  /** Errors, warnings and information, each with a stable code in `details.coding`. */
  issues: OperationOutcomeIssue[];
  /** 400 if the base specification is violated, 422 if only a profile is, undefined if valid. */
  failure?: 400 | 422;
}

/** Entries validated between two yields to the event loop (10-40 ms of work on a loaded 2-core machine). */
const SLICE_ENTRIES = 25;

export class ResourceValidator {
  private readonly terminology: Terminology;
  private readonly profiles = new Map<string, CompiledProfile>();

  constructor(profilesDir?: string) {
    loadFhirDefinitions();
    const conformance = loadConformanceResources(profilesDir);
    this.terminology = new Terminology(conformance.terminology);
    for (const sd of conformance.profiles) {
      this.profiles.set(sd.url as string, compileProfile(sd));
    }
  }

  knowsProfile(url: string): boolean {
    return this.profiles.has(url.split('|')[0] as string);
  }

  validate(resource: Resource, options: ValidationOptions = {}): ValidationResult {
    const base = options.profilesOnly ? [] : validateBaseR4(resource, this.terminology).map(stampBase);
    return this.finish(resource, options, base);
  }

  /**
   * `validate`, giving the event loop back between slices of a large batch or transaction Bundle,
   * so thousands of entries (seconds of CPU) do not stall every other request meanwhile. The base
   * checks run on the Bundle with SLICE_ENTRIES entries at a time, with the whole Bundle's entry
   * types and issue paths re-indexed to the whole Bundle; what spans entries (duplicate fullUrls,
   * references between entries, profiles) is checked on the whole Bundle as in `validate`.
   */
  async validateYielding(resource: Resource, options: ValidationOptions = {}): Promise<ValidationResult> {
    const bundle = resource as Bundle;
    const entries = bundle.entry;
    if (
      options.profilesOnly ||
      resource.resourceType !== 'Bundle' ||
      (bundle.type !== 'transaction' && bundle.type !== 'batch') ||
      !Array.isArray(entries) ||
      entries.length <= SLICE_ENTRIES
    ) {
      return this.validate(resource, options);
    }
    // Empty values are reported alone, for the whole Bundle, as validateBaseR4 does (one quick walk).
    const empty = emptyValueIssues(bundle, 'Bundle');
    if (empty.length > 0) return this.finish(resource, options, empty.map(stampBase));
    const entryTypes = bundleEntryTypes(bundle);
    const base: OperationOutcomeIssue[] = [];
    const seen = new Set<string>();
    for (let from = 0; from < entries.length; from += SLICE_ENTRIES) {
      await setImmediate();
      const slice = { ...bundle, entry: entries.slice(from, from + SLICE_ENTRIES) };
      for (const issue of validateBaseR4(slice, this.terminology, entryTypes)) {
        // The Bundle's own invariants are decided on the whole Bundle below: bdl-7 spans slices.
        if (isRootConstraint(issue)) continue;
        const shifted = stampBase(shiftEntryIndex(issue, from));
        // Issues on the Bundle itself come once per slice; they are reported once.
        const key = `${shifted.expression?.[0]}|${shifted.details?.text}`;
        if (!seen.has(key)) {
          seen.add(key);
          base.push(shifted);
        }
      }
    }
    await setImmediate();
    base.unshift(...bundleRootInvariantIssues(bundle).map(stampBase));
    return this.finish(resource, options, base);
  }

  /** Bundle rules, attachments and profiles, then the verdict, after the base checks. */
  private finish(
    resource: Resource,
    options: ValidationOptions,
    base: OperationOutcomeIssue[],
  ): ValidationResult {
    if (resource.resourceType === 'Bundle' && !options.profilesOnly) {
      base.push(...checkBundleRules(resource as Bundle).map((issue) => stamp(issue, 'invalid-bundle')));
    }
    // Active HTML in client attachments is a 422 (attachment-safety.ts); checked with base R4.
    const profileIssues: OperationOutcomeIssue[] = options.profilesOnly
      ? []
      : activeAttachmentIssues(resource);
    const notes: OperationOutcomeIssue[] = [];
    for (const { target, expression, profiles } of this.targets(resource, options)) {
      for (const url of profiles) {
        const profile = this.profiles.get(url.split('|')[0] as string);
        if (!profile) {
          notes.push({
            severity: 'warning',
            code: 'not-supported',
            details: {
              coding: [{ system: ERROR_CODE_SYSTEM, code: 'unknown-profile' }],
              text: `Profile ${url} is not known to this server; not checked`,
            },
            expression: [`${expression}.meta.profile`],
          });
          continue;
        }
        const bundleTypes =
          resource.resourceType === 'Bundle' ? bundleTypeMap(resource as Bundle) : undefined;
        for (const issue of validateAgainstProfile(target, profile, this.terminology, { bundleTypes })) {
          profileIssues.push(stamp(prefix(issue, expression, target.resourceType), 'profile-violation'));
        }
      }
    }
    const errors = [...base, ...profileIssues].filter(
      (i) => i.severity === 'error' || i.severity === 'fatal',
    );
    return {
      issues: [...base, ...profileIssues, ...notes],
      failure: base.some((i) => i.severity === 'error' || i.severity === 'fatal')
        ? 400
        : errors.length > 0
          ? 422
          : undefined,
    };
  }

  /** Throws a FhirError carrying every issue when the resource is invalid. */
  assertValid(resource: Resource, options: ValidationOptions = {}): void {
    const result = this.validate(resource, options);
    if (result.failure) {
      throw toFhirError(result, result.failure);
    }
  }

  /** The resource and, for a Bundle, each entry, with the profiles each must meet. */
  private targets(
    resource: Resource,
    options: ValidationOptions,
  ): { target: Resource; expression: string; profiles: string[] }[] {
    const out: { target: Resource; expression: string; profiles: string[] }[] = [
      {
        target: resource,
        expression: resource.resourceType,
        profiles: unique([...(resource.meta?.profile ?? []), ...(options.profiles ?? [])]),
      },
    ];
    if (resource.resourceType === 'Bundle') {
      (resource as Bundle).entry?.forEach((entry, i) => {
        if (entry?.resource?.meta?.profile?.length) {
          out.push({
            target: entry.resource,
            expression: `Bundle.entry[${i}].resource`,
            profiles: unique(entry.resource.meta.profile),
          });
        }
      });
    }
    return out.filter((t) => t.profiles.length > 0);
  }
}

export function toFhirError(result: ValidationResult, failure: 400 | 422): FhirError {
  const errors = result.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  const ordered = failure === 400 ? errors.sort((a, b) => rank(a) - rank(b)) : errors;
  const inputs: IssueInput[] = ordered.map((issue) => ({
    code: (issue.details?.coding?.[0]?.code ?? 'invalid-resource') as ErrorCode,
    message: issue.details?.text ?? issue.diagnostics ?? 'Invalid resource',
    expression: issue.expression?.[0],
    issueCode: issue.code,
  }));
  return new FhirError(inputs[0] as IssueInput, inputs.slice(1));
}

/** For a 400, list base-specification problems first so the status follows from the first issue. */
function rank(issue: OperationOutcomeIssue): number {
  return issue.details?.coding?.[0]?.code === 'profile-violation' ? 1 : 0;
}

export function toOperationOutcome(result: ValidationResult): OperationOutcome {
  if (result.issues.length === 0) {
    return {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'information', code: 'informational', details: { text: 'No issues found' } }],
    };
  }
  return { resourceType: 'OperationOutcome', issue: result.issues };
}

function isRootConstraint(issue: OperationOutcomeIssue): boolean {
  return (
    issue.code === 'invariant' &&
    issue.expression?.length === 1 &&
    issue.expression[0] === 'Bundle' &&
    (issue.details?.text ?? '').startsWith('Constraint ')
  );
}

function stampBase(issue: OperationOutcomeIssue & { kind?: string }): OperationOutcomeIssue {
  return stamp(issue, issue.kind === 'narrative' ? 'unsafe-narrative' : 'invalid-resource');
}

/** `Bundle.entry[3]…` of a slice starting at entry `from` is `Bundle.entry[from + 3]…` of the Bundle. */
function shiftEntryIndex<T extends OperationOutcomeIssue>(issue: T, from: number): T {
  if (from === 0) return issue;
  return {
    ...issue,
    expression: issue.expression?.map((e) =>
      e.startsWith('Bundle.entry[')
        ? `Bundle.entry[${Number(e.slice(13, e.indexOf(']'))) + from}${e.slice(e.indexOf(']'))}`
        : e,
    ),
  };
}

function stamp(issue: OperationOutcomeIssue & { kind?: string }, code: ErrorCode): OperationOutcomeIssue {
  const { kind: _kind, ...rest } = issue;
  return {
    ...rest,
    details: {
      coding: [{ system: ERROR_CODE_SYSTEM, code }],
      text: issue.details?.text ?? issue.diagnostics,
    },
  };
}

function prefix(
  issue: OperationOutcomeIssue,
  expression: string,
  resourceType: string,
): OperationOutcomeIssue {
  if (expression === resourceType) return issue;
  return {
    ...issue,
    expression: issue.expression?.map((e) => e.replace(new RegExp(`^${resourceType}`), expression)),
  };
}

function bundleTypeMap(bundle: Bundle): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of bundle.entry ?? []) {
    if (entry?.fullUrl && entry.resource?.resourceType) map.set(entry.fullUrl, entry.resource.resourceType);
  }
  return map;
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}
