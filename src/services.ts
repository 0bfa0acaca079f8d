import type { AppDeps } from './app.js';
import { deliveryModule } from './delivery/delivery-module.js';
import { referralModule } from './referral/referral-module.js';
import { WriteHandlers, type RestServices, type WriteModule } from './rest/unit-of-work.js';

/**
 * The write path's collaborators: the validator and the handlers each module registers. The
 * order between modules is stated by each handler's phase and order (referral intake writes the
 * episode and Task; the notices write Communications, which delivery announces).
 */
export function createServices(
  deps: Pick<AppDeps, 'validator' | 'practice' | 'now' | 'onNotificationsQueued' | 'progressReportEveryVisits'> & {
    /** Replaces the domain modules (a plain FHIR server for the intake benchmark's baseline). */
    modules?: readonly WriteModule[];
  },
): RestServices {
  const modules = deps.modules ?? [
    referralModule({ practice: deps.practice, progressReportEveryVisits: deps.progressReportEveryVisits }),
    deliveryModule({ onNotificationsQueued: deps.onNotificationsQueued }),
  ];
  return {
    validator: deps.validator,
    handlers: new WriteHandlers(modules),
    now: deps.now ?? (() => new Date().toISOString()),
  };
}
