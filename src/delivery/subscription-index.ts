import type { Coding, Communication, Resource, Subscription } from '@medplum/fhirtypes';
import { parseLocalReference } from '../fhir/search/index-rows.js';
import type { SearchFilter } from '../fhir/search/search-query.js';
import type { UnitOfWork } from '../rest/unit-of-work.js';
import { REFERRAL_PROGRESS_TOPIC, type SubscriptionSettings } from './subscription-settings.js';

/**
 * Which Subscriptions a new Communication may match is looked up through the store's own index,
 * not by reading every Subscription (which, capped, starved the ones created last). Each topic
 * Subscription carries server-managed tags (`meta.tag`, searchable as `_tag`,
 * https://hl7.org/fhir/R4/resource.html#Meta): the recipients its filter requires one of (or
 * `any`), and the client that created it (for the per-client limit). A client never sets these:
 * the ones it sends are replaced on every write.
 */
export const RECIPIENT_TAG_SYSTEM = 'https://ptreferral.dev/fhir/CodeSystem/subscription-recipient';
export const OWNER_TAG_SYSTEM = 'https://ptreferral.dev/fhir/CodeSystem/subscription-owner';
const ANY_RECIPIENT = 'any';
const PAGE = 500;

const isIndexTag = (c: Coding): boolean => c.system === RECIPIENT_TAG_SYSTEM || c.system === OWNER_TAG_SYSTEM;

/** The tags of `subscription` recomputed from its settings; the owner kept from `previous`, else `owner`. */
export function withIndexTags(
  subscription: Subscription,
  settings: SubscriptionSettings | undefined,
  previous: Resource | undefined,
  owner: string | undefined,
): Subscription {
  const kept = (subscription.meta?.tag ?? []).filter((c) => !isIndexTag(c));
  const previousOwner = (previous?.meta?.tag ?? []).find((c) => c.system === OWNER_TAG_SYSTEM)?.code;
  const ownerCode = previous ? previousOwner : owner;
  const tags: Coding[] = [
    ...kept,
    ...(settings
      ? (settings.recipientKeys ?? [ANY_RECIPIENT]).map((code) => ({ system: RECIPIENT_TAG_SYSTEM, code }))
      : []),
    ...(ownerCode ? [{ system: OWNER_TAG_SYSTEM, code: ownerCode }] : []),
  ];
  const { tag: _old, ...meta } = subscription.meta ?? {};
  const nextMeta = tags.length > 0 ? { ...meta, tag: tags } : meta;
  const { meta: _m, ...rest } = subscription;
  return (Object.keys(nextMeta).length > 0 ? { ...rest, meta: nextMeta } : rest) as Subscription;
}

/**
 * The keys a Communication's recipients answer to: each literal reference and each `Type/id`,
 * read as the search index reads `Communication.recipient` (fhir/search/index-rows.ts), without
 * computing the whole index of the resource again.
 */
function recipientKeys(resource: Resource): string[] {
  const keys = new Set<string>([ANY_RECIPIENT]);
  for (const recipient of (resource as Communication).recipient ?? []) {
    const literal = recipient.reference;
    if (typeof literal !== 'string' || literal.startsWith('#')) continue;
    keys.add(literal);
    const local = parseLocalReference(literal);
    if (local) keys.add(`${local.type}/${local.id}`);
  }
  return [...keys];
}

const ACTIVE_TOPIC: SearchFilter[] = [
  { kind: 'token', code: 'status', not: false, values: [{ value: 'active' }] },
  { kind: 'string', code: 'criteria', match: 'exact', values: [REFERRAL_PROGRESS_TOPIC] },
];
/** Keys per query: a Communication to very many recipients is looked up in slices. */
const KEYS_PER_QUERY = 50;

/** Every active topic Subscription whose filter may match `resource` (a superset: the filter decides). */
export async function candidateSubscriptions(uow: UnitOfWork, resource: Resource): Promise<Subscription[]> {
  const keys = recipientKeys(resource);
  // Subscriptions stored before the index existed are tagged at start-up
  // (subscription-backfill.ts), so every candidate carries a recipient tag.
  const lookups: SearchFilter[][] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
    const values = keys
      .slice(i, i + KEYS_PER_QUERY)
      .map((value) => ({ system: RECIPIENT_TAG_SYSTEM, value }));
    lookups.push([...ACTIVE_TOPIC, { kind: 'token', code: '_tag', not: false, values }]);
  }
  const found = new Map<string, Subscription>();
  for (const filters of lookups) {
    for (const s of await everyMatch(uow, filters)) found.set(s.id as string, s);
  }
  return [...found.values()];
}

/** Every match, page by page: correctness has no cap. */
async function everyMatch(uow: UnitOfWork, filters: SearchFilter[]): Promise<Subscription[]> {
  const all: Subscription[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await uow.system.search({
      resourceType: 'Subscription',
      filters,
      sort: [],
      count: PAGE,
      offset,
      total: false,
    });
    all.push(...(page.resources as Subscription[]));
    if (page.resources.length < PAGE) return all;
  }
}

/** How many active (or requested) Subscriptions `clientId` created, other than `except`. */
export async function activeSubscriptionsOf(
  uow: UnitOfWork,
  clientId: string,
  except: string,
): Promise<number> {
  const result = await uow.system.search({
    resourceType: 'Subscription',
    filters: [
      { kind: 'token', code: 'status', not: false, values: [{ value: 'active' }, { value: 'requested' }] },
      { kind: 'token', code: '_tag', not: false, values: [{ system: OWNER_TAG_SYSTEM, value: clientId }] },
      { kind: 'id', values: [except], not: true },
    ],
    sort: [],
    count: 0,
    offset: 0,
    total: true,
  });
  return result.total ?? 0;
}
