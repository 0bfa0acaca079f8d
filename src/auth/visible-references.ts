import { FhirError, type IssueInput } from '../fhir/errors.js';
import { parseLocalReference } from '../fhir/search/index-rows.js';
import type { UnitOfWork, WriteHandler } from '../rest/unit-of-work.js';

/**
 * Naming a resource grants nothing. A referrer's write may reference only what that referrer can
 * already see through its own view, or what arrives in the same request (a transaction's entries,
 * whose `urn:uuid:` fullUrls the Bundle rewrote to ids the server assigned in this unit). Without
 * this, a referral naming another referrer's `Patient/<id>` as subject would make that Patient
 * one of "the patients of its referrals" (auth/scoped-store.ts), readable and writable.
 *
 * Decided on the resource about to be stored (the validate phase), for every path a client write
 * takes: top level, batch and transaction entries, `$process-message`. What does not name a stored
 * resource is left alone: contained (`#id`), absolute and `urn:` URLs, logical (identifier-only)
 * references (https://hl7.org/fhir/R4/references.html). The refusal reads the same whether the
 * target exists for someone else or for nobody.
 */
/** `urn:`, `http:`… : not a path on this server. */
const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

export const visibleReferences: WriteHandler = {
  name: 'access.visible-references',
  phase: 'validate',
  order: 50,
  types: ['*'],
  actions: ['create', 'update'],
  origins: ['client'],
  async run(uow, change) {
    if (uow.auth?.role !== 'referrer' || !change.resource) return;
    const problems: IssueInput[] = [];
    const seen = new Map<string, boolean>();
    for (const { target, reference, path } of literalReferences(change.resource, change.resourceType)) {
      let allowed = seen.get(target);
      if (allowed === undefined) {
        allowed = await mayReference(uow, target);
        seen.set(target, allowed);
      }
      if (!allowed) {
        problems.push({
          code: 'business-rule',
          message: `${reference} is not a resource this client can reference: it must be one the client can read, or arrive in the same request`,
          expression: path,
        });
      }
    }
    if (problems.length > 0) throw new FhirError(problems[0] as IssueInput, problems.slice(1));
  },
};

async function mayReference(uow: UnitOfWork, target: string): Promise<boolean> {
  const [type, id] = target.split('/') as [string, string];
  if (uow.assignedIds.has(id)) return true;
  if (uow.services.handlers.isPublicReference(target)) return true;
  const visible = await uow.tx.read(type, id);
  return visible !== undefined && !visible.deleted;
}

/**
 * Every `reference` that names a resource on this server, as the search index reads it
 * (fhir/search/index-rows.ts: `Type/id`, versioned or behind a relative path), with its path: the
 * same parse that `_include`, reference searches and Subscription filters act on.
 */
function literalReferences(
  resource: unknown,
  root: string,
): { target: string; reference: string; path: string }[] {
  const out: { target: string; reference: string; path: string }[] = [];
  const visit = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, `${path}[${i}]`));
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    for (const [key, v] of Object.entries(value)) {
      if (key === 'reference' && typeof v === 'string') {
        const local = v.startsWith('#') || ABSOLUTE.test(v) ? undefined : parseLocalReference(v);
        if (local) out.push({ target: `${local.type}/${local.id}`, reference: v, path: `${path}.reference` });
      } else if (key !== 'meta') {
        visit(v, `${path}.${key}`);
      }
    }
  };
  visit(resource, root);
  return out;
}
