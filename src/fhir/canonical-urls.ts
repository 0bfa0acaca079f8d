/**
 * Canonical URLs of the service's own conformance resources (profiles/). Plain constants in
 * src/fhir so that every layer can name a profile or code system without importing the
 * validator that loads them.
 */
export const PROFILE_BASE_URL = 'https://ptreferral.dev/fhir';

export const PROFILES = {
  referralServiceRequest: `${PROFILE_BASE_URL}/StructureDefinition/pt-referral-servicerequest`,
  referralTask: `${PROFILE_BASE_URL}/StructureDefinition/pt-referral-task`,
  episodeOfCare: `${PROFILE_BASE_URL}/StructureDefinition/pt-episode-of-care`,
  progressCommunication: `${PROFILE_BASE_URL}/StructureDefinition/pt-progress-communication`,
} as const;

/** The referral and episode events (profiles/CodeSystem-pt-referral-event.json). */
export const EVENT_SYSTEM = `${PROFILE_BASE_URL}/CodeSystem/pt-referral-event`;

/** The one SubscriptionTopic this service publishes: progress Communications to referrers. */
export const REFERRAL_PROGRESS_TOPIC = 'https://ptreferral.dev/fhir/SubscriptionTopic/referral-progress';
