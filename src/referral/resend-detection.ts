import type { ServiceRequest } from '@medplum/fhirtypes';
import type { IdentityRule } from '../rest/unit-of-work.js';

/**
 * A re-sent referral is recognised by its identifier (a conditional create the service adds), so
 * an EHR that sends the same referral twice gets the stored one back, not a second referral.
 */
export const resendDetection: IdentityRule = {
  types: ['ServiceRequest'],
  criteria(resource) {
    const id = (resource as ServiceRequest).identifier?.find((i) => i.system && i.value);
    return id
      ? `identifier=${encodeURIComponent(`${escapeToken(id.system as string)}|${escapeToken(id.value as string)}`)}`
      : undefined;
  },
};

/** FHIR search escaping for values that contain `,`, `|`, `$` or `\`. */
function escapeToken(value: string): string {
  return value.replace(/[\\,|$]/g, (c) => `\\${c}`);
}
