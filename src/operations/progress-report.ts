import { requestProgressReport } from '../referral/progress-report.js';
import { OPERATION_DEFINITION_BASE, type OperationEntry } from './types.js';

/**
 * `$progress-report` on an EpisodeOfCare: a progress report to the referrer on request, composed
 * from what is stored now. It creates a Communication, so it needs create on Communication.
 */
export const progressReport: OperationEntry = {
  name: 'progress-report',
  levels: ['instance'],
  resourceTypes: ['EpisodeOfCare'],
  methods: ['POST'],
  permissions: () => [{ resourceType: 'Communication', permission: 'c' }],
  handler: async (interaction, _body, scope) => ({
    status: 200,
    resource: await scope.write((ctx) => requestProgressReport(ctx, interaction.id as string)),
  }),
  definition: {
    resourceType: 'OperationDefinition',
    id: 'EpisodeOfCare-progress-report',
    url: `${OPERATION_DEFINITION_BASE}/EpisodeOfCare-progress-report`,
    name: 'ProgressReport',
    title: 'Send a progress report to the referrer now',
    status: 'active',
    kind: 'operation',
    publisher: 'pt-referral-fhir',
    description:
      'Composes a progress report on the episode of care from what is recorded now (visits, outcome measures, plan of care) and sends it to the referrer as a Communication, as the periodic reports are sent.',
    affectsState: true,
    code: 'progress-report',
    resource: ['EpisodeOfCare'],
    system: false,
    type: false,
    instance: true,
    parameter: [
      {
        name: 'return',
        use: 'out',
        min: 1,
        max: '1',
        type: 'Communication',
        documentation: 'The progress report Communication that was sent',
      },
    ],
  },
};
