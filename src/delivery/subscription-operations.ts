import type { Bundle, Resource, Subscription } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import { assertValidId } from '../rest/resource-identity.js';
import type { FhirStore } from '../store/fhir-store.js';
import { buildNotificationBundle } from './notification-bundle.js';
import { readSubscriptionSettings } from './subscription-settings.js';

/**
 * `$status` and `$events` on a Subscription (Backport IG operations), so a receiver that missed
 * notifications can see how many events there have been and replay the ones it lacks.
 * See: https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/OperationDefinition-backport-subscription-events.html
 */
async function loadSubscription(store: FhirStore, id: string): Promise<Subscription> {
  assertValidId(id, 'id');
  const current = await store.read('Subscription', id);
  if (!current) throw fhirError('resource-not-found', `Subscription/${id} does not exist`);
  if (current.deleted) throw fhirError('resource-deleted', `Subscription/${id} was deleted`);
  return current.resource as Subscription;
}

export async function subscriptionStatus(
  store: FhirStore,
  id: string,
  baseUrl: string,
  now: string,
): Promise<Bundle> {
  const subscription = await loadSubscription(store, id);
  const status = buildNotificationBundle({
    baseUrl,
    subscription,
    type: 'query-status',
    eventCount: await store.subscriptionEventCount(id),
    events: [],
    content: 'id-only',
    now,
  });
  // $status answers a searchset holding the status resource(s).
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total: 1,
    entry: [{ resource: status.entry?.[0]?.resource as Resource, search: { mode: 'match' } }],
  };
}

export async function subscriptionEvents(
  store: FhirStore,
  id: string,
  params: URLSearchParams,
  baseUrl: string,
  now: string,
): Promise<Bundle> {
  const subscription = await loadSubscription(store, id);
  const count = await store.subscriptionEventCount(id);
  const number = (name: string, fallback: number): number => {
    const value = params.get(name);
    if (value === null) return fallback;
    if (!/^\d{1,15}$/.test(value))
      throw fhirError('invalid-search-parameter', `${name} must be a non-negative integer`, name);
    return Number(value);
  };
  const from = number('eventsSinceNumber', 1);
  const to = Math.min(number('eventsUntilNumber', count), from + 999);
  const content = params.get('content') ?? readSubscriptionSettings(subscription).content;
  if (!['empty', 'id-only', 'full-resource'].includes(content)) {
    throw fhirError('invalid-search-parameter', 'content must be empty, id-only or full-resource', 'content');
  }
  const events = await store.subscriptionEvents(id, from, to);
  const withResources = await Promise.all(
    events.map(async (event) => {
      const [type, resourceId, , versionId] = event.focus.split('/');
      const resource =
        content === 'full-resource'
          ? (await store.vread(type as string, resourceId as string, versionId as string))?.resource
          : undefined;
      return { event, resource };
    }),
  );
  return buildNotificationBundle({
    baseUrl,
    subscription,
    type: 'query-event',
    eventCount: count,
    events: withResources,
    content: content as 'id-only',
    now,
  });
}
