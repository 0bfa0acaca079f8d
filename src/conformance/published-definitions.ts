import type { Resource } from '@medplum/fhirtypes';
import { analyticsDefinitions } from '../analytics/definitions.js';
import { scopedStore } from '../auth/scoped-store.js';
import { OPERATIONS, type OperationRegistry } from '../operations/registry.js';
import { searchResources } from '../rest/search-interaction.js';
import { runWrite, type RestServices } from '../rest/write-context.js';
import { updateResource } from '../rest/write-interactions.js';
import type { FhirStore } from '../store/fhir-store.js';

/**
 * The definitions the service publishes, stored as ordinary resources so that read, search and
 * history work on them as on any other (https://hl7.org/fhir/R4/http.html): the referral-programme
 * Measures and the referrer-feedback Questionnaire (profiles/), and the OperationDefinition of every
 * operation in the registry (the canonicals the CapabilityStatement names).
 */
export function publishedDefinitions(operations: OperationRegistry = OPERATIONS): Resource[] {
  const { measures, questionnaires } = analyticsDefinitions();
  return [...measures.values(), ...questionnaires.values(), ...operations.definitions()];
}

export interface PublishReport {
  created: string[];
  updated: string[];
  unchanged: number;
}

/**
 * Stores every published definition, idempotently: created when absent, updated when its content
 * differs from what is stored, left alone otherwise (no new version on every start). A stored
 * definition is found by its canonical `url` first, then by id, so one that was stored under
 * another id is updated rather than duplicated. Runs as the server (no client's access rules).
 * Call it once at start-up, after the store is open and before the app takes requests.
 */
export async function ensurePublishedDefinitions(
  store: FhirStore,
  services: RestServices,
  operations: OperationRegistry = OPERATIONS,
): Promise<PublishReport> {
  const server = scopedStore(store, undefined);
  const report: PublishReport = { created: [], updated: [], unchanged: 0 };
  for (const definition of publishedDefinitions(operations)) {
    const type = definition.resourceType;
    const existing = await storedDefinition(store, definition);
    if (existing && sameContent(existing, definition)) {
      report.unchanged++;
      continue;
    }
    const id = existing?.id ?? (definition.id as string);
    await runWrite(server, services, (ctx) => updateResource(ctx, type, id, { ...definition, id }));
    (existing ? report.updated : report.created).push(`${type}/${id}`);
  }
  return report;
}

async function storedDefinition(store: FhirStore, definition: Resource): Promise<Resource | undefined> {
  const url = (definition as { url?: string }).url;
  if (url) {
    const found = await searchResources(store, {
      resourceType: definition.resourceType,
      params: [['url', url]],
      baseUrl: '',
      selfUrl: '',
      // Strict: were `url` ever not indexed, the search must fail, not match every definition.
      strict: true,
    });
    const match = found.entry?.find(
      (e) => (e.resource as { url?: string } | undefined)?.url === url,
    )?.resource;
    if (match) return match;
  }
  const current = await store.read(definition.resourceType, definition.id as string);
  return current && !current.deleted ? current.resource : undefined;
}

/** Equal but for what the server keeps itself (`meta`) and the id it is stored under. */
function sameContent(stored: Resource, published: Resource): boolean {
  const strip = ({ meta: _meta, id: _id, ...rest }: Resource): unknown => rest;
  return canonicalJson(strip(stored)) === canonicalJson(strip(published));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
