import type { Subscription } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { WriteHandler } from '../rest/unit-of-work.js';
import { isTopicBased, readSubscriptionSettings } from './subscription-settings.js';

/**
 * A referrer subscribes only to its own recipients. Decided on the one reading of the Subscription
 * (`readSubscriptionSettings`, the value the announce and the delivery worker use too), so the
 * check and the delivery cannot read two different filters; what that reading cannot take
 * unambiguously is refused there (422) before ownership is even asked.
 */
export const subscriptionOwnership: WriteHandler = {
  name: 'delivery.subscription-ownership',
  phase: 'validate',
  order: 10,
  types: ['Subscription'],
  actions: ['create', 'update'],
  origins: ['client'],
  run(uow, change) {
    const auth = uow.auth;
    if (auth?.role !== 'referrer') return;
    const subscription = change.resource as Subscription;
    const recipients = isTopicBased(subscription) ? readSubscriptionSettings(subscription).recipients : [];
    if (recipients.length === 0 || recipients.some((r) => !auth.actsFor.includes(r))) {
      throw fhirError(
        'forbidden',
        `A subscription must filter on recipient among ${auth.actsFor.join(', ')}`,
        'Subscription._criteria',
      );
    }
  },
};
