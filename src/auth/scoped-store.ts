import type { Resource, ServiceRequest } from '@medplum/fhirtypes';
import { ACCESS_LABEL_SYSTEM, accessLabels, withLabels } from '../access/access-labels.js';
import { fhirError } from '../fhir/errors.js';
import type { SearchFilter, SearchQuery } from '../fhir/search/search-query.js';
import type {
  FhirStore,
  HistoryRequest,
  StoreReader,
  StoreTransaction,
  StoredVersion,
  WriteRequest,
} from '../store/fhir-store.js';
import type { TransactionViews, WriteTarget } from '../store/write-target.js';
import type { AuthContext } from '../access/client-identity.js';

/**
 * Per-referrer isolation, enforced under every interaction by wrapping the store — a view only:
 * - every version written carries access labels (`meta.security`, access/access-labels.ts), set by
 *   the unit of work from the rules each module declares for its types;
 * - a referrer client sees only resources labelled for someone it acts for, and the patients of
 *   its referrals. Anything else reads as absent (404), and is absent from searches, includes,
 *   history and transactions, because every one of them goes through this store.
 */
export { ACCESS_LABEL_SYSTEM, accessLabels };

/** The store as one client sees it, with both views of a write transaction. */
export type ScopedStore = FhirStore & WriteTarget;

/**
 * The store as seen by one request. Practice and admin clients (and AUTH=off) see everything;
 * `undefined` auth is the server's own view (still labelling what it writes).
 */
export function scopedStore(store: FhirStore, auth: AuthContext | undefined): ScopedStore {
  const restricted = auth?.role === 'referrer' ? auth : undefined;
  const reader = hideAuditTrail(scopedReader(store, restricted), auth);
  const transactionViews = <T>(work: (views: TransactionViews) => Promise<T>): Promise<T> =>
    store.transaction((tx) => {
      // The server's own work inside a client's request (an episode, a Task, a progress update
      // composed from what the practice recorded) needs every resource, still labelled.
      const server = scopedTransaction(tx, undefined);
      // The client's view inside a transaction (Bundle entries, messages) hides the audit trail
      // as its reads outside one do, and never writes it (`appendOnlyAuditTrail`).
      const client = appendOnlyAuditTrail(hideAuditTrailIn(scopedTransaction(tx, restricted), auth));
      return work({ client, server, restricted: restricted !== undefined });
    });
  return {
    ...bindAll(store),
    read: (type, id) => reader.read(type, id),
    vread: (type, id, vid) => reader.vread(type, id, vid),
    search: (query) => reader.search(query),
    readReferences: (refs) => reader.readReferences(refs),
    history: (request) => reader.history(request),
    transaction: (work) => transactionViews((views) => work(views.client)),
    transactionViews,
  };
}

/** AuditEvents are the admins' alone (issue: "searchable by admins only"). */
function hideAuditTrail(inner: StoreReader, auth: AuthContext | undefined): StoreReader {
  if (!auth || auth.role === 'admin') return inner;
  const hidden = (r: { resourceType?: string } | undefined): boolean => r?.resourceType === 'AuditEvent';
  return {
    read: async (type, id) => (type === 'AuditEvent' ? undefined : inner.read(type, id)),
    vread: async (type, id, vid) => (type === 'AuditEvent' ? undefined : inner.vread(type, id, vid)),
    search: async (query) =>
      query.resourceType === 'AuditEvent' ? { resources: [], total: 0 } : inner.search(query),
    readReferences: async (refs) => (await inner.readReferences(refs)).filter((r) => !hidden(r)),
    history: async (request) => {
      if (request.resourceType === 'AuditEvent') return { versions: [], total: 0 };
      const page = await inner.history(request);
      return { ...page, versions: page.versions.filter((v) => v.resourceType !== 'AuditEvent') };
    },
  };
}

/** `hideAuditTrail` for the reads of a transaction view; its writes pass through. */
function hideAuditTrailIn(tx: StoreTransaction, auth: AuthContext | undefined): StoreTransaction {
  if (!auth || auth.role === 'admin') return tx;
  return {
    ...hideAuditTrail(tx, auth),
    lock: (key) => tx.lock(key),
    appendSubscriptionEvent: (s, f, o) => tx.appendSubscriptionEvent(s, f, o),
    write: (request) => tx.write(request),
  };
}

/**
 * AuditEvents are append-only, and only the server appends (its audit trail and delivery worker
 * write through the server's view): no client writes one, admin included, whatever the request or
 * Bundle entry URL said, because every client write of every path reaches the store through this
 * view. An audit log a client can add to or rewrite proves nothing (IHE BALP; ATNA "audit records
 * shall not be modified").
 */
function appendOnlyAuditTrail(tx: StoreTransaction): StoreTransaction {
  return {
    ...tx,
    write: (request: WriteRequest) => {
      if (request.resourceType === 'AuditEvent' || request.resource?.resourceType === 'AuditEvent') {
        return Promise.reject(auditTrailIsAppendOnly());
      }
      return tx.write(request);
    },
  };
}

/** The refusal of a client's AuditEvent write, on every path (also src/auth/auth-middleware.ts). */
export function auditTrailIsAppendOnly(): Error {
  return fhirError(
    'forbidden',
    'AuditEvents are append-only and written by the server only: no client may create, update or delete one',
    'AuditEvent',
  );
}

function bindAll(store: FhirStore): FhirStore {
  return {
    dialect: store.dialect,
    read: store.read.bind(store),
    vread: store.vread.bind(store),
    search: store.search.bind(store),
    readReferences: store.readReferences.bind(store),
    history: store.history.bind(store),
    transaction: store.transaction.bind(store),
    ping: store.ping.bind(store),
    close: store.close.bind(store),
    claimNotifications: store.claimNotifications.bind(store),
    finishNotification: store.finishNotification.bind(store),
    abandonNotifications: store.abandonNotifications.bind(store),
    subscriptionEvents: store.subscriptionEvents.bind(store),
    subscriptionEventCount: store.subscriptionEventCount.bind(store),
    nextNotificationDueMs: store.nextNotificationDueMs.bind(store),
  };
}

function scopedReader(inner: StoreReader, auth: AuthContext | undefined): StoreReader {
  if (!auth) {
    // Bound explicitly: the store's methods live on its prototype, which a spread would drop.
    return {
      read: (type, id) => inner.read(type, id),
      vread: (type, id, vid) => inner.vread(type, id, vid),
      search: (query) => inner.search(query),
      readReferences: (refs) => inner.readReferences(refs),
      history: (request) => inner.history(request),
    };
  }
  const labelFilter: SearchFilter = {
    kind: 'token',
    code: '_security',
    not: false,
    values: auth.actsFor.map((value) => ({ system: ACCESS_LABEL_SYSTEM, value })),
  };
  /** Patients are visible through the referrals that name them as subject. */
  const visiblePatientIds = async (): Promise<string[]> => {
    const referrals = await inner.search({
      resourceType: 'ServiceRequest',
      filters: [labelFilter],
      sort: [],
      count: 10_000,
      offset: 0,
      total: false,
    });
    return [
      ...new Set(
        referrals.resources
          .map((r) => (r as ServiceRequest).subject?.reference?.match(/^Patient\/(.+)$/)?.[1])
          .filter((id): id is string => !!id),
      ),
    ];
  };
  const isVisible = async (resource: Resource | undefined): Promise<boolean> => {
    if (!resource) return false;
    if (accessLabels(resource).some((l) => auth.actsFor.includes(l))) return true;
    return resource.resourceType === 'Patient' && (await visiblePatientIds()).includes(resource.id as string);
  };
  const visibleVersion = async (
    v: StoredVersion | undefined,
    current?: () => Promise<StoredVersion | undefined>,
  ): Promise<StoredVersion | undefined> => {
    if (!v) return undefined;
    const judge = v.resource ?? (await current?.())?.resource;
    return (await isVisible(judge)) ? ownLabelsOnly(v, auth) : undefined;
  };
  return {
    read: async (type, id) => {
      const v = await inner.read(type, id);
      if (v?.deleted) {
        // A deletion is visible only to whoever could see the resource before.
        const before = await inner.vread(type, id, String(Number(v.versionId) - 1));
        return (await isVisible(before?.resource)) ? v : undefined;
      }
      return visibleVersion(v);
    },
    vread: async (type, id, vid) =>
      visibleVersion(await inner.vread(type, id, vid), () => inner.read(type, id)),
    search: async (query: SearchQuery) => {
      assertNoLabelProbe(query, auth);
      const filters: SearchFilter[] =
        query.resourceType === 'Patient'
          ? [{ kind: 'id', values: (await visiblePatientIds()).concat('\u0000none') }]
          : [labelFilter];
      const result = await inner.search({ ...query, filters: [...query.filters, ...filters] });
      return { ...result, resources: result.resources.map((r) => ownLabels(r, auth)) };
    },
    readReferences: async (refs) => {
      const out: Resource[] = [];
      for (const r of await inner.readReferences(refs)) if (await isVisible(r)) out.push(ownLabels(r, auth));
      return out;
    },
    history: async (request: HistoryRequest) => {
      const page = await inner.history({ ...request, count: Math.max(request.count * 4, request.count) });
      const versions: StoredVersion[] = [];
      for (const v of page.versions) {
        if (versions.length >= request.count) break;
        const judge =
          v.resource ?? (await inner.vread(v.resourceType, v.id, String(Number(v.versionId) - 1)))?.resource;
        if (await isVisible(judge)) versions.push(ownLabelsOnly(v, auth));
      }
      return { versions, total: versions.length + request.offset };
    },
  };
}

/**
 * A referrer sees only its own access labels: the others name who else shares a resource (the
 * other referrer of a shared patient), which is the other's data.
 */
function ownLabels(resource: Resource, auth: AuthContext): Resource {
  const labels = accessLabels(resource);
  const own = labels.filter((l) => auth.actsFor.includes(l));
  return own.length === labels.length ? resource : withLabels(resource, own);
}

function ownLabelsOnly(v: StoredVersion, auth: AuthContext): StoredVersion {
  return v.resource ? { ...v, resource: ownLabels(v.resource, auth) } : v;
}

/** `_security` could ask whom else a resource is shared with: a referrer may name only its own labels. */
function assertNoLabelProbe(query: SearchQuery, auth: AuthContext): void {
  const probes = query.filters.some((f) => {
    if (!('code' in f) || f.code !== '_security') return false;
    if (f.kind !== 'token') return true;
    return f.values.some(
      (v) =>
        (v.system === undefined || v.system === ACCESS_LABEL_SYSTEM) &&
        (v.value === undefined ||
          (/^(Practitioner|PractitionerRole|Organization)\//.test(v.value) &&
            !auth.actsFor.includes(v.value)) ||
          (f.not && v.system === ACCESS_LABEL_SYSTEM)),
    );
  });
  if (probes) {
    throw fhirError(
      'invalid-search-parameter',
      '_security may name only the access labels of the client itself',
      '_security',
    );
  }
}

function scopedTransaction(tx: StoreTransaction, restricted: AuthContext | undefined): StoreTransaction {
  const reader = scopedReader(tx, restricted);
  return {
    ...reader,
    lock: (key) => tx.lock(key),
    appendSubscriptionEvent: (s, f, o) => tx.appendSubscriptionEvent(s, f, o),
    write: async (request: WriteRequest) => {
      // What may be changed and how it is labelled are the unit of work's (rest/unit-of-work.ts);
      // the view only keeps a referrer from seeing the others' labels on what it wrote.
      const written = await tx.write(request);
      return restricted ? ownLabelsOnly(written, restricted) : written;
    },
  };
}
