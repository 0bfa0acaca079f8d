import type { Bundle, OperationOutcomeIssue } from '@medplum/fhirtypes';

/**
 * Bundle rules the reference validator applies beyond the bdl-* invariants
 * (https://hl7.org/fhir/R4/bundle.html#bundle-unique): a RESTful fullUrl agrees with its resource's
 * type and id; no two entries share a fullUrl (bdl-7 allows it only for different versions);
 * and in a transaction, batch, message or document every `urn:uuid:`/`urn:oid:` reference resolves
 * to an entry of the same Bundle.
 */
export function checkBundleRules(bundle: Bundle): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const push = (text: string, expression: string, code: OperationOutcomeIssue['code'] = 'invalid'): void => {
    issues.push({ severity: 'error', code, details: { text }, expression: [expression] });
  };
  const fullUrls = new Map<string, number>();
  (bundle.entry ?? []).forEach((entry, i) => {
    const where = `Bundle.entry[${i}]`;
    const { fullUrl, resource } = entry ?? {};
    if (fullUrl) {
      const previous = fullUrls.get(fullUrl);
      if (
        previous !== undefined &&
        !(
          resource?.meta?.versionId &&
          bundle.entry?.[previous]?.resource?.meta?.versionId !== resource.meta.versionId
        )
      ) {
        push(`fullUrl ${fullUrl} is used by entries ${previous} and ${i}`, `${where}.fullUrl`, 'duplicate');
      } else {
        fullUrls.set(fullUrl, i);
      }
      const restful = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(fullUrl);
      if (resource && restful && !/^urn:/.test(fullUrl)) {
        if (
          restful[1] !== resource.resourceType ||
          (resource.id !== undefined && restful[2] !== resource.id)
        ) {
          push(
            `fullUrl ${fullUrl} does not match the resource ${resource.resourceType}/${resource.id ?? '(no id)'}`,
            `${where}.fullUrl`,
          );
        }
      }
      if (
        /^urn:uuid:/.test(fullUrl) &&
        !/^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(
          fullUrl,
        )
      ) {
        push(`fullUrl ${fullUrl} is not a valid urn:uuid`, `${where}.fullUrl`, 'value');
      }
    }
  });
  if (['transaction', 'batch', 'message', 'document'].includes(bundle.type ?? '')) {
    (bundle.entry ?? []).forEach((entry, i) => {
      forEachReference(entry?.resource, `Bundle.entry[${i}].resource`, (reference, path) => {
        if (/^urn:(uuid|oid):/.test(reference) && !fullUrls.has(reference)) {
          push(`Reference ${reference} does not resolve to an entry of this Bundle`, path, 'not-found');
        }
      });
    });
  }
  return issues;
}

function forEachReference(
  value: unknown,
  path: string,
  visit: (reference: string, path: string) => void,
): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => forEachReference(v, `${path}[${i}]`, visit));
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') visit(v, `${path}.reference`);
      else forEachReference(v, `${path}.${k}`, visit);
    }
  }
}
