import type { ServiceRequest } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { WriteHandler } from '../rest/unit-of-work.js';

/** A referrer client sends referrals only as someone it acts for. */
export const referrerIdentity: WriteHandler = {
  name: 'referral.referrer-identity',
  phase: 'validate',
  order: 20,
  types: ['ServiceRequest'],
  actions: ['create', 'update'],
  origins: ['client'],
  run(uow, change) {
    const auth = uow.auth;
    if (auth?.role !== 'referrer') return;
    const requester = (change.resource as ServiceRequest).requester?.reference;
    if (!requester || !auth.actsFor.includes(requester)) {
      throw fhirError(
        'forbidden',
        `This client may send referrals only as ${auth.actsFor.join(', ')}`,
        'ServiceRequest.requester',
      );
    }
  },
};
