import type { Organization, Reference } from '@medplum/fhirtypes';
import { accessModule } from './auth/access-label-rules.js';
import { deliveryModule } from './delivery/delivery-module.js';
import type { SubscriptionPolicyOptions } from './delivery/subscription-policy.js';
import { referralModule } from './referral/referral-module.js';
import { WriteHandlers, type RestServices, type WriteModule } from './rest/unit-of-work.js';
import type { ResourceValidator } from './validation/resource-validator.js';

/**
 * The write path's collaborators: the validator and the handlers each module registers. The
 * order between modules is stated by each handler's phase and order (referral intake writes the
 * episode and Task; the notices write Communications, which delivery announces).
 */
export interface ServicesOptions {
  validator: ResourceValidator;
  /** The practice that receives referrals (see referral/practice.ts). */
  practice: Reference<Organization>;
  now?: () => string;
  /** Called after a commit that queued subscription notifications (wakes the delivery worker). */
  onNotificationsQueued?: () => void;
  /** A progress report goes to the referrer every N attended visits (default 6). */
  progressReportEveryVisits?: number;
  /** Where rest-hooks may point and how many Subscriptions a client may hold (DELIVERY_*). */
  subscriptionPolicy?: SubscriptionPolicyOptions;
  /** Replaces the domain modules (a plain FHIR server for the intake benchmark's baseline). */
  modules?: readonly WriteModule[];
  /** Added after the domain modules (tests observe the write path with them). */
  extraModules?: readonly WriteModule[];
}

export function createServices(deps: ServicesOptions): RestServices {
  const modules = deps.modules ?? [
    referralModule({ practice: deps.practice, progressReportEveryVisits: deps.progressReportEveryVisits }),
    deliveryModule({ onNotificationsQueued: deps.onNotificationsQueued, policy: deps.subscriptionPolicy }),
  ];
  return {
    validator: deps.validator,
    // Isolation's own labelling rules hold whatever the domain modules are.
    handlers: new WriteHandlers([accessModule, ...modules, ...(deps.extraModules ?? [])]),
    now: deps.now ?? (() => new Date().toISOString()),
  };
}
