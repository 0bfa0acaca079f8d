import type Database from 'better-sqlite3';
import type { Resource } from '@medplum/fhirtypes';
import type { SearchIndexRows } from '../../fhir/search/index-rows.js';
import type { SearchQuery } from '../../fhir/search/search-query.js';
import type {
  HistoryPage,
  HistoryRequest,
  NotificationResult,
  OutboxNotification,
  SearchResult,
  StoreReader,
  StoreTransaction,
  StoredVersion,
  SubscriptionEvent,
  WriteRequest,
} from '../fhir-store.js';
import { INDEX_TABLE_SPECS, indexTuples } from '../shared/index-tables.js';
import { errorText, notificationUpdate, type NotificationUpdate } from '../shared/outbox.js';
import { ReaderThrough } from '../shared/reader-through.js';
import { StatementCache } from './statement-cache.js';
import {
  historyPage,
  referencedResources,
  searchResources,
  versionById,
  versionColumns,
  type ReadDialect,
} from '../shared/reads.js';
import {
  toOutboxNotification,
  toStoredVersion,
  toSubscriptionEvent,
  type EventRow,
  type OutboxRow,
  type VersionRow,
} from '../shared/rows.js';
import { versionValues, writtenVersion, type CurrentVersion, type Versioning } from '../shared/versioning.js';

/**
 * The SQLite dialect's statements over one connection: the shared logic of the store's reads,
 * writes and outbox over this dialect's SQL.
 */
type Db = Database.Database;

const DIALECT: ReadDialect = { content: 'content', count: 'COUNT(*)', explicitNullOrder: false };
const COLUMNS = versionColumns(DIALECT);

const NOTIFICATION_UPDATES: Record<NotificationUpdate['kind'], string> = {
  delivered:
    "UPDATE notification_outbox SET status = 'delivered', delivered_ms = ?, lease_until_ms = NULL WHERE id = ?",
  retry:
    'UPDATE notification_outbox SET next_attempt_ms = ?, last_error = ?, lease_until_ms = NULL WHERE id = ?',
  failed:
    "UPDATE notification_outbox SET status = 'failed', last_error = ?, lease_until_ms = NULL WHERE id = ?",
};

export class SqliteTransaction extends ReaderThrough implements StoreTransaction {
  constructor(private readonly q: SqliteQueries) {
    super();
  }

  protected override async reading<T>(work: (reader: StoreReader) => Promise<T>): Promise<T> {
    return work(this.q);
  }
  async write(request: WriteRequest): Promise<StoredVersion> {
    return this.q.write(request);
  }
  async lock(_key: string): Promise<void> {
    // Nothing to do: BEGIN IMMEDIATE already serialises every write transaction.
  }
  async appendSubscriptionEvent(subscriptionId: string, focus: string, occurredAt: string): Promise<number> {
    return this.q.appendEvent(subscriptionId, focus, occurredAt);
  }
}

/** Prepared statements over one connection. Synchronous underneath: better-sqlite3 is. */
export class SqliteQueries implements StoreReader {
  private readonly statements: StatementCache;

  constructor(
    private readonly db: Db,
    private readonly versions: Versioning,
  ) {
    this.statements = new StatementCache((sql) => this.db.prepare(sql));
  }

  private stmt(sql: string): Database.Statement {
    return this.statements.get(sql);
  }

  preparedStatementCount(): number {
    return this.statements.size;
  }

  private readonly rows = <R>(sql: string, params: unknown[]): R[] => this.stmt(sql).all(...params) as R[];

  async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const row = this.stmt(`SELECT ${COLUMNS} FROM resource WHERE resource_type = ? AND id = ?`).get(
      resourceType,
      id,
    ) as VersionRow | undefined;
    return row && toStoredVersion(row);
  }

  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    return versionById(
      versionId,
      (version) =>
        this.stmt(
          `SELECT ${COLUMNS} FROM resource_version WHERE resource_type = ? AND id = ? AND version_id = ?`,
        ).get(resourceType, id, version) as VersionRow | undefined,
    );
  }

  search(query: SearchQuery): Promise<SearchResult> {
    return searchResources(query, DIALECT, this.rows);
  }

  readReferences(references: string[]): Promise<Resource[]> {
    return referencedResources(references, (targets) => {
      const select = this.stmt(
        'SELECT content FROM resource WHERE resource_type = ? AND id = ? AND deleted = 0',
      );
      const found = new Map<string, string>();
      for (const { type, id } of targets) {
        const row = select.get(type, id) as { content: string } | undefined;
        if (row) {
          found.set(`${type}/${id}`, row.content);
        }
      }
      return found;
    });
  }

  history(request: HistoryRequest): Promise<HistoryPage> {
    return historyPage(request, DIALECT, this.rows);
  }

  appendEvent(subscriptionId: string, focus: string, occurredAt: string): number {
    const next = this.eventCount(subscriptionId) + 1;
    this.stmt(
      'INSERT INTO subscription_event (subscription_id, event_number, focus, occurred_at) VALUES (?, ?, ?, ?)',
    ).run(subscriptionId, next, focus, occurredAt);
    const now = Date.now();
    this.stmt(
      "INSERT INTO notification_outbox (subscription_id, event_number, status, created_ms, next_attempt_ms) VALUES (?, ?, 'pending', ?, ?)",
    ).run(subscriptionId, next, now, now);
    return next;
  }

  /** Runs inside an IMMEDIATE transaction: selecting and leasing cannot interleave with another claim. */
  claim(nowMs: number, limit: number, leaseMs: number): OutboxNotification[] {
    const rows = this.stmt(
      `SELECT o.id, o.subscription_id, o.event_number, o.attempts + 1 AS attempts, o.created_ms, e.focus, e.occurred_at
       FROM notification_outbox o JOIN subscription_event e ON e.subscription_id = o.subscription_id AND e.event_number = o.event_number
       WHERE o.status = 'pending' AND o.next_attempt_ms <= ? AND (o.lease_until_ms IS NULL OR o.lease_until_ms <= ?)
       ORDER BY o.next_attempt_ms, o.id LIMIT ?`,
    ).all(nowMs, nowMs, limit) as OutboxRow[];
    const lease = this.stmt(
      'UPDATE notification_outbox SET lease_until_ms = ?, attempts = attempts + 1 WHERE id = ?',
    );
    for (const row of rows) {
      lease.run(nowMs + leaseMs, row.id);
    }
    return rows.map(toOutboxNotification);
  }

  finish(id: number, result: NotificationResult): void {
    const update = notificationUpdate(id, result);
    this.stmt(NOTIFICATION_UPDATES[update.kind]).run(...update.params);
  }

  abandon(subscriptionId: string, error: string): number {
    return this.stmt(
      "UPDATE notification_outbox SET status = 'failed', last_error = ?, lease_until_ms = NULL WHERE subscription_id = ? AND status = 'pending'",
    ).run(errorText(error), subscriptionId).changes;
  }

  events(subscriptionId: string, from: number, to: number): SubscriptionEvent[] {
    const rows = this.stmt(
      'SELECT subscription_id, event_number, focus, occurred_at FROM subscription_event WHERE subscription_id = ? AND event_number BETWEEN ? AND ? ORDER BY event_number',
    ).all(subscriptionId, from, to) as EventRow[];
    return rows.map(toSubscriptionEvent);
  }

  eventCount(subscriptionId: string): number {
    return (
      this.stmt(
        'SELECT COALESCE(MAX(event_number), 0) AS n FROM subscription_event WHERE subscription_id = ?',
      ).get(subscriptionId) as { n: number }
    ).n;
  }

  nextDue(): number | undefined {
    const row = this.stmt(
      "SELECT MIN(CASE WHEN lease_until_ms IS NOT NULL AND lease_until_ms > next_attempt_ms THEN lease_until_ms ELSE next_attempt_ms END) AS due FROM notification_outbox WHERE status = 'pending'",
    ).get() as { due: number | null };
    return row.due ?? undefined;
  }

  write(request: WriteRequest): StoredVersion {
    const { resourceType, id } = request;
    const current = this.stmt(
      'SELECT version_id AS versionId, last_updated_ms AS lastUpdatedMs FROM resource WHERE resource_type = ? AND id = ?',
    ).get(resourceType, id) as CurrentVersion | undefined;
    const version = this.versions.next(request, current);
    const values = versionValues(version);
    this.stmt(
      'INSERT INTO resource_version (resource_type, id, version_id, last_updated, last_updated_ms, deleted, content) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(...values);
    this.stmt(
      `INSERT INTO resource (resource_type, id, version_id, last_updated, last_updated_ms, deleted, content) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (resource_type, id) DO UPDATE SET version_id = excluded.version_id, last_updated = excluded.last_updated,
       last_updated_ms = excluded.last_updated_ms, deleted = excluded.deleted, content = excluded.content`,
    ).run(...values);
    this.replaceIndex(resourceType, id, version.index);
    return writtenVersion(version);
  }

  /** The resource's index rows become those of this version (none for a deletion marker). */
  private replaceIndex(resourceType: string, id: string, index: SearchIndexRows | undefined): void {
    for (const spec of INDEX_TABLE_SPECS) {
      this.stmt(`DELETE FROM ${spec.table} WHERE resource_type = ? AND id = ?`).run(resourceType, id);
      if (!index) {
        continue;
      }
      const columns = spec.columns.map((c) => c.column);
      const insert = this.stmt(
        `INSERT INTO ${spec.table} (resource_type, id, code, ${columns.join(', ')}) VALUES (?, ?, ?, ${columns.map(() => '?').join(', ')})`,
      );
      for (const tuple of indexTuples(index, spec)) {
        insert.run(resourceType, id, ...tuple);
      }
    }
  }
}
