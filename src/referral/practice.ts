import type { Organization, Reference } from '@medplum/fhirtypes';
import type { FhirStore } from '../store/fhir-store.js';
import { runWrite, type RestServices } from '../rest/write-context.js';
import { updateResource } from '../rest/write-interactions.js';

export interface PracticeSettings {
  organizationId: string;
  name: string;
}

/**
 * The practice is an Organization under a known id: it manages every episode and owns every
 * referral Task that no other Organization is named for. Created on first start if missing;
 * an existing one (edited by staff) is left as it is.
 */
export async function ensurePractice(
  store: FhirStore,
  services: RestServices,
  settings: PracticeSettings,
): Promise<Reference<Organization>> {
  const reference = { reference: `Organization/${settings.organizationId}`, display: settings.name };
  const current = await store.read('Organization', settings.organizationId);
  if (!current || current.deleted) {
    const organization: Organization = {
      resourceType: 'Organization',
      id: settings.organizationId,
      active: true,
      type: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/organization-type',
              code: 'prov',
              display: 'Healthcare Provider',
            },
          ],
        },
      ],
      name: settings.name,
    };
    await runWrite(store, services, (ctx) =>
      updateResource(ctx, 'Organization', settings.organizationId, organization),
    );
  }
  return reference;
}
