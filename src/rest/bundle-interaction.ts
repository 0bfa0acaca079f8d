import type { Bundle, BundleEntry, BundleEntryResponse, Resource } from '@medplum/fhirtypes';
import { FhirError, fhirError, type IssueInput } from '../fhir/errors.js';
import type { AuthContext } from '../access/client-identity.js';
import { toFhirError } from '../validation/resource-validator.js';
import { eventLoopPace } from './event-loop-pace.js';
import { findConditionalMatches } from './conditional.js';
import { parseEntryUrl, type EntryUrl } from './entry-url.js';
import { classify, splitEntryUrl, type Interaction } from './interaction.js';
import { readResource, vreadResource } from './read-interactions.js';
import { assertResourceType, newId } from './resource-identity.js';
import { versionLocation, weakEtag, type RestResult } from './rest-result.js';
import { searchResources } from './search-interaction.js';
import {
  conditionalDelete,
  conditionalUpdate,
  createResource,
  deleteResource,
  updateResource,
} from './write-interactions.js';
import { runUnitOfWork, type RestServices, type UnitOfWork, type WriteTarget } from './unit-of-work.js';

type WriteContext = UnitOfWork;

/**
 * Batch and transaction Bundles at `POST [base]` (https://hl7.org/fhir/R4/http.html#transaction).
 * A transaction runs in one store transaction: every entry succeeds or nothing is written.
 */
export interface BundleRequest {
  baseUrl: string;
  /** `Prefer: return=minimal` leaves resources out of the response entries. */
  returnMinimal: boolean;
  auth?: AuthContext;
  /** The caller validated every resource already (`$process-message` validates the message). */
  validated?: boolean;
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface PlannedEntry {
  index: number;
  method: Method;
  url: EntryUrl;
  fullUrl?: string;
  resource?: Resource;
  ifNoneExist?: string;
  ifMatch?: string;
  /** The id a POST or conditional PUT will write, fixed before references are rewritten. */
  targetId?: string;
  /** Set when If-None-Exist found the resource already there. */
  existing?: RestResult;
  /** Recognised as a re-send by a hook's identity criteria (not the client's ifNoneExist). */
  resent?: boolean;
}

/** The interactions a batch or transaction entry may carry (no nested Bundles or operations). */
const ENTRY_KINDS = new Set<Interaction['kind']>([
  'read',
  'vread',
  'update',
  'conditional-update',
  'delete',
  'conditional-delete',
  'create',
  'search-type',
  'history-instance',
  'history-type',
]);

/** Processing order mandated for transactions: DELETE, POST, PUT/PATCH, then GET/HEAD. */
const ORDER: Record<Method, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

export async function processBundle(
  store: WriteTarget,
  services: RestServices,
  body: unknown,
  request: BundleRequest,
): Promise<Bundle> {
  const bundle = assertBundle(body);
  const entries = planEntries(bundle, request.baseUrl);
  if (bundle.type === 'transaction') {
    // One validation stage for the whole transaction, so the client hears of every problem at once.
    // Sliced with yields for a large Bundle: validating thousands of entries takes seconds of CPU.
    const result = request.validated ? undefined : await services.validator.validateYielding(bundle);
    if (result?.failure) {
      throw toFhirError(result, result.failure);
    }
    return processTransaction(store, services, entries, request);
  }
  // Batch entries stand alone: each is validated, and may fail, by itself.
  return processBatch(store, services, entries, request);
}

function assertBundle(body: unknown): Bundle {
  if (typeof body !== 'object' || body === null || (body as Resource).resourceType !== 'Bundle') {
    throw fhirError('resource-type-mismatch', 'POST to the base URL takes a Bundle', 'resourceType');
  }
  const bundle = body as Bundle;
  if (bundle.type !== 'transaction' && bundle.type !== 'batch') {
    throw fhirError(
      'invalid-bundle',
      `Bundle.type must be transaction or batch, not '${String(bundle.type)}'`,
      'Bundle.type',
    );
  }
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) {
    throw fhirError('invalid-bundle', 'Bundle.entry must be an array', 'Bundle.entry');
  }
  return bundle;
}

function planEntries(bundle: Bundle, baseUrl: string): PlannedEntry[] {
  const problems: IssueInput[] = [];
  const planned: PlannedEntry[] = [];
  (bundle.entry ?? []).forEach((entry: BundleEntry, index) => {
    const where = `Bundle.entry[${index}]`;
    const method = entry?.request?.method as Method | undefined;
    const url = entry?.request?.url;
    if (!method || !(method in ORDER) || typeof url !== 'string' || url === '') {
      problems.push({
        code: 'invalid-bundle',
        message: 'Each entry needs request.method and request.url',
        expression: `${where}.request`,
      });
      return;
    }
    try {
      for (const [name, value] of [
        ['request.ifNoneExist', entry.request?.ifNoneExist],
        ['request.ifMatch', entry.request?.ifMatch],
        ['fullUrl', entry.fullUrl],
      ] as const) {
        if (value !== undefined && typeof value !== 'string') {
          throw fhirError('invalid-bundle', `${name} must be a string`, `${where}.${name}`);
        }
      }
      const parsedUrl = parseEntryUrl(url, baseUrl, `${where}.request.url`);
      // The entry is classified exactly as the scope check classified it (auth/required-permissions.ts):
      // what that parse names no interaction, or names another one, is not run here either.
      const { path, query } = splitEntryUrl(url, baseUrl);
      let interaction: Interaction;
      try {
        interaction = classify(method === 'PATCH' ? 'PUT' : method, path, query);
      } catch (err) {
        // Unknown types answer 404 as they would at top level; other URLs name no entry we run.
        if (!(err instanceof FhirError) || err.code === 'unknown-resource-type') {
          throw err instanceof FhirError ? prefixError(err, `${where}.request.url`) : err;
        }
        throw fhirError(
          'invalid-bundle',
          `'${url.slice(0, 200)}' is not a request URL this server understands`,
          `${where}.request.url`,
        );
      }
      if (!ENTRY_KINDS.has(interaction.kind)) {
        throw fhirError(
          'invalid-bundle',
          `A Bundle entry cannot be a ${interaction.kind} interaction`,
          `${where}.request.url`,
        );
      }
      if ((method === 'POST' || method === 'PUT') && !entry.resource) {
        throw fhirError('invalid-bundle', `A ${method} entry needs a resource`, `${where}.resource`);
      }
      // Unknown types answer as they would outside a Bundle (404), before validation says anything.
      assertResourceType(parsedUrl.resourceType, `${where}.request.url`);
      const bodyType = (entry.resource as { resourceType?: unknown } | undefined)?.resourceType;
      if (typeof bodyType === 'string') {
        assertResourceType(bodyType, `${where}.resource.resourceType`);
      }
      planned.push({
        index,
        method,
        url: parsedUrl,
        fullUrl: entry.fullUrl,
        resource: entry.resource,
        ifNoneExist: entry.request?.ifNoneExist,
        ifMatch: entry.request?.ifMatch,
      });
    } catch (err) {
      if (err instanceof FhirError) {
        problems.push(...issueInputs(err));
      } else {
        throw err;
      }
    }
  });
  if (problems.length > 0) {
    throw new FhirError(problems[0] as IssueInput, problems.slice(1));
  }
  return planned;
}

async function processTransaction(
  store: WriteTarget,
  services: RestServices,
  entries: PlannedEntry[],
  request: BundleRequest,
): Promise<Bundle> {
  assertNoDuplicateIdentities(entries);
  const planned = entries;
  const results = await runUnitOfWork(
    store,
    services,
    async (ctx) => {
      // A store may run this work again (PostgreSQL retries serialisation failures), so it plans on
      // a fresh copy each time: ids and rewritten references from a rolled-back try must not leak.
      entries = structuredClone(planned);
      const out = new Map<number, RestResult>();
      const pace = eventLoopPace();
      const run = async (entry: PlannedEntry): Promise<void> => {
        await pace();
        try {
          out.set(entry.index, await executeEntry(ctx, entry, request, true));
        } catch (err) {
          throw prefixError(err, `Bundle.entry[${entry.index}]`);
        }
      };
      const ordered = [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
      // DELETEs run first, before conditional creates/updates are resolved, so those cannot match
      // a resource this transaction deletes.
      for (const entry of ordered.filter((e) => e.method === 'DELETE')) {
        await run(entry);
      }
      const referenceMap = await resolveIdentities(ctx, entries);
      assertNoResolvedOverlap(entries, out);
      reuseResentReferralContext(entries, referenceMap);
      for (const entry of entries) {
        if (entry.resource) {
          entry.resource = rewriteReferences(
            entry.resource,
            referenceMap,
            `Bundle.entry[${entry.index}].resource`,
          );
        }
      }
      for (const entry of ordered.filter((e) => e.method !== 'DELETE')) {
        await run(entry);
      }
      return out;
    },
    request.auth,
  );
  return {
    resourceType: 'Bundle',
    type: 'transaction-response',
    // R4 JSON has no empty arrays: an empty transaction answers without `entry`.
    ...(entries.length > 0
      ? { entry: entries.map((entry) => responseEntry(results.get(entry.index) as RestResult, request)) }
      : {}),
  };
}

async function processBatch(
  store: WriteTarget,
  services: RestServices,
  entries: PlannedEntry[],
  request: BundleRequest,
): Promise<Bundle> {
  const responses: BundleEntry[] = [];
  const pace = eventLoopPace();
  for (const entry of entries) {
    await pace();
    try {
      const original = structuredClone(entry);
      const result = await runUnitOfWork(
        store,
        services,
        async (ctx) => {
          Object.assign(entry, structuredClone(original)); // fresh on every try (see processTransaction)
          await resolveIdentities(ctx, [entry]);
          if (entry.resource) {
            entry.resource = rewriteReferences(
              entry.resource,
              new Map(),
              `Bundle.entry[${entry.index}].resource`,
            );
          }
          return executeEntry(ctx, entry, request, false);
        },
        request.auth,
      );
      responses.push(responseEntry(result, request));
    } catch (err) {
      if (!(err instanceof FhirError)) {
        throw err;
      }
      const prefixed = prefixError(err, `Bundle.entry[${entry.index}]`) as FhirError;
      responses.push({ response: { status: String(prefixed.status), outcome: prefixed.outcome } });
    }
  }
  return { resourceType: 'Bundle', type: 'batch-response', entry: responses };
}

/** Two entries may not create, update or delete the same resource, nor share a fullUrl. */
function assertNoDuplicateIdentities(entries: PlannedEntry[]): void {
  const fullUrls = new Map<string, number>();
  const targets = new Map<string, number>();
  for (const entry of entries) {
    if (entry.fullUrl) {
      const first = fullUrls.get(entry.fullUrl);
      if (first !== undefined) {
        throw fhirError(
          'duplicate-bundle-entry',
          `Entries ${first} and ${entry.index} share fullUrl ${entry.fullUrl}`,
          `Bundle.entry[${entry.index}].fullUrl`,
        );
      }
      fullUrls.set(entry.fullUrl, entry.index);
    }
    if ((entry.method === 'PUT' || entry.method === 'DELETE' || entry.method === 'PATCH') && entry.url) {
      const target = entry.url.id
        ? `${entry.url.resourceType}/${entry.url.id}`
        : `${entry.url.resourceType}?${entry.url.query ?? ''}`;
      const first = targets.get(target);
      if (first !== undefined) {
        throw fhirError(
          'duplicate-bundle-entry',
          `Entries ${first} and ${entry.index} both change ${target}`,
          `Bundle.entry[${entry.index}].request.url`,
        );
      }
      targets.set(target, entry.index);
    }
  }
}

/**
 * Once conditional updates and deletes are resolved, no two entries may change the same resource:
 * "If any resource identities (including resolved identities from conditional update/delete)
 * overlap in steps 1-3, then the transaction SHALL fail" (https://hl7.org/fhir/R4/http.html#trules).
 */
function assertNoResolvedOverlap(entries: PlannedEntry[], deletes: Map<number, RestResult>): void {
  const seen = new Map<string, number>();
  for (const entry of entries) {
    const id =
      entry.method === 'PUT'
        ? entry.targetId
        : entry.method === 'DELETE'
          ? (entry.url.id ?? deletes.get(entry.index)?.version?.id)
          : undefined;
    if (!id) {
      continue;
    }
    const target = `${entry.url.resourceType}/${id}`;
    const first = seen.get(target);
    if (first !== undefined) {
      throw fhirError(
        'duplicate-bundle-entry',
        `Entries ${first} and ${entry.index} both change ${target}`,
        `Bundle.entry[${entry.index}].request.url`,
      );
    }
    seen.set(target, entry.index);
  }
}

/**
 * Decides the id behind every entry that creates or updates, before anything is written, so
 * references to `fullUrl`s (often `urn:uuid:`) can be rewritten to `Type/id`.
 */
async function resolveIdentities(ctx: WriteContext, entries: PlannedEntry[]): Promise<Map<string, string>> {
  const { tx } = ctx;
  const map = new Map<string, string>();
  const pace = eventLoopPace();
  for (const entry of entries) {
    // Conditional creates and updates search: thousands of them are seconds of work.
    await pace();
    const type = entry.url.resourceType;
    const where = `Bundle.entry[${entry.index}]`;
    if (entry.method === 'POST') {
      assertResourceType(type);
      const criteria =
        entry.ifNoneExist ??
        (entry.resource ? ctx.services.handlers.identityCriteria(entry.resource) : undefined);
      if (criteria) {
        const matches = await findConditionalMatches(tx, type, criteria, `${where}.request.ifNoneExist`);
        if (matches.length > 1) {
          throw fhirError(
            'multiple-matches',
            `ifNoneExist matched ${matches.length} or more ${type} resources`,
            `${where}.request.ifNoneExist`,
          );
        }
        const match = matches[0];
        if (match?.id) {
          entry.targetId = match.id;
          entry.existing = { status: 200, resource: match, version: await tx.read(type, match.id) };
          entry.resent = entry.ifNoneExist === undefined;
        }
      }
      entry.targetId ??= newId();
    } else if (entry.method === 'PUT') {
      if (entry.url.id) {
        entry.targetId = entry.url.id;
      } else if (entry.url.query !== undefined) {
        assertResourceType(type);
        const matches = await findConditionalMatches(tx, type, entry.url.query, `${where}.request.url`);
        if (matches.length > 1) {
          throw fhirError(
            'multiple-matches',
            `Conditional update matched ${matches.length} or more ${type} resources`,
            `${where}.request.url`,
          );
        }
        entry.targetId =
          matches[0]?.id ?? (typeof entry.resource?.id === 'string' ? entry.resource.id : newId());
      }
    }
    if (entry.fullUrl && entry.targetId) {
      map.set(entry.fullUrl, `${type}/${entry.targetId}`);
    }
  }
  return map;
}

async function executeEntry(
  ctx: WriteContext,
  entry: PlannedEntry,
  request: BundleRequest,
  validated: boolean,
): Promise<RestResult> {
  const { baseUrl } = request;
  const { url } = entry;
  const { tx } = ctx;
  const expression = `Bundle.entry[${entry.index}].resource`;
  switch (entry.method) {
    case 'POST':
      if (url.id || url.query !== undefined) {
        throw fhirError(
          'invalid-bundle',
          'A POST entry URL is the resource type alone',
          `Bundle.entry[${entry.index}].request.url`,
        );
      }
      return (
        entry.existing ??
        createResource(ctx, url.resourceType, entry.resource, {
          id: entry.targetId,
          expression,
          validated,
          identityResolved: true,
        })
      );
    case 'PUT':
      if (url.id) {
        return updateResource(ctx, url.resourceType, url.id, entry.resource, {
          ifMatch: entry.ifMatch,
          expression,
          validated,
        });
      }
      if (url.query !== undefined) {
        return conditionalUpdate(
          ctx,
          url.resourceType,
          url.query,
          { ...entry.resource, id: entry.targetId },
          { ifMatch: entry.ifMatch, expression, validated },
        );
      }
      throw fhirError(
        'invalid-bundle',
        'A PUT entry URL needs an id or search criteria',
        `Bundle.entry[${entry.index}].request.url`,
      );
    case 'DELETE':
      if (url.id) {
        return deleteResource(ctx, url.resourceType, url.id);
      }
      if (url.query !== undefined) {
        return conditionalDelete(ctx, url.resourceType, url.query);
      }
      throw fhirError(
        'invalid-bundle',
        'A DELETE entry URL needs an id or search criteria',
        `Bundle.entry[${entry.index}].request.url`,
      );
    case 'GET':
    case 'HEAD':
      if (url.id && url.versionId) {
        return vreadResource(tx, url.resourceType, url.id, url.versionId);
      }
      if (url.id) {
        return readResource(tx, url.resourceType, url.id);
      }
      return {
        status: 200,
        resource: await searchResources(tx, {
          resourceType: url.resourceType,
          params: [...new URLSearchParams(url.query ?? '')],
          baseUrl,
          selfUrl: `${baseUrl}/${url.resourceType}`,
          strict: false,
          // Includes obey the token's scopes in an entry as at the top level.
          scopes: request.auth?.scopes,
        }),
      };
    case 'PATCH':
      throw fhirError(
        'method-not-allowed',
        'PATCH is not supported',
        `Bundle.entry[${entry.index}].request.method`,
      );
  }
}

/**
 * Replaces every `reference` that names another entry's fullUrl with that entry's `Type/id`.
 * A `urn:uuid:`/`urn:oid:` reference that names no entry cannot be resolved and is an error
 * (https://hl7.org/fhir/R4/bundle.html#references).
 */
function rewriteReferences(resource: Resource, map: Map<string, string>, expression: string): Resource {
  const visit = (value: unknown, path: string): unknown => {
    if (Array.isArray(value)) {
      return value.map((v, i) => visit(v, `${path}[${i}]`));
    }
    if (typeof value !== 'object' || value === null) {
      return value;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') {
        const target = map.get(v);
        if (target) {
          out[k] = target;
          continue;
        }
        if (/^urn:(uuid|oid):/.test(v)) {
          throw fhirError(
            'unresolved-reference',
            `Reference '${v}' names no entry of this Bundle`,
            `${path}.reference`,
          );
        }
      }
      out[k] = visit(v, `${path}.${k}`);
    }
    return out;
  };
  return visit(resource, expression) as Resource;
}

function responseEntry(result: RestResult, request: BundleRequest): BundleEntry {
  const response: BundleEntryResponse = { status: statusText(result.status) };
  const v = result.version;
  if (v) {
    if (result.written && result.status === 201) {
      response.location = versionLocation(request.baseUrl, v).slice(request.baseUrl.length + 1);
    }
    response.etag = weakEtag(v.versionId);
    response.lastModified = v.lastUpdated;
  }
  const entry: BundleEntry = { response };
  if (v && !v.deleted) {
    entry.fullUrl = `${request.baseUrl}/${v.resourceType}/${v.id}`;
  }
  if (result.resource && !request.returnMinimal) {
    entry.resource = result.resource;
  }
  return entry;
}

const STATUS_TEXT: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content' };

function statusText(status: number): string {
  return STATUS_TEXT[status] ? `${status} ${STATUS_TEXT[status]}` : String(status);
}

function issueInputs(err: FhirError): IssueInput[] {
  return (err.outcome.issue ?? []).map((issue) => ({
    code: (issue.details?.coding?.[0]?.code ?? 'invalid-bundle') as IssueInput['code'],
    message: issue.details?.text ?? err.message,
    expression: issue.expression?.[0],
    issueCode: issue.code,
    severity: issue.severity,
  }));
}

/** Errors from inside an entry name the entry, so the client knows which one failed. */
function prefixError(err: unknown, prefix: string): unknown {
  if (!(err instanceof FhirError)) {
    return err;
  }
  const inputs = issueInputs(err).map((input) => ({
    ...input,
    expression:
      input.expression === undefined
        ? prefix
        : input.expression.startsWith('Bundle.')
          ? input.expression
          : `${prefix}.${input.expression}`,
  }));
  const rebuilt = new FhirError(inputs[0] as IssueInput, inputs.slice(1));
  return rebuilt.status === err.status ? rebuilt : err;
}

/**
 * A re-sent referral Bundle (its ServiceRequest recognised by identifier) must not store its
 * supporting resources again. Entries the new ServiceRequest references are paired, by their place
 * in the ServiceRequest, with what the stored referral references there, and reuse it.
 */
function reuseResentReferralContext(entries: PlannedEntry[], referenceMap: Map<string, string>): void {
  for (const referral of entries.filter((e) => e.resent && e.resource && e.existing?.resource)) {
    const pairs = new Map<string, string>();
    pairReferences(referral.resource, referral.existing?.resource, pairs);
    for (const entry of entries) {
      const existing = entry.fullUrl ? pairs.get(entry.fullUrl) : undefined;
      if (entry.method !== 'POST' || entry.existing || !existing) continue;
      const [type, id] = existing.split('/');
      if (type !== entry.url.resourceType || !id) continue;
      entry.targetId = id;
      entry.existing = { status: 200 };
      referenceMap.set(entry.fullUrl as string, existing);
    }
  }
}

function pairReferences(fresh: unknown, stored: unknown, out: Map<string, string>): void {
  if (Array.isArray(fresh) && Array.isArray(stored)) {
    fresh.forEach((f, i) => pairReferences(f, stored[i], out));
  } else if (typeof fresh === 'object' && fresh !== null && typeof stored === 'object' && stored !== null) {
    for (const [k, v] of Object.entries(fresh)) {
      const s = (stored as Record<string, unknown>)[k];
      if (k === 'reference' && typeof v === 'string' && typeof s === 'string') out.set(v, s);
      else pairReferences(v, s, out);
    }
  }
}
