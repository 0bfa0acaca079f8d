import type { Subscription } from '@medplum/fhirtypes';
import type { WriteHandler } from '../rest/unit-of-work.js';
import { withIndexTags } from './subscription-index.js';
import { withSecretKept } from './subscription-secret.js';
import { isTopicBased, readSubscriptionSettings } from './subscription-settings.js';

/**
 * A Subscription is checked against what this server supports before it is stored, and a
 * `requested` one is activated (https://hl7.org/fhir/R4/subscription.html#lifecycle). A classic
 * R4 query-criteria Subscription (nothing of the Backport IG on it) is stored as sent but never
 * set up (it stays `requested`): this server delivers only its topic-based progress
 * notifications. One that is topic-based in part (a Backport filter, profile or extension, but
 * another `criteria`) is refused: it could be read two ways. Every version carries the index
 * tags the announce finds it by (subscription-index.ts), and keeps its signing secret when an
 * update leaves it out (secrets are write-only: a client never reads it back to resend it).
 */
export const subscriptionLifecycle: WriteHandler = {
  name: 'delivery.subscription-lifecycle',
  phase: 'before-store',
  order: 10,
  types: ['Subscription'],
  actions: ['create', 'update'],
  run(uow, change) {
    const sent = change.resource as Subscription;
    const previous = change.previous?.deleted ? undefined : change.previous?.resource;
    const owner = change.origin === 'client' ? uow.auth?.clientId : undefined;
    if (!isTopicBased(sent)) return withIndexTags(sent, undefined, previous, owner);
    const subscription = withSecretKept(sent, previous as Subscription | undefined);
    const settings = readSubscriptionSettings(subscription);
    const activated: Subscription =
      subscription.status === 'requested' ? { ...subscription, status: 'active' } : subscription;
    return withIndexTags(activated, settings, previous, owner);
  },
};
