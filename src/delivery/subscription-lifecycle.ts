import type { Subscription } from '@medplum/fhirtypes';
import type { WriteHandler } from '../rest/unit-of-work.js';
import { readSubscriptionSettings, REFERRAL_PROGRESS_TOPIC } from './subscription-settings.js';

/**
 * A Subscription is checked against what this server supports before it is stored, and a
 * `requested` one is activated (https://hl7.org/fhir/R4/subscription.html#lifecycle). A classic
 * R4 query-criteria Subscription is stored as sent but never set up (it stays `requested`): this
 * server delivers only its topic-based progress notifications.
 */
export const subscriptionLifecycle: WriteHandler = {
  name: 'delivery.subscription-lifecycle',
  phase: 'before-store',
  order: 10,
  types: ['Subscription'],
  actions: ['create', 'update'],
  run(_uow, change) {
    const subscription = change.resource as Subscription;
    if (subscription.criteria !== REFERRAL_PROGRESS_TOPIC) return undefined;
    readSubscriptionSettings(subscription);
    return subscription.status === 'requested' ? { ...subscription, status: 'active' } : undefined;
  },
};
