import type { Communication } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { WriteHandler } from '../rest/unit-of-work.js';

/**
 * Only the practice speaks as the practice. A referrer's Communication names as its `sender` one
 * of the identities the referrer acts for (its Practitioner, PractitionerRole or Organization), so
 * no client can write a message that reads, and is delivered, as a practice update
 * (https://hl7.org/fhir/R4/communication-definitions.html#Communication.sender: "the entity which
 * was the source of the communication"). Decided on the resource about to be stored.
 */
export const communicationSender: WriteHandler = {
  name: 'referral.communication-sender',
  phase: 'validate',
  order: 20,
  types: ['Communication'],
  actions: ['create', 'update'],
  origins: ['client'],
  run(uow, change) {
    const auth = uow.auth;
    if (auth?.role !== 'referrer') return;
    const sender = (change.resource as Communication).sender?.reference;
    if (!sender || !auth.actsFor.includes(sender)) {
      throw fhirError(
        'forbidden',
        `This client may send Communications only as ${auth.actsFor.join(', ')}`,
        'Communication.sender',
      );
    }
  },
};
