import type { Subscription } from '@medplum/fhirtypes';
import type { ServerWriter } from '../rest/unit-of-work.js';
import { REFERRAL_PROGRESS_TOPIC } from './subscription-settings.js';

const PAGE = 200;

/**
 * Subscriptions stored before the recipient index existed carry no index tags, so the announce
 * (subscription-index.ts) would not find them. At start-up each one is written again by the
 * server, which runs the lifecycle handler and tags it; the announce then needs one lookup per
 * Communication, not a second one for untagged Subscriptions. Idempotent: a tagged Subscription is
 * never rewritten. One whose criteria this server can no longer read unambiguously is left as it
 * is: the announce skips it, as it always did.
 *
 * Returns how many were tagged.
 */
export async function tagLegacySubscriptions(writer: ServerWriter): Promise<number> {
  const untagged = await writer((uow) =>
    uow.system.search({
      resourceType: 'Subscription',
      filters: [
        { kind: 'string', code: 'criteria', match: 'exact', values: [REFERRAL_PROGRESS_TOPIC] },
        { kind: 'missing', code: '_tag', table: 'token', missing: true },
      ],
      sort: [],
      count: PAGE,
      offset: 0,
      total: false,
    }),
  );
  let tagged = 0;
  for (const found of untagged.resources as Subscription[]) {
    try {
      await writer((uow) =>
        uow.write({
          resourceType: 'Subscription',
          id: found.id as string,
          resource: found,
          origin: 'server',
        }),
      );
      tagged++;
    } catch {
      // Ambiguous criteria (refused since): never announced; nothing to tag.
    }
  }
  // A page at a time keeps memory flat; the next call sees only what is still untagged.
  return untagged.resources.length === PAGE && tagged > 0
    ? tagged + (await tagLegacySubscriptions(writer))
    : tagged;
}
