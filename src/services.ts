import type { AppDeps } from './app.js';
import { NOTIFICATIONS_QUEUED, subscriptionHook } from './delivery/subscription-hook.js';
import { referralWorkflow } from './referral/referral-workflow.js';
import type { RestServices } from './rest/write-context.js';

/** The FHIR server's collaborators: the validator and the referral workflow's hooks. */
export function createServices(
  deps: Pick<
    AppDeps,
    'validator' | 'practice' | 'now' | 'onNotificationsQueued' | 'progressReportEveryVisits'
  >,
): RestServices {
  return {
    validator: deps.validator,
    // Order matters: the referral workflow writes Communications, which the subscription hook announces.
    hooks: [
      referralWorkflow({
        practice: deps.practice,
        progressReportEveryVisits: deps.progressReportEveryVisits,
      }),
      subscriptionHook(),
    ],
    now: deps.now ?? (() => new Date().toISOString()),
    onCommitted: (ctx) => {
      if (ctx.state.get(NOTIFICATIONS_QUEUED)) deps.onNotificationsQueued?.();
    },
  };
}

