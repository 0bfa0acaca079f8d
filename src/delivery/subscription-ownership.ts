import type { Subscription } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { WriteHandler } from '../rest/unit-of-work.js';
import { tryReadSettings } from './subscription-settings.js';

/**
 * A referrer subscribes only to its own recipients. Decided on the settings exactly as the
 * delivery worker parses them (subscription-settings.ts), so the check and the delivery cannot
 * read two different filters.
 */
export const subscriptionOwnership: WriteHandler = {
  name: 'delivery.subscription-ownership',
  phase: 'validate',
  order: 10,
  types: ['Subscription'],
  actions: ['create', 'update'],
  origins: ['client'],
  run(uow, change) {
    const auth = uow.auth;
    if (auth?.role !== 'referrer') return;
    const settings = tryReadSettings(change.resource as Subscription);
    const recipients = (settings?.filters ?? [])
      .filter((f) => f.kind === 'reference' && f.code === 'recipient')
      .flatMap((f) => (f.kind === 'reference' ? f.values : []))
      .map((v) => v.reference ?? (v.targetType && v.targetId ? `${v.targetType}/${v.targetId}` : ''));
    if (recipients.length === 0 || recipients.some((r) => !auth.actsFor.includes(r))) {
      throw fhirError(
        'forbidden',
        `A subscription must filter on recipient among ${auth.actsFor.join(', ')}`,
        'Subscription._criteria',
      );
    }
  },
};
