import { fhirError } from '../fhir/errors.js';
import type { WriteHandler } from '../rest/unit-of-work.js';

/**
 * The identities a referrer acts for (its Practitioner, PractitionerRole, Organization) are
 * registered by the practice or an admin, and a referrer cannot rewrite or delete them: what they
 * say (an NPI, a role's practitioner) is what the server knows about who sent a referral, and what
 * analytics count it under (analytics/referrer.ts). A referrer that could edit them could claim
 * another referrer's NPI and merge its referrals and feedback into the other's figures.
 */
export const ownIdentities: WriteHandler = {
  name: 'access.own-identities',
  phase: 'validate',
  order: 15,
  types: ['Practitioner', 'PractitionerRole', 'Organization'],
  actions: ['update', 'delete'],
  origins: ['client'],
  run(uow, change) {
    const auth = uow.auth;
    if (auth?.role !== 'referrer') return;
    if (auth.actsFor.includes(`${change.resourceType}/${change.id}`)) {
      throw fhirError(
        'forbidden',
        `${change.resourceType}/${change.id} is an identity this client acts for: the practice maintains it`,
        change.resourceType,
      );
    }
  },
};
