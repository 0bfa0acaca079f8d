import type { EpisodeOfCare, ServiceRequest, Task } from '@medplum/fhirtypes';
import { accessLabels, referrerReference, type AccessLabelRule } from '../access/access-labels.js';

/**
 * Who may see the referral's resources: its requester; its Task and EpisodeOfCare are seen by
 * whoever may see the referral (and a Task by its own requester too).
 */
export const referralLabels: AccessLabelRule[] = [
  {
    types: ['ServiceRequest'],
    labels: (resource) => {
      const requester = referrerReference((resource as ServiceRequest).requester?.reference);
      return requester ? [requester] : [];
    },
  },
  {
    types: ['Task', 'EpisodeOfCare'],
    async labels(resource, { read }) {
      const focus =
        resource.resourceType === 'Task'
          ? (resource as Task).focus?.reference
          : (resource as EpisodeOfCare).referralRequest?.[0]?.reference;
      const [type, id] = focus?.split('/') ?? [];
      const inherited = type === 'ServiceRequest' && id ? accessLabels(await read(type, id)) : [];
      const requester =
        resource.resourceType === 'Task'
          ? referrerReference((resource as Task).requester?.reference)
          : undefined;
      return [...inherited, ...(requester ? [requester] : [])];
    },
  },
];
