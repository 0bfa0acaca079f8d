import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { FhirStore, StoreReader, StoredVersion } from '../store/fhir-store.js';
import { assertResourceType, assertValidId } from './resource-identity.js';
import { weakEtag, type RestResult } from './rest-result.js';

/** read and vread (https://hl7.org/fhir/R4/http.html#read). */
export async function readResource(
  store: StoreReader,
  resourceType: string,
  id: string,
): Promise<RestResult> {
  assertResourceType(resourceType);
  assertValidId(id, 'id');
  const version = await store.read(resourceType, id);
  if (!version) {
    throw fhirError('resource-not-found', `${resourceType}/${id} does not exist`);
  }
  if (version.deleted) {
    throw fhirError('resource-deleted', `${resourceType}/${id} was deleted (version ${version.versionId})`);
  }
  return { status: 200, resource: version.resource, version };
}

export async function vreadResource(
  store: StoreReader,
  resourceType: string,
  id: string,
  versionId: string,
): Promise<RestResult> {
  assertResourceType(resourceType);
  assertValidId(id, 'id');
  if (!/^\d{1,15}$/.test(versionId)) {
    throw fhirError(
      'invalid-version-id',
      `'${versionId.slice(0, 64)}' is not a version id of this server`,
      'vid',
    );
  }
  const version = await store.vread(resourceType, id, versionId);
  if (!version) {
    throw fhirError('version-not-found', `${resourceType}/${id} has no version ${versionId}`);
  }
  if (version.deleted) {
    throw fhirError('resource-deleted', `Version ${versionId} of ${resourceType}/${id} is a deletion`);
  }
  return { status: 200, resource: version.resource, version };
}

export interface HistoryParams {
  resourceType?: string;
  id?: string;
  params: [string, string][];
  baseUrl: string;
  selfUrl: string;
}

/** Instance, type and system history (https://hl7.org/fhir/R4/http.html#history), newest first. */
export async function readHistory(store: FhirStore, request: HistoryParams): Promise<Bundle> {
  if (request.resourceType) {
    assertResourceType(request.resourceType);
  }
  if (request.id) {
    assertValidId(request.id, 'id');
    const current = await store.read(request.resourceType as string, request.id);
    if (!current) {
      throw fhirError('resource-not-found', `${request.resourceType}/${request.id} does not exist`);
    }
  }
  let count = 50;
  let offset = 0;
  let since: string | undefined;
  let at: string | undefined;
  for (const [name, value] of request.params) {
    if (name === '_count' || name === '_offset') {
      if (!/^\d{1,9}$/.test(value)) {
        throw fhirError('invalid-search-parameter', `${name} must be a non-negative integer`, name);
      }
      if (name === '_count') count = Math.min(Number(value), 1000);
      else offset = Number(value);
    } else if (name === '_since' || name === '_at') {
      if (
        !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
        Number.isNaN(Date.parse(value))
      ) {
        throw fhirError('invalid-search-parameter', `${name} must be an instant with a timezone`, name);
      }
      if (name === '_since') since = value;
      else at = value;
    } else if (name !== '_format' && name !== '_pretty') {
      throw fhirError('invalid-search-parameter', `History does not support the parameter '${name}'`, name);
    }
  }
  const page = await store.history({
    resourceType: request.resourceType,
    id: request.id,
    since,
    at,
    count,
    offset,
  });
  const link = pageLinks(request.selfUrl, request.params, offset, count, page.total);
  return {
    resourceType: 'Bundle',
    type: 'history',
    total: page.total,
    link,
    entry: page.versions.map((v) => historyEntry(request.baseUrl, v)),
  };
}

function historyEntry(baseUrl: string, v: StoredVersion): BundleEntry {
  const url = `${v.resourceType}/${v.id}`;
  const method = v.deleted ? 'DELETE' : v.versionId === '1' ? 'POST' : 'PUT';
  return {
    fullUrl: `${baseUrl}/${url}`,
    ...(v.resource ? { resource: v.resource as Resource } : {}),
    request: { method, url: method === 'POST' ? v.resourceType : url },
    response: {
      status: v.deleted ? '204' : v.versionId === '1' ? '201' : '200',
      etag: weakEtag(v.versionId),
      lastModified: v.lastUpdated,
    },
  };
}

/** self/first/previous/next links for offset paging; other parameters are carried over unchanged. */
export function pageLinks(
  selfUrl: string,
  params: [string, string][],
  offset: number,
  count: number,
  total: number | undefined,
  hasMore?: boolean,
): Bundle['link'] {
  const withOffset = (o: number): string => {
    const kept = params.filter(([k]) => k !== '_offset' && k !== '_count');
    const q = new URLSearchParams([...kept, ['_count', String(count)], ['_offset', String(o)]]);
    return `${selfUrl}?${q.toString()}`;
  };
  const self = params.length ? `${selfUrl}?${new URLSearchParams(params).toString()}` : selfUrl;
  const links: NonNullable<Bundle['link']> = [{ relation: 'self', url: self }];
  if (count > 0) {
    links.push({ relation: 'first', url: withOffset(0) });
    if (offset > 0) {
      links.push({ relation: 'previous', url: withOffset(Math.max(0, offset - count)) });
    }
    const more = total !== undefined ? offset + count < total : hasMore === true;
    if (more) {
      links.push({ relation: 'next', url: withOffset(offset + count) });
    }
  }
  return links;
}
