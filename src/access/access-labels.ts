import type { Coding, Resource } from '@medplum/fhirtypes';

/**
 * Per-referrer isolation rests on access labels in `meta.security` (system ACCESS_LABEL_SYSTEM):
 * the referrer references (Practitioner/Organization/PractitionerRole) allowed to see a version.
 * The unit of work labels every version it writes from the rules modules declare per resource
 * type (who a referral is from, whom a Communication is to); the access view (auth/scoped-store.ts)
 * then shows a referrer only what carries one of its labels. A client never sets labels itself:
 * the labels it sends are replaced.
 */
export const ACCESS_LABEL_SYSTEM = 'https://ptreferral.dev/fhir/CodeSystem/referrer-access';

/** What a label rule may read: through the client's view for a client's write, so a referrer
 * inherits labels only from what it can see. */
export type LabelReader = (resourceType: string, id: string) => Promise<Resource | undefined>;

export interface AccessLabelRule {
  /** Resource types, or `*` for every type. */
  types: readonly string[];
  labels(
    resource: Resource,
    context: { previous: Resource | undefined; actsFor: readonly string[] | undefined; read: LabelReader },
  ): Promise<readonly string[]> | readonly string[];
}

type Labelled = Resource & { meta?: { security?: Coding[] } };

export function accessLabels(resource: Resource | undefined): string[] {
  return ((resource as Labelled | undefined)?.meta?.security ?? [])
    .filter((c) => c.system === ACCESS_LABEL_SYSTEM)
    .map((c) => c.code as string);
}

/** The resource with exactly `labels` as its access labels (other security labels kept). */
export function withLabels(resource: Resource, labels: readonly string[]): Resource {
  const meta = (resource as Labelled).meta ?? {};
  const others = (meta.security ?? []).filter((c) => c.system !== ACCESS_LABEL_SYSTEM);
  const security = [...others, ...labels.map((code) => ({ system: ACCESS_LABEL_SYSTEM, code }))];
  // Without labels, no stale ones: `meta.security` goes unless other labels remain.
  const { security: _previous, ...rest } = meta;
  return { ...resource, meta: { ...rest, ...(security.length ? { security } : {}) } } as Resource;
}

/** Only Practitioner, PractitionerRole and Organization references name someone a client acts for. */
export function referrerReference(reference: string | undefined): string | undefined {
  return reference && /^(Practitioner|PractitionerRole|Organization)\//.test(reference)
    ? reference
    : undefined;
}
