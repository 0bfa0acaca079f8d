import { subscriptionEvents as eventsOf } from '../delivery/subscription-operations.js';
import { OPERATION_DEFINITION_BASE, type OperationEntry } from './types.js';

/**
 * `$events` on a Subscription (Subscriptions Backport IG,
 * https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/OperationDefinition-backport-subscription-events.html):
 * replays past events, reading only, so it needs read on Subscription.
 */
export const subscriptionEvents: OperationEntry = {
  name: 'events',
  levels: ['instance'],
  resourceTypes: ['Subscription'],
  methods: ['GET'],
  permissions: () => [{ resourceType: 'Subscription', permission: 'r' }],
  handler: async (interaction, _body, scope) => ({
    status: 200,
    resource: await eventsOf(
      scope.store,
      interaction.id as string,
      new URLSearchParams(interaction.query),
      scope.baseUrl,
      scope.services.now(),
    ),
  }),
  definition: {
    resourceType: 'OperationDefinition',
    id: 'Subscription-events',
    url: `${OPERATION_DEFINITION_BASE}/Subscription-events`,
    name: 'SubscriptionEvents',
    title: 'Replay the events of a Subscription',
    status: 'active',
    kind: 'operation',
    publisher: 'pt-referral-fhir',
    description:
      'Answers a history Bundle of the notifications for a range of event numbers (at most 1,000 at a time), so a receiver that missed notifications can replay them.',
    affectsState: false,
    code: 'events',
    base: 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events',
    resource: ['Subscription'],
    system: false,
    type: false,
    instance: true,
    parameter: [
      {
        name: 'eventsSinceNumber',
        use: 'in',
        min: 0,
        max: '1',
        type: 'string',
        documentation: 'The first event number to include (default 1)',
      },
      {
        name: 'eventsUntilNumber',
        use: 'in',
        min: 0,
        max: '1',
        type: 'string',
        documentation: 'The last event number to include (default the latest)',
      },
      {
        name: 'content',
        use: 'in',
        min: 0,
        max: '1',
        type: 'code',
        documentation: "empty | id-only | full-resource (default the subscription's own)",
      },
      {
        name: 'return',
        use: 'out',
        min: 1,
        max: '1',
        type: 'Bundle',
        documentation: 'A history Bundle with the SubscriptionStatus and the events asked for',
      },
    ],
  },
};
