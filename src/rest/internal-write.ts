import type { Resource } from '@medplum/fhirtypes';
import { parseSearch } from '../fhir/search/parse-search.js';
import type { StoredVersion } from '../store/fhir-store.js';
import { newId } from './resource-identity.js';
import type { UnitOfWork } from './unit-of-work.js';

/**
 * A write the server makes on its own behalf (an EpisodeOfCare for a new referral, a Task status
 * change, a progress Communication), through the same unit of work as a client's: the modules'
 * handlers run for it too. `built: true` marks a resource made by one of the service's own pure
 * mappers from already-validated input (toEpisodeOfCare, toReferralTask,
 * composeProgressCommunication): tests prove those mappers produce valid resources, so it is not
 * validated again (it was a third of an intake's CPU); anything else the server writes is.
 */
export async function storeResource<T extends Resource>(
  uow: UnitOfWork,
  resource: T,
  options: { built?: boolean } = {},
): Promise<StoredVersion> {
  const id = resource.id ?? newId();
  const { versionId: _v, lastUpdated: _l, ...meta } = resource.meta ?? {};
  const clean = { ...resource, id, ...(resource.meta ? { meta } : {}) } as Resource;
  if (clean.meta && Object.keys(clean.meta).length === 0) delete clean.meta;
  return uow.write({
    resourceType: resource.resourceType,
    id,
    resource: clean,
    origin: 'server',
    validated: options.built,
  });
}

/** Current resources matching a search, inside the transaction, through the server's view. */
export async function findAll<T extends Resource>(
  uow: UnitOfWork,
  resourceType: T['resourceType'],
  criteria: string,
  max = 100,
): Promise<T[]> {
  const parsed = parseSearch(resourceType, [...new URLSearchParams(criteria)], { strict: true });
  const result = await uow.system.search({ ...parsed.query, count: max, offset: 0, total: false });
  return result.resources as T[];
}
