import { subscriptionStatus as statusOf } from '../delivery/subscription-operations.js';
import { OPERATION_DEFINITION_BASE, type OperationEntry } from './types.js';

/**
 * `$status` on a Subscription (Subscriptions Backport IG,
 * https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/OperationDefinition-backport-subscription-status.html):
 * reads only, so it needs read on Subscription. Published as a constraint (`base`) of the IG's
 * definition: only the instance level is supported.
 */
export const subscriptionStatus: OperationEntry = {
  name: 'status',
  levels: ['instance'],
  resourceTypes: ['Subscription'],
  methods: ['GET'],
  permissions: () => [{ resourceType: 'Subscription', permission: 'r' }],
  handler: async (interaction, _body, scope) => ({
    status: 200,
    resource: await statusOf(scope.store, interaction.id as string, scope.baseUrl, scope.services.now()),
  }),
  definition: {
    resourceType: 'OperationDefinition',
    id: 'Subscription-status',
    url: `${OPERATION_DEFINITION_BASE}/Subscription-status`,
    name: 'SubscriptionStatus',
    title: 'Status of a Subscription',
    status: 'active',
    kind: 'operation',
    publisher: 'pt-referral-fhir',
    description:
      "Answers a searchset Bundle holding the Subscription's status (a Parameters resource, as the Backport IG defines it on R4): its state and how many events there have been.",
    affectsState: false,
    code: 'status',
    base: 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status',
    resource: ['Subscription'],
    system: false,
    type: false,
    instance: true,
    parameter: [
      {
        name: 'return',
        use: 'out',
        min: 1,
        max: '1',
        type: 'Bundle',
        documentation: 'A searchset Bundle with the subscription status',
      },
    ],
  },
};
