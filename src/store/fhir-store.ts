import type { Resource } from '@medplum/fhirtypes';
import type { SearchQuery } from '../fhir/search/search-query.js';

/**
 * The storage contract every dialect (SQLite now, PostgreSQL later) implements. It knows nothing
 * of HTTP or FHIR interaction rules: it stores versions, keeps search indexes, and answers
 * compiled queries. The rules (If-Match, conditional create, transactions) live in `rest/` and are
 * expressed through `transaction`, which gives a serialised view of the data.
 */
export interface StoredVersion {
  resourceType: string;
  id: string;
  versionId: string;
  lastUpdated: string;
  deleted: boolean;
  /** Absent for a deletion marker. */
  resource?: Resource;
}

export interface WriteRequest {
  resourceType: string;
  id: string;
  /** The resource to store; `meta.versionId` and `meta.lastUpdated` are overwritten by the store. */
  resource?: Resource;
  /** True to write a deletion marker (soft delete: history and vread keep working). */
  deleted?: boolean;
  // No search index here: the store computes it from what it stores (issue 10), so an index can
  // never disagree with the version it belongs to.
}

export interface HistoryRequest {
  resourceType?: string;
  id?: string;
  /** ISO instant; only versions with lastUpdated at or after it (R4 http.html#history). */
  since?: string;
  /** ISO instant; only versions with lastUpdated at or before it. */
  at?: string;
  count: number;
  offset: number;
}

export interface HistoryPage {
  versions: StoredVersion[];
  total: number;
}

export interface SearchResult {
  resources: Resource[];
  total?: number;
}

export interface StoreReader {
  read(resourceType: string, id: string): Promise<StoredVersion | undefined>;
  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined>;
  search(query: SearchQuery): Promise<SearchResult>;
  /** Current, non-deleted resources by `Type/id` reference; missing ones are left out. */
  readReferences(references: string[]): Promise<Resource[]>;
  history(request: HistoryRequest): Promise<HistoryPage>;
}

/** One announced event of a subscription: its gap-free number and the resource version it is about. */
export interface SubscriptionEvent {
  subscriptionId: string;
  eventNumber: number;
  /** `Type/id/_history/vid` of the resource the event is about. */
  focus: string;
  occurredAt: string;
}

/** A notification waiting in the outbox (or being delivered) for one subscription event. */
export interface OutboxNotification extends SubscriptionEvent {
  id: number;
  attempts: number;
  /** When the first attempt was queued (ms), for the give-up deadline. */
  createdMs: number;
}

export type NotificationResult =
  | { status: 'delivered'; atMs: number }
  | { status: 'retry'; nextAttemptMs: number; error: string }
  | { status: 'failed'; error: string };

export interface StoreTransaction extends StoreReader {
  /**
   * Writes a new version; the store assigns versionId (previous + 1) and lastUpdated, and indexes
   * the stored resource for search (a deletion marker has no index rows).
   */
  write(request: WriteRequest): Promise<StoredVersion>;
  /**
   * Serialises transactions that share `key` until this transaction ends. Conditional create uses
   * it so that two concurrent identical requests cannot both see "no match". SQLite already
   * serialises every write transaction; PostgreSQL takes an advisory transaction lock.
   */
  lock(key: string): Promise<void>;
  /**
   * Records an event for a subscription and queues its notification (the outbox), in this
   * transaction: the event exists, and will be delivered, exactly when the write commits.
   * Answers the event's number, gap-free per subscription.
   */
  appendSubscriptionEvent(subscriptionId: string, focus: string, occurredAt: string): Promise<number>;
}

/** The delivery worker's view of the outbox. */
export interface OutboxStore {
  /**
   * Leases up to `limit` notifications due at `nowMs` for `leaseMs`; a lease that runs out (a
   * worker died) makes the notification due again, so none is lost.
   */
  claimNotifications(nowMs: number, limit: number, leaseMs: number): Promise<OutboxNotification[]>;
  finishNotification(id: number, result: NotificationResult): Promise<void>;
  /** Gives up every pending notification of a subscription (it is in error). Answers how many. */
  abandonNotifications(subscriptionId: string, error: string): Promise<number>;
  /** Events numbered from..to (inclusive) of a subscription, oldest first, for `$events`. */
  subscriptionEvents(subscriptionId: string, from: number, to: number): Promise<SubscriptionEvent[]>;
  subscriptionEventCount(subscriptionId: string): Promise<number>;
  /** The earliest time any pending notification is due, for the worker's sleep. */
  nextNotificationDueMs(): Promise<number | undefined>;
}

export interface FhirStore extends StoreReader, OutboxStore {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `work` atomically: all its writes commit together (durably) or none do. A dialect may run
   * `work` more than once (PostgreSQL retries serialisation failures and deadlocks), so `work` must
   * have no effect outside the transaction until it returns.
   */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  /** Resolves when the database answers; used by `/readyz`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What a store counts about its own work, for tests and diagnostics. */
export interface StoreStats {
  /**
   * Search index computations since the store was opened: one per version written that is not a
   * deletion marker. A PostgreSQL attempt that conflicts and re-runs (see `transaction`) computes
   * again for the version it then stores, so there the count can exceed the stored versions.
   */
  readonly indexComputations: number;
}

/**
 * A store that reports its counts. Both dialects implement it; it is not part of FhirStore, so
 * wrappers of a store (such as the per-request scoped view) need not forward it.
 */
export interface ObservableStore extends FhirStore {
  readonly stats: StoreStats;
}
