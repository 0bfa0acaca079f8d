import type { WriteModule } from '../rest/unit-of-work.js';
import { communicationLabels } from './communication-labels.js';
import { announceCommunication } from './announce-communication.js';
import { subscriptionLifecycle } from './subscription-lifecycle.js';
import { subscriptionOwnership } from './subscription-ownership.js';

/** Delivery's part of the write path: Subscriptions checked and activated, Communications announced. */
export function deliveryModule(options: { onNotificationsQueued?: () => void } = {}): WriteModule {
  return {
    labels: [communicationLabels],
    handlers: [
      subscriptionOwnership,
      subscriptionLifecycle,
      announceCommunication(options.onNotificationsQueued),
    ],
  };
}
