import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { StoredVersion } from '../store/fhir-store.js';

/**
 * What an interaction produced, independent of HTTP framing: the route layer turns it into
 * status, headers (ETag, Last-Modified, Location) and a body chosen by `Prefer: return=`.
 */
export interface RestResult {
  status: number;
  resource?: Resource;
  /** The stored version behind `resource`, for ETag / Last-Modified / Location. */
  version?: StoredVersion;
  outcome?: OperationOutcome;
  /** True when `version` is a new version this interaction wrote (create/update/delete). */
  written?: boolean;
}

export function versionLocation(baseUrl: string, version: StoredVersion): string {
  return `${baseUrl}/${version.resourceType}/${version.id}/_history/${version.versionId}`;
}

export function weakEtag(versionId: string): string {
  return `W/"${versionId}"`;
}
