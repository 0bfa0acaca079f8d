import type { Organization, Reference, Resource, ServiceRequest } from '@medplum/fhirtypes';
import { FhirError, fhirError } from '../fhir/errors.js';
import { storeResource } from '../rest/internal-write.js';
import type { UnitOfWork, WriteHandler } from '../rest/unit-of-work.js';
import type { StoredVersion } from '../store/fhir-store.js';
import { PROFILES } from '../validation/profile-registry.js';
import { toFhirError } from '../validation/resource-validator.js';
import { stripUndefined, toEpisodeOfCare, toReferralTask } from './episode-mapping.js';
import { tell } from './notices.js';
import { isReferralToPractice } from './referral-recognition.js';

/**
 * Intake: a new ServiceRequest that is a referral to the practice (referral-recognition.ts) must
 * meet the referral profile, whether or not it claims it, and arrive `active`; once every write of
 * the request is done (its Patient and requester may come later in the same Bundle) its references
 * must resolve, and its EpisodeOfCare and Task are created in the same transaction. Any other
 * ServiceRequest (a food-pantry order in a patient record) is stored as an ordinary resource.
 */
export const INTAKE_ORDER = 10;

export function referralProfileCheck(practice: Reference<Organization>): WriteHandler {
  return {
    name: 'referral.intake-check',
    phase: 'validate',
    order: 5,
    types: ['ServiceRequest'],
    actions: ['create'],
    origins: ['client'],
    run(uow, change) {
      const referral = change.resource as ServiceRequest;
      if (!isReferralToPractice(referral, practice)) return;
      // The write path has just validated it against base R4 (and its claimed profiles); only the
      // referral profile remains.
      const result = uow.services.validator.validate(referral, {
        profiles: [PROFILES.referralServiceRequest],
        profilesOnly: true,
      });
      if (result.failure) {
        throw toFhirError(result, result.failure);
      }
      if (referral.status !== 'active') {
        throw fhirError(
          'business-rule',
          `A referral must arrive with status active, not '${referral.status}'`,
          'ServiceRequest.status',
        );
      }
    },
  };
}

export function referralIntake(defaultPractice: Reference<Organization>): WriteHandler {
  return {
    name: 'referral.intake',
    phase: 'after-store',
    order: 10,
    types: ['ServiceRequest'],
    actions: ['create'],
    origins: ['client'],
    run(uow, change) {
      const written = change.written as StoredVersion;
      if (!isReferralToPractice(written.resource as ServiceRequest, defaultPractice)) return;
      uow.defer('before-commit', () => completeIntake(uow, written, defaultPractice), {
        order: INTAKE_ORDER,
      });
    },
  };
}

async function completeIntake(
  uow: UnitOfWork,
  written: StoredVersion,
  defaultPractice: Reference<Organization>,
): Promise<void> {
  const referral = written.resource as ServiceRequest;
  const problems: FhirError[] = [];
  for (const [field, reference, types] of [
    ['subject', referral.subject, ['Patient']],
    ['requester', referral.requester, ['Practitioner', 'PractitionerRole', 'Organization']],
  ] as const) {
    if (!(await resolves(uow, referral, reference, types))) {
      problems.push(
        fhirError(
          'business-rule',
          `ServiceRequest.${field} ${reference?.reference ?? '(none)'} does not resolve to a ${types.join(' or ')} on this server`,
          `ServiceRequest.${field}`,
        ),
      );
    }
  }
  if (problems.length > 0) {
    const inputs = problems.map((p) => ({
      code: p.code,
      message: p.message,
      expression: p.outcome.issue?.[0]?.expression?.[0],
    }));
    throw new FhirError(inputs[0] as (typeof inputs)[number], inputs.slice(1));
  }
  const practice =
    (referral.performer?.find((p) => p.reference?.startsWith('Organization/')) as
      Reference<Organization> | undefined) ?? defaultPractice;
  const context = { serviceRequestId: written.id, practice, now: uow.now() };
  await storeResource(uow, stripUndefined(toEpisodeOfCare(referral, context)), { built: true });
  const task = await storeResource(uow, stripUndefined(toReferralTask(referral, context)), { built: true });
  tell(uow, `ServiceRequest/${written.id}`, {
    code: 'referral-received',
    source: { reference: `Task/${task.id}` },
    sourceVersion: task.versionId,
  });
}

async function resolves(
  uow: UnitOfWork,
  owner: Resource & { contained?: Resource[] },
  reference: Reference | undefined,
  types: readonly string[],
): Promise<boolean> {
  const ref = reference?.reference;
  if (!ref) return false;
  if (ref.startsWith('#')) {
    return (owner.contained ?? []).some((c) => `#${c.id}` === ref && types.includes(c.resourceType));
  }
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(ref);
  if (!m || !types.includes(m[1] as string)) return false;
  const target = await uow.tx.read(m[1] as string, m[2] as string);
  return target !== undefined && !target.deleted;
}
