import type { QuestionnaireResponse } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { WriteHandler } from '../rest/unit-of-work.js';

/**
 * A referrer answers questionnaires (the referrer-feedback one the practice publishes) only as
 * someone it acts for: `author` names one of its identities, so feedback counts for the referrer
 * that gave it and no other (analytics/feedback.ts keys it by author). A logical author (an NPI
 * alone) or anyone else is refused.
 */
export const feedbackAuthor: WriteHandler = {
  name: 'referral.feedback-author',
  phase: 'validate',
  order: 20,
  types: ['QuestionnaireResponse'],
  actions: ['create', 'update'],
  origins: ['client'],
  run(uow, change) {
    const auth = uow.auth;
    if (auth?.role !== 'referrer') return;
    const author = (change.resource as QuestionnaireResponse).author?.reference;
    if (!author || !auth.actsFor.includes(author)) {
      throw fhirError(
        'forbidden',
        `This client may answer questionnaires only as ${auth.actsFor.join(', ')}`,
        'QuestionnaireResponse.author',
      );
    }
  },
};
