import type { OperationDefinition } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import { validateOperation } from '../rest/validate-operation.js';
import type { OperationEntry } from './types.js';

/**
 * `$validate` on a type or an instance (https://hl7.org/fhir/R4/resource-operation-validate.html).
 * It validates and stores nothing, so it needs read on the type (as reading it back would).
 * The standard definition is published as is: the server supports it as defined (system-level
 * invocation is not part of it).
 */
export const validate: OperationEntry = {
  name: 'validate',
  levels: ['type', 'instance'],
  resourceTypes: '*',
  methods: ['POST'],
  permissions: (interaction) => [{ resourceType: interaction.type as string, permission: 'r' }],
  handler: async (interaction, body, scope) => {
    if (body === undefined) {
      throw fhirError('body-missing', 'This interaction needs a FHIR resource in the body');
    }
    const outcome = validateOperation(scope.services.validator, {
      resourceType: interaction.type as string,
      id: interaction.id,
      body,
      queryProfile: new URLSearchParams(interaction.query).get('profile') ?? undefined,
    });
    return { status: 200, resource: outcome };
  },
  definition: {
    resourceType: 'OperationDefinition',
    id: 'Resource-validate',
    url: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
    version: '4.0.1',
    name: 'Validate',
    title: 'Validate a resource',
    status: 'active',
    kind: 'operation',
    publisher: 'HL7 (FHIR Project)',
    description:
      'Validates the resource given in the body (or as the `resource` parameter), against base R4 and the `profile` given; ServiceRequests are checked against the referral profile by default. The answer is always 200 with an OperationOutcome: the outcome, not the status, says whether the resource is valid.',
    affectsState: false,
    code: 'validate',
    // Every type: R4's resource-types include the abstract Resource (Medplum's type list does not).
    resource: ['Resource'] as unknown as OperationDefinition['resource'],
    system: false,
    type: true,
    instance: true,
    parameter: [
      {
        name: 'resource',
        use: 'in',
        min: 0,
        max: '1',
        type: 'Resource',
        documentation: 'The resource to validate (or the whole body, when it is not a Parameters resource)',
      },
      {
        name: 'mode',
        use: 'in',
        min: 0,
        max: '1',
        type: 'code',
        documentation: 'create | update | delete (delete is always allowed here)',
        binding: {
          strength: 'required',
          valueSet: 'http://hl7.org/fhir/ValueSet/resource-validation-mode|4.0.1',
        },
      },
      {
        name: 'profile',
        use: 'in',
        min: 0,
        max: '1',
        type: 'uri',
        documentation: 'A profile to validate against, as well as base R4 (also accepted in the query)',
      },
      {
        name: 'return',
        use: 'out',
        min: 1,
        max: '1',
        type: 'OperationOutcome',
        documentation: 'The issues found; no error issue means the resource is valid',
      },
    ],
  },
};
