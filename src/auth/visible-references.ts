import { FhirError, type IssueInput } from '../fhir/errors.js';
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
const LITERAL = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

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
    for (const { reference, path } of literalReferences(change.resource, change.resourceType)) {
      let allowed = seen.get(reference);
      if (allowed === undefined) {
        allowed = await mayReference(uow, reference);
        seen.set(reference, allowed);
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

async function mayReference(uow: UnitOfWork, reference: string): Promise<boolean> {
  const [, type, id] = LITERAL.exec(reference) as RegExpExecArray;
  if (uow.assignedIds.has(id as string)) return true;
  if (uow.services.handlers.isPublicReference(`${type}/${id}`)) return true;
  const visible = await uow.tx.read(type as string, id as string);
  return visible !== undefined && !visible.deleted;
}

/** Every `reference` that names a stored resource as `Type/id` (optionally versioned), with its path. */
function literalReferences(resource: unknown, root: string): { reference: string; path: string }[] {
  const out: { reference: string; path: string }[] = [];
  const visit = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, `${path}[${i}]`));
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    for (const [key, v] of Object.entries(value)) {
      if (key === 'reference' && typeof v === 'string' && LITERAL.test(v)) {
        out.push({ reference: v, path: `${path}.reference` });
      } else if (key !== 'meta') {
        visit(v, `${path}.${key}`);
      }
    }
  };
  visit(resource, root);
  return out;
}
