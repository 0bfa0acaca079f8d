import type { AccessLabelRule } from '../access/access-labels.js';
import { accessLabels, referrerReference } from '../access/access-labels.js';
import type { WriteModule } from '../rest/unit-of-work.js';
import { ownIdentities } from './own-identities.js';
import { visibleReferences } from './visible-references.js';

/**
 * The rules of isolation that hold for every type: a version keeps the labels its previous
 * version had, a referrer's write is visible to whoever the referrer acts for, and a
 * Practitioner, PractitionerRole or Organization is visible to whoever acts for it.
 */
const everyType: AccessLabelRule = {
  types: ['*'],
  labels(resource, { previous, actsFor }) {
    const own = resource.id ? referrerReference(`${resource.resourceType}/${resource.id}`) : undefined;
    return [...accessLabels(previous), ...(actsFor ?? []), ...(own ? [own] : [])];
  },
};

/**
 * Isolation's part of the write path: the labels above, "naming a resource grants nothing", and a
 * referrer's identities are the practice's to maintain.
 */
export const accessModule: WriteModule = {
  labels: [everyType],
  handlers: [ownIdentities, visibleReferences],
};
