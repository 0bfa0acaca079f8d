import type { Resource } from '@medplum/fhirtypes';
import { extractIndexRows, type SearchIndexRows } from '../../fhir/search/index-rows.js';
import type { StoreStats, StoredVersion, WriteRequest } from '../fhir-store.js';

/** The version a write replaces, as the dialect found it (locked) in the database. */
export interface CurrentVersion {
  versionId: number;
  lastUpdatedMs: number;
}

/** One version ready to store: its envelope, its exact JSON text and its search index rows. */
export interface NextVersion {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdatedMs: number;
  lastUpdated: string;
  deleted: boolean;
  /** Absent for a deletion marker. */
  resource?: Resource;
  /** The JSON the service answers with; null for a deletion marker. */
  content: string | null;
  /** Absent for a deletion marker, which nothing finds. */
  index?: SearchIndexRows;
}

/**
 * The dialect-independent half of `write`, one per store: the next versionId (previous + 1), a
 * lastUpdated that never goes backwards, `meta` stamped as R4 requires of the server
 * (http.html#update: the server sets meta.versionId and meta.lastUpdated), and the search index
 * rows, computed here, once per version, from exactly what is stored.
 */
export class Versioning {
  private lastMs = 0;
  private indexComputations = 0;

  /** Read-only counts for tests and diagnostics; a snapshot, so nobody outside can change them. */
  get stats(): StoreStats {
    return { indexComputations: this.indexComputations };
  }

  next(request: WriteRequest, current: CurrentVersion | undefined): NextVersion {
    const { resourceType, id } = request;
    const versionId = (current?.versionId ?? 0) + 1;
    // lastUpdated never goes backwards for a resource (nor within this store), even if the clock
    // does, so `_since` polling loses nothing.
    const lastUpdatedMs = Math.max(Date.now(), this.lastMs, current?.lastUpdatedMs ?? 0);
    this.lastMs = lastUpdatedMs;
    const lastUpdated = new Date(lastUpdatedMs).toISOString();
    const envelope = { resourceType, id, versionId, lastUpdatedMs, lastUpdated };
    if (request.deleted === true) {
      return { ...envelope, deleted: true, content: null };
    }
    if (!request.resource) {
      throw new Error('write without a resource');
    }
    // resourceType, id and meta lead, as FHIR JSON is conventionally written.
    const resource = {
      resourceType: request.resource.resourceType,
      id,
      meta: { ...request.resource.meta, versionId: String(versionId), lastUpdated },
      ...withoutIdentity(request.resource),
    } as Resource;
    this.indexComputations++;
    const index = extractIndexRows(resource);
    return { ...envelope, deleted: false, resource, content: JSON.stringify(resource), index };
  }
}

/**
 * The columns both tables of versions (`resource_version`, `resource`) share, in this order:
 * resource_type, id, version_id, last_updated, last_updated_ms, deleted (0/1), content.
 */
export function versionValues(version: NextVersion): unknown[] {
  const { resourceType, id, versionId, lastUpdated, lastUpdatedMs, deleted, content } = version;
  return [resourceType, id, versionId, lastUpdated, lastUpdatedMs, deleted ? 1 : 0, content];
}

/** What `write` answers for a version it stored. */
export function writtenVersion(version: NextVersion): StoredVersion {
  const { resourceType, id, lastUpdated, deleted, resource } = version;
  return { resourceType, id, versionId: String(version.versionId), lastUpdated, deleted, resource };
}

function withoutIdentity(resource: Resource): Partial<Resource> {
  const { resourceType: _t, id: _i, meta: _m, ...rest } = resource;
  return rest;
}
