import type { WriteModule } from '../rest/unit-of-work.js';
import { communicationLabels } from './communication-labels.js';
import { announceCommunication } from './announce-communication.js';
import { subscriptionLifecycle } from './subscription-lifecycle.js';
import { subscriptionOwnership } from './subscription-ownership.js';
import { subscriptionPolicyModule, type SubscriptionPolicyOptions } from './subscription-policy.js';

export interface DeliveryModuleOptions {
  onNotificationsQueued?: () => void;
  /** The deployment's endpoint policy and per-client limit (DELIVERY_* settings). */
  policy?: SubscriptionPolicyOptions;
}

/**
 * Delivery's part of the write path: Subscriptions checked against the deployment's policy,
 * checked for ownership and activated; Communications announced.
 */
export function deliveryModule(options: DeliveryModuleOptions = {}): WriteModule {
  return {
    labels: [communicationLabels],
    handlers: [
      ...(options.policy ? (subscriptionPolicyModule(options.policy).handlers ?? []) : []),
      subscriptionOwnership,
      subscriptionLifecycle,
      announceCommunication(options.onNotificationsQueued),
    ],
  };
}
