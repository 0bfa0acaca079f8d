import type { OperationDefinition } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { Interaction } from '../rest/interaction.js';
import { evaluateMeasure } from './evaluate-measure.js';
import { processMessage } from './process-message.js';
import { progressReport } from './progress-report.js';
import { subscriptionEvents } from './subscription-events.js';
import { subscriptionStatus } from './subscription-status.js';
import type { OperationEntry } from './types.js';
import { validate } from './validate.js';

/**
 * Every operation the server implements, one file each. The routes dispatch through it, the scope
 * check asks it what an invocation needs, the CapabilityStatement lists it, and its
 * OperationDefinitions are stored at start-up (ensurePublishedDefinitions) so they are readable.
 */
export class OperationRegistry {
  constructor(readonly entries: readonly OperationEntry[]) {}

  /**
   * The operation an `operation` interaction invokes, or the answer R4 gives
   * (https://hl7.org/fhir/R4/operations.html): 404 unknown-route for a name not defined where it
   * was invoked, 405 method-not-allowed for GET on one that needs POST (or the reverse).
   */
  resolve(interaction: Interaction): OperationEntry {
    const { operation: name, level, type } = interaction;
    const entry = this.entries.find(
      (e) =>
        e.name === name &&
        level !== undefined &&
        e.levels.includes(level) &&
        (level === 'system' || e.resourceTypes === '*' || e.resourceTypes.includes(type as string)),
    );
    if (!entry) {
      const where = level === 'system' || type === undefined ? 'at the system level' : `on ${type}`;
      throw fhirError('unknown-route', `No operation $${String(name).slice(0, 64)} ${where}`);
    }
    const method = interaction.method === 'HEAD' ? 'GET' : interaction.method;
    if (!(entry.methods as readonly string[]).includes(method)) {
      throw fhirError('method-not-allowed', `$${entry.name} is invoked with ${entry.methods.join(' or ')}`);
    }
    return entry;
  }

  definitions(): OperationDefinition[] {
    return this.entries.map((e) => e.definition);
  }
}

export const OPERATIONS = new OperationRegistry([
  validate,
  processMessage,
  progressReport,
  subscriptionStatus,
  subscriptionEvents,
  evaluateMeasure,
]);
