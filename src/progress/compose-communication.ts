import type { Communication, Organization, Patient, Reference } from '@medplum/fhirtypes';
import { EVENT_SYSTEM, PROFILES } from '../fhir/canonical-urls.js';
import { renderHtml } from './html-report.js';
import { COMMUNICATION_ID_SYSTEM, EVENT_DISPLAY } from './progress-codes.js';
import type { ComposeOptions, EpisodeSnapshot, ProgressEvent } from './progress-types.js';
import { renderText } from './report-doc.js';
import { buildReport, patientName } from './summary-texts.js';

/**
 * The patient-progress update to the referring practitioner for one episode event, as a
 * Communication meeting profiles/source/pt-progress-communication.json. Pure: the id and the time
 * come in `options`; the same inputs always give the same Communication.
 *
 * The payload carries the summary as plain text, the same as an HTML report, and a reference to
 * every Observation, Goal and CarePlan the summary cites, so the referrer can check each figure.
 */
export function composeProgressCommunication(
  event: ProgressEvent,
  snapshot: EpisodeSnapshot,
  options: ComposeOptions,
): Communication {
  const { referral, patient, practice, episode } = snapshot;
  if (!referral.requester) {
    throw new Error(`ServiceRequest/${referral.id} has no requester to send the update to`);
  }
  const report = buildReport(event, snapshot, options);
  const display = EVENT_DISPLAY[event.code];
  return {
    resourceType: 'Communication',
    id: options.id,
    meta: { profile: [PROFILES.progressCommunication] },
    identifier: [{ system: COMMUNICATION_ID_SYSTEM, value: communicationIdentifier(event, snapshot) }],
    basedOn: [{ reference: `ServiceRequest/${referral.id}` }],
    status: 'completed',
    category: [{ coding: [{ system: EVENT_SYSTEM, code: event.code, display }], text: display }],
    subject: { reference: `Patient/${patient.id}`, display: patientName(patient) } as Reference<Patient>,
    about: [{ reference: `EpisodeOfCare/${episode.id}` }],
    ...(event.encounter ? { encounter: { reference: event.encounter.reference } } : {}),
    sent: options.now,
    recipient: [referral.requester],
    sender: {
      reference: `Organization/${practice.id}`,
      ...(practice.name ? { display: practice.name } : {}),
    } as Reference<Organization>,
    payload: [
      { contentString: renderText(report) },
      {
        contentAttachment: {
          contentType: 'text/html',
          data: Buffer.from(renderHtml(report), 'utf8').toString('base64'),
          title: report.title,
          creation: options.now,
        },
      },
      ...report.cited.map((reference) => ({ contentReference: reference })),
    ],
  };
}

/**
 * Stable across re-compositions of the same event (receivers deduplicate on it): the episode, the
 * event code and the source version that triggered it; never the time or the Communication id.
 */
export function communicationIdentifier(event: ProgressEvent, snapshot: EpisodeSnapshot): string {
  const source = event.source.reference.replace(/\/_history\/[^/]+$/, '');
  const version = event.sourceVersion ?? event.source.reference.match(/\/_history\/([^/]+)$/)?.[1];
  return `${snapshot.episode.id}/${event.code}/${source}${version ? `/_history/${version}` : ''}`;
}
