import { createServices } from '../../src/app.js';
import {
  ensurePublishedDefinitions,
  type PublishReport,
} from '../../src/conformance/published-definitions.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { sharedValidator } from './test-app.js';

/**
 * Stores the published definitions (Measures, the feedback Questionnaire, the OperationDefinitions)
 * as the composition root does at start-up. Idempotent: where the composed app has published them
 * already, this writes nothing.
 */
export function publishDefinitions(store: FhirStore): Promise<PublishReport> {
  return ensurePublishedDefinitions(
    store,
    createServices({ validator: sharedValidator(), practice: { reference: 'Organization/practice' } }),
  );
}
