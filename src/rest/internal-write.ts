import type { Resource } from '@medplum/fhirtypes';
import { parseSearch } from '../fhir/search/parse-search.js';
import type { StoredVersion } from '../store/fhir-store.js';
import { prepareResource } from './prepare-resource.js';
import { newId } from './resource-identity.js';
import type { WriteContext } from './write-context.js';

/**
 * Writes (and reads) that a hook makes on the server's own behalf, through the unrestricted view
 * (an EpisodeOfCare for a new referral, a Task status change). They are validated like any write
 * but do not run the hooks again. `built: true` marks a resource made by one of the service's own
 * pure mappers from already-validated input (toEpisodeOfCare, toReferralTask,
 * composeProgressCommunication): tests prove those mappers produce valid resources, so the write
 * path skips validating each one again (it was a third of an intake's CPU).
 */
export async function storeResource<T extends Resource>(
  ctx: WriteContext,
  resource: T,
  options: { built?: boolean } = {},
): Promise<StoredVersion> {
  const id = resource.id ?? newId();
  const prepared = prepareResource(ctx.services.validator, resource, resource.resourceType, id, '', {
    skipValidation: options.built,
  });
  return ctx.system.write({
    resourceType: resource.resourceType,
    id,
    resource: prepared.resource,
    index: prepared.index,
  });
}

/** Current resources matching a search, inside the transaction. */
export async function findAll<T extends Resource>(
  ctx: WriteContext,
  resourceType: T['resourceType'],
  criteria: string,
  max = 100,
): Promise<T[]> {
  const parsed = parseSearch(resourceType, [...new URLSearchParams(criteria)], { strict: true });
  const result = await ctx.system.search({ ...parsed.query, count: max, offset: 0, total: false });
  return result.resources as T[];
}
