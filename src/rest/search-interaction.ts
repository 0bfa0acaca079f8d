import type { Bundle, BundleEntry, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { Scope } from '../access/client-identity.js';
import { toIssue, toOperationOutcome } from '../fhir/errors.js';
import { applyElements, applySummary } from '../fhir/result-shaping.js';
import { referencedTargets } from '../fhir/search/index-rows.js';
import { parseSearch, type IncludeRequest, type ParsedSearch } from '../fhir/search/parse-search.js';
import { MAX_VALUES_PER_PARAMETER } from '../fhir/search/search-limits.js';
import type { StoreReader } from '../store/fhir-store.js';
import { pageLinks } from './read-interactions.js';
import { assertResourceType } from './resource-identity.js';

export interface SearchParams {
  resourceType: string;
  params: [string, string][];
  baseUrl: string;
  /** The search URL without its query, for Bundle.link. */
  selfUrl: string;
  /** `Prefer: handling=strict`: unknown parameters are an error, not a warning. */
  strict: boolean;
  /**
   * The token's SMART scopes (none when authentication is off). `_include`, `_revinclude` and
   * `:iterate` add only resources of types these allow the client to fetch on its own.
   */
  scopes?: Scope[];
}

/** At most this many resources are added by `_include`/`_revinclude`, so one search stays bounded. */
const MAX_INCLUDED = 1000;
const MAX_ITERATIONS = 3;

/** Type-level search (https://hl7.org/fhir/R4/search.html), answered from the write-time indexes. */
export async function searchResources(store: StoreReader, request: SearchParams): Promise<Bundle> {
  assertResourceType(request.resourceType);
  const parsed = parseSearch(request.resourceType, request.params, { strict: request.strict });
  const query = parsed.query;
  const countOnly = parsed.summary === 'count';
  // One extra row tells whether there is a next page.
  const askFor = countOnly ? 0 : query.count + 1;
  const result = await store.search({ ...query, count: askFor, total: query.total || countOnly });
  const hasMore = result.resources.length > query.count;
  const matches = result.resources.slice(0, query.count);
  // On the last page the total is known without counting.
  const total =
    result.total ??
    (!hasMore && !countOnly && (matches.length > 0 || query.offset === 0)
      ? query.offset + matches.length
      : undefined);
  const omitted = new Set<string>();
  const included = countOnly
    ? []
    : await collectIncludes(store, matches, parsed, includable(request.scopes, omitted));
  const warnings = [...parsed.warnings, ...omittedWarnings(omitted)];

  const entries: BundleEntry[] = [
    ...matches.map((resource) => ({
      fullUrl: `${request.baseUrl}/${resource.resourceType}/${resource.id}`,
      resource: shape(resource, parsed),
      search: { mode: 'match' as const },
    })),
    ...included.map((resource) => ({
      fullUrl: `${request.baseUrl}/${resource.resourceType}/${resource.id}`,
      resource,
      search: { mode: 'include' as const },
    })),
  ];
  if (warnings.length > 0) {
    entries.push({ resource: toOperationOutcome(warnings), search: { mode: 'outcome' } });
  }
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(total !== undefined ? { total } : {}),
    link: pageLinks(request.selfUrl, request.params, query.offset, query.count, total, hasMore),
    ...(entries.length > 0 ? { entry: entries } : {}),
  };
}

function shape(resource: Resource, parsed: ParsedSearch): Resource {
  if (parsed.elements && parsed.elements.length > 0) {
    return applyElements(resource, parsed.elements);
  }
  if (parsed.summary && parsed.summary !== 'false') {
    return applySummary(resource, parsed.summary);
  }
  return resource;
}

/**
 * Whether included resources of a type may be returned: only when the token could fetch that type
 * itself, by read or by search (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
 * Other types are left out, as servers commonly do, rather than failing the whole search (403): the
 * search itself was allowed, and its matches are not in doubt. Left-out types are noted in `omitted`.
 */
function includable(scopes: Scope[] | undefined, omitted: Set<string>): (resourceType: string) => boolean {
  return (resourceType) => {
    const allowed =
      scopes === undefined ||
      scopes.some(
        (s) =>
          (s.resourceType === '*' || s.resourceType === resourceType) &&
          (s.permissions.has('r') || s.permissions.has('s')),
      );
    if (!allowed) omitted.add(resourceType);
    return allowed;
  };
}

function omittedWarnings(omitted: Set<string>): OperationOutcomeIssue[] {
  return [...omitted].sort().map((type) =>
    toIssue({
      code: 'insufficient-scope',
      severity: 'warning',
      message: `Included ${type} resources are left out: the token's scopes do not allow ${type}`,
      expression: '_include',
    }),
  );
}

async function collectIncludes(
  store: StoreReader,
  matches: Resource[],
  parsed: ParsedSearch,
  allowed: (resourceType: string) => boolean,
): Promise<Resource[]> {
  if (parsed.include.length === 0 && parsed.revinclude.length === 0) {
    return [];
  }
  const seen = new Set(matches.map(key));
  const included: Resource[] = [];
  let frontier = matches;
  for (
    let round = 0;
    round < MAX_ITERATIONS && frontier.length > 0 && included.length < MAX_INCLUDED;
    round++
  ) {
    const found: Resource[] = [];
    const includes = round === 0 ? parsed.include : parsed.include.filter((i) => i.iterate);
    const revincludes = round === 0 ? parsed.revinclude : parsed.revinclude.filter((i) => i.iterate);
    for (const include of includes) {
      found.push(...(await forwardInclude(store, frontier, include, allowed)));
    }
    for (const revinclude of revincludes) {
      // Not even looked for when the type is not allowed: nothing of it is returned or iterated through.
      if (allowed(revinclude.sourceType)) found.push(...(await reverseInclude(store, frontier, revinclude)));
    }
    const fresh = found.filter((r) => !seen.has(key(r)) && allowed(r.resourceType));
    for (const r of fresh) {
      seen.add(key(r));
    }
    included.push(...fresh);
    frontier = fresh;
  }
  return included.slice(0, MAX_INCLUDED);
}

async function forwardInclude(
  store: StoreReader,
  sources: Resource[],
  include: IncludeRequest,
  allowed: (resourceType: string) => boolean,
): Promise<Resource[]> {
  const references = sources
    .filter((r) => r.resourceType === include.sourceType)
    .flatMap((r) => referencedTargets(r, include.code))
    .filter((t) => (!include.targetType || t.type === include.targetType) && allowed(t.type))
    .map((t) => `${t.type}/${t.id}`);
  return references.length > 0 ? store.readReferences(references) : [];
}

async function reverseInclude(
  store: StoreReader,
  targets: Resource[],
  include: IncludeRequest,
): Promise<Resource[]> {
  const found: Resource[] = [];
  // In slices of what one search parameter may list: a thousand targets in one reference filter
  // overran SQLite's expression depth (a 500); each slice is a search shape clients make too.
  for (let from = 0; from < targets.length && found.length < MAX_INCLUDED; from += MAX_VALUES_PER_PARAMETER) {
    const result = await store.search({
      resourceType: include.sourceType,
      filters: [
        {
          kind: 'reference',
          code: include.code,
          values: targets
            .slice(from, from + MAX_VALUES_PER_PARAMETER)
            .map((t) => ({ targetType: t.resourceType, targetId: t.id as string })),
        },
      ],
      sort: [],
      count: MAX_INCLUDED - found.length,
      offset: 0,
      total: false,
    });
    found.push(...result.resources);
  }
  return found;
}

function key(resource: Resource): string {
  return `${resource.resourceType}/${resource.id}`;
}
