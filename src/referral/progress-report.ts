import type { Communication, EpisodeOfCare } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/errors.js';
import type { UnitOfWork } from '../rest/unit-of-work.js';
import { recordProgress } from './progress-recorder.js';

/** A progress report on request (the `$progress-report` operation on the episode), composed from what is stored now. */
export async function requestProgressReport(uow: UnitOfWork, episodeId: string): Promise<Communication> {
  const episode = (await uow.tx.read('EpisodeOfCare', episodeId))?.resource as EpisodeOfCare | undefined;
  const referral = episode?.referralRequest?.[0]?.reference;
  if (!episode || !referral) {
    throw fhirError('resource-not-found', `EpisodeOfCare/${episodeId} is not a referral episode`);
  }
  const communication = await recordProgress(uow, referral.split('/')[1] as string, {
    code: 'progress-report',
    occurredAt: uow.now(),
    source: { reference: `EpisodeOfCare/${episodeId}` },
    // Each request is its own report.
    sourceVersion: uow.now(),
  });
  if (!communication) {
    throw fhirError(
      'business-rule',
      'The referrer does not receive progress reports, or the episode is incomplete',
    );
  }
  return communication;
}
