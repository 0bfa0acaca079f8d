import type { MeasureReport } from '@medplum/fhirtypes';
import { parsePeriod } from '../analytics/period.js';
import type { AnalyticsService } from '../analytics/service.js';
import { allows } from '../auth/scopes.js';
import type { AuthContext } from '../auth/token-service.js';
import { fhirError } from '../fhir/errors.js';
import { OPERATION_DEFINITION_BASE, type OperationEntry } from './types.js';

/**
 * `$evaluate-measure` on a published Measure
 * (https://hl7.org/fhir/R4/measure-operation-evaluate-measure.html), GET
 * `Measure/[id]/$evaluate-measure?periodStart=&periodEnd=[&subject=|practitioner=]` → a summary
 * MeasureReport. The figures span every referrer's referrals and are read without the per-client
 * scoping that isolates referrers, so only practice and admin clients (or AUTH=off) may ask.
 */
export const evaluateMeasure: OperationEntry = {
  name: 'evaluate-measure',
  levels: ['instance'],
  resourceTypes: ['Measure'],
  methods: ['GET'],
  permissions: () => [{ resourceType: 'Measure', permission: 'r' }],
  handler: async (interaction, _body, scope) => {
    assertPracticeClient(scope.auth);
    if (!scope.analytics) {
      throw fhirError('unknown-route', 'Measures are not evaluated here');
    }
    return {
      status: 200,
      resource: await evaluateMeasureReport(
        scope.analytics,
        interaction.id as string,
        new URLSearchParams(interaction.query),
      ),
    };
  },
  definition: {
    resourceType: 'OperationDefinition',
    id: 'Measure-evaluate-measure',
    url: `${OPERATION_DEFINITION_BASE}/Measure-evaluate-measure`,
    name: 'EvaluateMeasure',
    title: 'Evaluate a referral-programme Measure',
    status: 'active',
    kind: 'operation',
    publisher: 'pt-referral-fhir',
    description:
      'Computes a summary MeasureReport of one of the published Measures for a period, optionally for one referring source (subject or practitioner: a Practitioner, PractitionerRole or Organization). Practice and admin clients only.',
    affectsState: false,
    code: 'evaluate-measure',
    base: 'http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure',
    resource: ['Measure'],
    system: false,
    type: false,
    instance: true,
    parameter: [
      {
        name: 'periodStart',
        use: 'in',
        min: 1,
        max: '1',
        type: 'date',
        documentation: 'The start of the measurement period',
      },
      {
        name: 'periodEnd',
        use: 'in',
        min: 1,
        max: '1',
        type: 'date',
        documentation: 'The end of the measurement period',
      },
      {
        name: 'reportType',
        use: 'in',
        min: 0,
        max: '1',
        type: 'code',
        documentation: 'summary (population is answered as summary)',
      },
      {
        name: 'subject',
        use: 'in',
        min: 0,
        max: '1',
        type: 'string',
        documentation: 'A referring source (Practitioner/[id], PractitionerRole/[id] or Organization/[id])',
      },
      {
        name: 'practitioner',
        use: 'in',
        min: 0,
        max: '1',
        type: 'string',
        documentation: 'The same as subject',
      },
      {
        name: 'return',
        use: 'out',
        min: 1,
        max: '1',
        type: 'MeasureReport',
        documentation: 'The summary MeasureReport',
      },
    ],
  },
};

/** The MeasureReport for the operation's parameters (also the CSV export's, src/http/analytics-routes.ts). */
export async function evaluateMeasureReport(
  service: AnalyticsService,
  measureId: string,
  params: URLSearchParams,
): Promise<MeasureReport> {
  const reportType = params.get('reportType');
  if (reportType && reportType !== 'summary' && reportType !== 'population') {
    throw fhirError(
      'invalid-search-parameter',
      `reportType '${reportType.slice(0, 20)}' is not supported; use summary`,
    );
  }
  const period = parsePeriod(params.get('periodStart') ?? undefined, params.get('periodEnd') ?? undefined);
  const subject = params.get('subject') ?? params.get('practitioner') ?? undefined;
  const source = subject ? await service.sourceOf(subject) : undefined;
  return service.report(measureId, period, source);
}

/**
 * Analytics cover every referrer's referrals and read the store without the per-client scoping
 * that isolates referrers: an authenticated client must be the practice's (or an admin).
 */
export function assertPracticeClient(auth: AuthContext | undefined): void {
  const role = auth?.role;
  if (role !== undefined && role !== 'practice' && role !== 'admin') {
    throw fhirError('forbidden', 'Referral-programme analytics are available to practice clients only');
  }
}

/**
 * The dashboard and the CSV exports ask what `$evaluate-measure` asks (its `permissions` above,
 * checked for /fhir by the scope check): the practice's role, and a token whose scopes allow
 * reading Measures (`system/Measure.r`, `system/*.rs`, ...). A practice token narrowed to, say,
 * Communications sees no figures. Without authentication (AUTH=off) there is no token to check.
 */
export function assertAnalyticsAccess(auth: AuthContext | undefined): void {
  assertPracticeClient(auth);
  if (auth && !allows(auth.scopes, 'Measure', 'r')) {
    throw fhirError(
      'insufficient-scope',
      "The token's scopes do not allow 'r' on Measure, which analytics need",
    );
  }
}
