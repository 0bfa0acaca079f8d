import type { OperationDefinition, Resource } from '@medplum/fhirtypes';
import type { AnalyticsService } from '../analytics/service.js';
import type { Need } from '../auth/required-permissions.js';
import type { RequestScope } from '../rest/dispatch.js';
import type { Interaction, OperationLevel } from '../rest/interaction.js';

/**
 * What an operation's handler runs with: the request scope of every dispatched interaction
 * (src/rest/dispatch.ts: the client's store view and reader, the write services, who is asking,
 * the base URL, and `write`, which runs work in one unit of work — `runWrite(storeOf(req),
 * services, work, req.auth)` for a request, the Bundle's transaction for an entry), and the
 * analytics service for `$evaluate-measure`.
 */
export interface OperationScope extends RequestScope {
  /** The referral-programme analytics ($evaluate-measure); absent where analytics are not served. */
  analytics?: AnalyticsService;
}

/** What an operation answers: always a resource with 200 (https://hl7.org/fhir/R4/operations.html#response). */
export interface OperationOutput {
  status: number;
  resource: Resource;
}

/**
 * One operation the server implements (https://hl7.org/fhir/R4/operations.html): where it may be
 * invoked, how, what it needs of the token, what it does, and the OperationDefinition that
 * publishes all that (listed in the CapabilityStatement and readable at OperationDefinition/[id]).
 */
export interface OperationEntry {
  /** The name without `$` (OperationDefinition.code). */
  name: string;
  levels: readonly OperationLevel[];
  /** The types it may be invoked on (type and instance level); `'*'` for every type. */
  resourceTypes: readonly string[] | '*';
  /** POST always; GET too only where the operation does not change state (R4 operations.html). */
  methods: readonly ('GET' | 'POST')[];
  /** The SMART permissions the invocation needs; may depend on the body. */
  permissions(interaction: Interaction, body: unknown): Need[];
  handler(interaction: Interaction, body: unknown, scope: OperationScope): Promise<OperationOutput>;
  definition: OperationDefinition;
}

export const OPERATION_DEFINITION_BASE = 'https://ptreferral.dev/fhir/OperationDefinition';
