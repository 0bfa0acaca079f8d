import type { Organization, Reference } from '@medplum/fhirtypes';
import type { FhirStore } from '../store/fhir-store.js';
import { scopedStore } from '../auth/scoped-store.js';
import { runUnitOfWork, type RestServices } from '../rest/unit-of-work.js';
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
  // Checked inside the write transaction, so instances starting together write it once.
  await runUnitOfWork(scopedStore(store, undefined), services, async (ctx) => {
    await ctx.tx.lock(`ensure-practice:${settings.organizationId}`);
    const current = await ctx.tx.read('Organization', settings.organizationId);
    if (current && !current.deleted) return;
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
    await updateResource(ctx, 'Organization', settings.organizationId, organization);
  });
  return reference;
}
