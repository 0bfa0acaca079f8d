import type { Communication } from '@medplum/fhirtypes';
import { referrerReference, type AccessLabelRule } from '../access/access-labels.js';

/** A Communication is seen by its recipients. */
export const communicationLabels: AccessLabelRule = {
  types: ['Communication'],
  labels: (resource) =>
    ((resource as Communication).recipient ?? [])
      .map((r) => referrerReference(r.reference))
      .filter((r): r is string => r !== undefined),
};
