import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CodeSystem, StructureDefinition, ValueSet } from '@medplum/fhirtypes';

/** Re-exported for the callers that name a profile where they validate. */
export { PROFILE_BASE_URL, PROFILES } from '../fhir/canonical-urls.js';

/** Where the service's own conformance resources (profiles/) are loaded from, once at start-up. */
export const DEFAULT_PROFILES_DIR = new URL('../../profiles/', import.meta.url).pathname;

export interface ConformanceResources {
  profiles: StructureDefinition[];
  terminology: (CodeSystem | ValueSet)[];
}

export function loadConformanceResources(dir = DEFAULT_PROFILES_DIR): ConformanceResources {
  const out: ConformanceResources = { profiles: [], terminology: [] };
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const resource = JSON.parse(readFileSync(join(dir, file), 'utf8')) as
      StructureDefinition | CodeSystem | ValueSet;
    if (resource.resourceType === 'StructureDefinition') {
      if (!resource.snapshot?.element?.length) {
        throw new Error(`${file} has no snapshot: run npm run profiles`);
      }
      out.profiles.push(resource);
    } else if (resource.resourceType === 'CodeSystem' || resource.resourceType === 'ValueSet') {
      out.terminology.push(resource);
    }
  }
  return out;
}
