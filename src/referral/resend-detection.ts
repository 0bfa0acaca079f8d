import type { Organization, Reference, ServiceRequest } from '@medplum/fhirtypes';
import type { IdentityRule } from '../rest/unit-of-work.js';
import { isReferralToPractice } from './referral-recognition.js';

/**
 * A re-sent referral is recognised (a conditional create the service adds), so an EHR that sends
 * the same referral twice gets the stored one back, not a second referral:
 *
 * - by its identifier with a system and a value, when it has one (the referrer's own number);
 * - otherwise, for a referral to the practice (referral-recognition.ts), by its fingerprint: the
 *   same `requester`, `subject`, first coded `code` and `authoredOn` (as written, to the second).
 *   Only when both references are `Type/id` (a patient or referrer created in the same Bundle is
 *   new, so its referral is too) and the code has a coding: a text-only code is no fingerprint.
 *   See: https://hl7.org/fhir/R4/http.html#ccreate
 */
export function resendDetection(practice: Reference<Organization>): IdentityRule {
  return {
    types: ['ServiceRequest'],
    criteria(resource) {
      const request = resource as ServiceRequest;
      const id = request.identifier?.find((i) => i.system && i.value);
      if (id) {
        return `identifier=${encodeURIComponent(`${escapeToken(id.system as string)}|${escapeToken(id.value as string)}`)}`;
      }
      return isReferralToPractice(request, practice) ? fingerprint(request) : undefined;
    },
  };
}

const LOCAL_REFERENCE = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/;

function fingerprint(request: ServiceRequest): string | undefined {
  const subject = request.subject?.reference;
  const requester = request.requester?.reference;
  const coding = request.code?.coding?.find((c) => c.system && c.code);
  const authored = request.authoredOn;
  if (!subject || !requester || !coding || !authored) return undefined;
  if (!LOCAL_REFERENCE.test(subject) || !LOCAL_REFERENCE.test(requester)) return undefined;
  return [
    `subject=${encodeURIComponent(subject)}`,
    `requester=${encodeURIComponent(requester)}`,
    `code=${encodeURIComponent(`${escapeToken(coding.system as string)}|${escapeToken(coding.code as string)}`)}`,
    `authored=${encodeURIComponent(`eq${authored}`)}`,
  ].join('&');
}

/** FHIR search escaping for values that contain `,`, `|`, `$` or `\`. */
function escapeToken(value: string): string {
  return value.replace(/[\\,|$]/g, (c) => `\\${c}`);
}
