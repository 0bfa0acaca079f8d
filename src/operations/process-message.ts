import { fhirError } from '../fhir/errors.js';
import type { Bundle } from '@medplum/fhirtypes';
import type { Need } from '../auth/required-permissions.js';
import { processMessage as runMessage } from '../rest/process-message.js';
import { OPERATION_DEFINITION_BASE, type OperationEntry } from './types.js';

/**
 * `$process-message` at the system level, synchronous
 * (https://hl7.org/fhir/R4/messageheader-operation-process-message.html): the message's resources
 * are stored as a transaction would store them, so it needs create on every type it stores.
 * Published as a constraint (`base`) of the standard definition: neither `async` nor
 * `response-url` is supported.
 */
export const processMessage: OperationEntry = {
  name: 'process-message',
  levels: ['system'],
  resourceTypes: '*',
  methods: ['POST'],
  permissions: (_interaction, body) => messageNeeds(body),
  handler: async (_interaction, body, scope) => {
    if (body === undefined) {
      throw fhirError('body-missing', 'This interaction needs a FHIR resource in the body');
    }
    return {
      status: 200,
      resource: await runMessage(scope.store, scope.services, body, scope.baseUrl, scope.auth),
    };
  },
  definition: {
    resourceType: 'OperationDefinition',
    id: 'MessageHeader-process-message',
    url: `${OPERATION_DEFINITION_BASE}/MessageHeader-process-message`,
    name: 'ProcessMessage',
    title: 'Process a referral message, synchronously',
    status: 'active',
    kind: 'operation',
    publisher: 'pt-referral-fhir',
    description:
      'Accepts a message Bundle (MessageHeader first, its focus the referral ServiceRequest or a Task on it, as the BSeR guide sends referrals), stores its resources in one transaction exactly as a transaction Bundle would, and answers with the response message. Synchronous only.',
    affectsState: true,
    code: 'process-message',
    base: 'http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message',
    resource: ['MessageHeader'],
    system: true,
    type: false,
    instance: false,
    parameter: [
      {
        name: 'content',
        use: 'in',
        min: 1,
        max: '1',
        type: 'Bundle',
        documentation: 'The message Bundle (sent as the body)',
      },
      {
        name: 'return',
        use: 'out',
        min: 1,
        max: '1',
        type: 'Bundle',
        documentation: 'The response message',
      },
    ],
  },
};

/**
 * What `$process-message` needs: it stores every resource of the message after the MessageHeader
 * (the sender's Task excepted, see rest/process-message.ts) as a create, and the referral itself.
 */
export function messageNeeds(bundle: unknown): Need[] {
  const entries = (bundle as Bundle | undefined)?.entry ?? [];
  const types = new Set(['ServiceRequest']);
  for (const entry of Array.isArray(entries) ? entries.slice(1) : []) {
    const type = (entry?.resource as { resourceType?: unknown } | undefined)?.resourceType;
    if (typeof type === 'string' && type !== 'Task') types.add(type);
  }
  return [...types].map((resourceType) => ({ resourceType, permission: 'c' as const }));
}
