import type { Subscription } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { WriteHandler, WriteModule } from '../rest/unit-of-work.js';
import type { EndpointRules } from './endpoint-policy.js';
import { activeSubscriptionsOf } from './subscription-index.js';
import { isTopicBased, readSubscriptionSettings } from './subscription-settings.js';

/**
 * The delivery rules that depend on the deployment's settings (DELIVERY_* in config.ts), checked
 * when a client writes a Subscription: where its endpoint may point (endpoint-policy.ts; checked
 * again against the resolved address at each send), and how many active Subscriptions one
 * client may hold (the announce reads every candidate: this keeps one client from making every
 * Communication's write slow for everyone).
 */
export interface SubscriptionPolicyOptions {
  endpoints: EndpointRules;
  maxPerClient: number;
}

const ACTIVE = new Set(['active', 'requested']);

export function subscriptionPolicyModule(options: SubscriptionPolicyOptions): WriteModule {
  const policy: WriteHandler = {
    name: 'delivery.subscription-policy',
    phase: 'validate',
    order: 20,
    types: ['Subscription'],
    actions: ['create', 'update'],
    origins: ['client'],
    async run(uow, change) {
      const subscription = change.resource as Subscription;
      if (!isTopicBased(subscription)) return;
      const settings = readSubscriptionSettings(subscription);
      const problem = options.endpoints.endpointProblem(settings.endpoint);
      if (problem) throw fhirError('business-rule', problem, 'Subscription.channel.endpoint');
      const clientId = uow.auth?.clientId;
      const wasActive = ACTIVE.has((change.previous?.resource as Subscription | undefined)?.status ?? '');
      if (!clientId || !ACTIVE.has(subscription.status) || (wasActive && !change.previous?.deleted)) return;
      // Two creates at once by one client must not both see room for one more.
      await uow.tx.lock(`subscription-limit:${clientId}`);
      if ((await activeSubscriptionsOf(uow, clientId, change.id)) >= options.maxPerClient) {
        throw fhirError(
          'business-rule',
          `A client may have at most ${options.maxPerClient} active Subscriptions; delete or deactivate one first`,
          'Subscription.status',
        );
      }
    },
  };
  return { handlers: [policy] };
}
