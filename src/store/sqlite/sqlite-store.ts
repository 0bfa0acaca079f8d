import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import type { SearchIndexRows } from '../../fhir/search/index-rows.js';
import type { SearchQuery } from '../../fhir/search/search-query.js';
import { AsyncMutex } from '../async-mutex.js';
import type {
  FhirStore,
  NotificationResult,
  OutboxNotification,
  SubscriptionEvent,
  HistoryPage,
  HistoryRequest,
  SearchResult,
  StoreTransaction,
  StoredVersion,
  WriteRequest,
} from '../fhir-store.js';
import { buildOrderBy, buildWhere } from '../sql/search-sql.js';
import { MIGRATIONS } from './schema.js';

type Db = Database.Database;

interface VersionRow {
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: string;
  deleted: number;
  content: string | null;
}

/**
 * The embedded store: better-sqlite3 in WAL mode with `synchronous=FULL`, so a commit is on disk
 * before the HTTP answer leaves (https://www.sqlite.org/pragma.html#pragma_synchronous).
 * Writes go through one connection, one transaction at a time (SQLite has a single writer);
 * reads use a second connection and see the last committed state.
 */
export class SqliteStore implements FhirStore {
  readonly dialect = 'sqlite' as const;
  private readonly writer: Db;
  private readonly reader: Db;
  private readonly writeLock = new AsyncMutex();
  private readonly readerQueries: SqliteQueries;
  private readonly writerQueries: SqliteQueries;
  private readonly inMemory: boolean;

  constructor(path: string) {
    this.inMemory = path === ':memory:';
    if (!this.inMemory) {
      mkdirSync(dirname(path), { recursive: true });
    }
    this.writer = openConnection(path);
    migrate(this.writer);
    // Keeps the planner's statistics current for a long-lived connection (SQLite ≥ 3.46).
    // See: https://www.sqlite.org/pragma.html#pragma_optimize
    this.writer.pragma('optimize=0x10002');
    // An in-memory database exists only on its own connection, so it reads through the writer
    // (and takes the write lock, so it never sees another request's uncommitted work).
    this.reader = this.inMemory ? this.writer : openConnection(path, true);
    this.writerQueries = new SqliteQueries(this.writer);
    this.readerQueries = this.inMemory ? this.writerQueries : new SqliteQueries(this.reader);
  }

  private async readWith<T>(work: (q: SqliteQueries) => T): Promise<T> {
    if (this.inMemory) {
      return this.writeLock.run(async () => work(this.readerQueries));
    }
    return work(this.readerQueries);
  }

  read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    return this.readWith((q) => q.read(resourceType, id));
  }

  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    return this.readWith((q) => q.vread(resourceType, id, versionId));
  }

  search(query: SearchQuery): Promise<SearchResult> {
    return this.readWith((q) => q.search(query));
  }

  readReferences(references: string[]): Promise<Resource[]> {
    return this.readWith((q) => q.readReferences(references));
  }

  history(request: HistoryRequest): Promise<HistoryPage> {
    return this.readWith((q) => q.history(request));
  }

  claimNotifications(nowMs: number, limit: number, leaseMs: number): Promise<OutboxNotification[]> {
    // A claim is a write (the lease), so it takes the write lock like any transaction.
    return this.writeLock.run(async () =>
      this.writer.transaction(() => this.writerQueries.claim(nowMs, limit, leaseMs)).immediate(),
    );
  }

  finishNotification(id: number, result: NotificationResult): Promise<void> {
    return this.writeLock.run(async () => this.writerQueries.finish(id, result));
  }

  abandonNotifications(subscriptionId: string, error: string): Promise<number> {
    return this.writeLock.run(async () => this.writerQueries.abandon(subscriptionId, error));
  }

  subscriptionEvents(subscriptionId: string, from: number, to: number): Promise<SubscriptionEvent[]> {
    return this.readWith((q) => q.events(subscriptionId, from, to));
  }

  subscriptionEventCount(subscriptionId: string): Promise<number> {
    return this.readWith((q) => q.eventCount(subscriptionId));
  }

  nextNotificationDueMs(): Promise<number | undefined> {
    return this.readWith((q) => q.nextDue());
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.writeLock.run(async () => {
      // IMMEDIATE takes the write lock up front, so reads inside the transaction cannot be
      // invalidated by another process writing between our read and our write.
      this.writer.exec('BEGIN IMMEDIATE');
      const tx = new SqliteTransaction(this.writerQueries);
      try {
        const result = await work(tx);
        this.writer.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.writer.inTransaction) {
          this.writer.exec('ROLLBACK');
        }
        throw err;
      }
    });
  }

  async ping(): Promise<void> {
    this.reader.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    await this.writeLock.run(async () => {
      if (this.reader !== this.writer) {
        this.reader.close();
      }
      this.writer.close();
    });
  }
}

function openConnection(path: string, readonly = false): Db {
  const db = new Database(path, { readonly: false });
  if (path !== ':memory:') {
    db.pragma('journal_mode = WAL');
  }
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  if (readonly) {
    db.pragma('query_only = ON');
  }
  return db;
}

function migrate(db: Db): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)',
  );
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
      (r) => r.version,
    ),
  );
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) {
      continue;
    }
    db.transaction(() => {
      for (const statement of migration.statements) {
        db.exec(statement);
      }
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(
        migration.version,
        new Date().toISOString(),
      );
    }).immediate();
  }
}

class SqliteTransaction implements StoreTransaction {
  constructor(private readonly q: SqliteQueries) {}

  async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    return this.q.read(resourceType, id);
  }
  async vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    return this.q.vread(resourceType, id, versionId);
  }
  async search(query: SearchQuery): Promise<SearchResult> {
    return this.q.search(query);
  }
  async readReferences(references: string[]): Promise<Resource[]> {
    return this.q.readReferences(references);
  }
  async history(request: HistoryRequest): Promise<HistoryPage> {
    return this.q.history(request);
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

/** Prepared statements over one connection. Synchronous: better-sqlite3 is. */
class SqliteQueries {
  private readonly statements = new Map<string, Database.Statement>();
  private lastMs = 0;

  constructor(private readonly db: Db) {}

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  read(resourceType: string, id: string): StoredVersion | undefined {
    const row = this.stmt(
      'SELECT resource_type, id, version_id, last_updated, deleted, content FROM resource WHERE resource_type = ? AND id = ?',
    ).get(resourceType, id) as VersionRow | undefined;
    return row && toStoredVersion(row);
  }

  vread(resourceType: string, id: string, versionId: string): StoredVersion | undefined {
    if (!/^\d{1,15}$/.test(versionId)) {
      return undefined;
    }
    const row = this.stmt(
      'SELECT resource_type, id, version_id, last_updated, deleted, content FROM resource_version WHERE resource_type = ? AND id = ? AND version_id = ?',
    ).get(resourceType, id, Number(versionId)) as VersionRow | undefined;
    return row && toStoredVersion(row);
  }

  search(query: SearchQuery): SearchResult {
    const where = buildWhere(query);
    const order = buildOrderBy(query);
    const rows =
      query.count === 0
        ? []
        : (this.stmt(
            `SELECT r.content FROM resource r WHERE ${where.sql} ORDER BY ${order.sql} LIMIT ? OFFSET ?`,
          ).all(...where.params, ...order.params, query.count, query.offset) as { content: string }[]);
    const resources = rows.map((r) => JSON.parse(r.content) as Resource);
    if (!query.total) {
      return { resources };
    }
    const total =
      query.offset === 0 && resources.length < query.count && query.count > 0
        ? resources.length
        : (
            this.stmt(`SELECT COUNT(*) AS n FROM resource r WHERE ${where.sql}`).get(...where.params) as {
              n: number;
            }
          ).n;
    return { resources, total };
  }

  readReferences(references: string[]): Resource[] {
    const out: Resource[] = [];
    const select = this.stmt(
      'SELECT content FROM resource WHERE resource_type = ? AND id = ? AND deleted = 0',
    );
    for (const reference of new Set(references)) {
      const [type, id] = reference.split('/');
      const row = select.get(type, id) as { content: string } | undefined;
      if (row) {
        out.push(JSON.parse(row.content) as Resource);
      }
    }
    return out;
  }

  history(request: HistoryRequest): HistoryPage {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (request.resourceType) {
      clauses.push('resource_type = ?');
      params.push(request.resourceType);
    }
    if (request.id) {
      clauses.push('id = ?');
      params.push(request.id);
    }
    if (request.since) {
      clauses.push('last_updated_ms >= ?');
      params.push(Date.parse(request.since));
    }
    if (request.at) {
      clauses.push('last_updated_ms <= ?');
      params.push(Date.parse(request.at));
    }
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = this.stmt(
      `SELECT resource_type, id, version_id, last_updated, deleted, content FROM resource_version ${where} ORDER BY seq DESC LIMIT ? OFFSET ?`,
    ).all(...params, request.count, request.offset) as VersionRow[];
    const total = (
      this.stmt(`SELECT COUNT(*) AS n FROM resource_version ${where}`).get(...params) as { n: number }
    ).n;
    return { versions: rows.map(toStoredVersion), total };
  }

  appendEvent(subscriptionId: string, focus: string, occurredAt: string): number {
    const next =
      (
        this.stmt(
          'SELECT COALESCE(MAX(event_number), 0) AS n FROM subscription_event WHERE subscription_id = ?',
        ).get(subscriptionId) as { n: number }
      ).n + 1;
    this.stmt(
      'INSERT INTO subscription_event (subscription_id, event_number, focus, occurred_at) VALUES (?, ?, ?, ?)',
    ).run(subscriptionId, next, focus, occurredAt);
    const now = Date.now();
    this.stmt(
      "INSERT INTO notification_outbox (subscription_id, event_number, status, created_ms, next_attempt_ms) VALUES (?, ?, 'pending', ?, ?)",
    ).run(subscriptionId, next, now, now);
    return next;
  }

  claim(nowMs: number, limit: number, leaseMs: number): OutboxNotification[] {
    const rows = this.stmt(
      `SELECT o.id, o.subscription_id, o.event_number, o.attempts, o.created_ms, e.focus, e.occurred_at
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
    return rows.map((row) => ({
      id: row.id,
      subscriptionId: row.subscription_id,
      eventNumber: row.event_number,
      attempts: row.attempts + 1,
      createdMs: row.created_ms,
      focus: row.focus,
      occurredAt: row.occurred_at,
    }));
  }

  finish(id: number, result: NotificationResult): void {
    if (result.status === 'delivered') {
      this.stmt(
        "UPDATE notification_outbox SET status = 'delivered', delivered_ms = ?, lease_until_ms = NULL WHERE id = ?",
      ).run(result.atMs, id);
    } else if (result.status === 'retry') {
      this.stmt(
        'UPDATE notification_outbox SET next_attempt_ms = ?, last_error = ?, lease_until_ms = NULL WHERE id = ?',
      ).run(result.nextAttemptMs, result.error.slice(0, 500), id);
    } else {
      this.stmt(
        "UPDATE notification_outbox SET status = 'failed', last_error = ?, lease_until_ms = NULL WHERE id = ?",
      ).run(result.error.slice(0, 500), id);
    }
  }

  abandon(subscriptionId: string, error: string): number {
    return this.stmt(
      "UPDATE notification_outbox SET status = 'failed', last_error = ?, lease_until_ms = NULL WHERE subscription_id = ? AND status = 'pending'",
    ).run(error.slice(0, 500), subscriptionId).changes;
  }

  events(subscriptionId: string, from: number, to: number): SubscriptionEvent[] {
    const rows = this.stmt(
      'SELECT subscription_id, event_number, focus, occurred_at FROM subscription_event WHERE subscription_id = ? AND event_number BETWEEN ? AND ? ORDER BY event_number',
    ).all(subscriptionId, from, to) as {
      subscription_id: string;
      event_number: number;
      focus: string;
      occurred_at: string;
    }[];
    return rows.map((r) => ({
      subscriptionId: r.subscription_id,
      eventNumber: r.event_number,
      focus: r.focus,
      occurredAt: r.occurred_at,
    }));
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
      'SELECT version_id, last_updated_ms FROM resource WHERE resource_type = ? AND id = ?',
    ).get(resourceType, id) as { version_id: number; last_updated_ms: number } | undefined;
    const versionId = (current?.version_id ?? 0) + 1;
    // lastUpdated never goes backwards, even if the clock does, so `_since` polling loses nothing.
    const ms = Math.max(Date.now(), this.lastMs, current?.last_updated_ms ?? 0);
    this.lastMs = ms;
    const lastUpdated = new Date(ms).toISOString();
    const deleted = request.deleted === true;
    let content: string | null = null;
    let resource: Resource | undefined;
    if (!deleted) {
      if (!request.resource) {
        throw new Error('write without a resource');
      }
      // resourceType, id and meta lead, as FHIR JSON is conventionally written.
      resource = {
        resourceType: request.resource.resourceType,
        id,
        meta: { ...request.resource.meta, versionId: String(versionId), lastUpdated },
        ...withoutIdentity(request.resource),
      } as Resource;
      content = JSON.stringify(resource);
    }
    this.stmt(
      'INSERT INTO resource_version (resource_type, id, version_id, last_updated, last_updated_ms, deleted, content) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(resourceType, id, versionId, lastUpdated, ms, deleted ? 1 : 0, content);
    this.stmt(
      `INSERT INTO resource (resource_type, id, version_id, last_updated, last_updated_ms, deleted, content) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (resource_type, id) DO UPDATE SET version_id = excluded.version_id, last_updated = excluded.last_updated,
       last_updated_ms = excluded.last_updated_ms, deleted = excluded.deleted, content = excluded.content`,
    ).run(resourceType, id, versionId, lastUpdated, ms, deleted ? 1 : 0, content);
    this.replaceIndex(resourceType, id, deleted ? undefined : request.index);
    return { resourceType, id, versionId: String(versionId), lastUpdated, deleted, resource };
  }

  private replaceIndex(resourceType: string, id: string, index: SearchIndexRows | undefined): void {
    for (const table of [
      'idx_token',
      'idx_string',
      'idx_reference',
      'idx_date',
      'idx_number',
      'idx_quantity',
      'idx_uri',
    ]) {
      this.stmt(`DELETE FROM ${table} WHERE resource_type = ? AND id = ?`).run(resourceType, id);
    }
    if (!index) {
      return;
    }
    const insert = (table: string, columns: string[], rows: Record<string, unknown>[]): void => {
      if (rows.length === 0) {
        return;
      }
      const s = this.stmt(
        `INSERT INTO ${table} (resource_type, id, code, ${columns.map(snake).join(', ')}) VALUES (?, ?, ?, ${columns.map(() => '?').join(', ')})`,
      );
      for (const row of rows) {
        s.run(resourceType, id, row.code, ...columns.map((c) => row[c] ?? null));
      }
    };
    insert('idx_token', ['system', 'value'], index.tokens);
    insert('idx_string', ['value', 'norm'], index.strings);
    insert('idx_reference', ['reference', 'targetType', 'targetId'], index.references);
    insert('idx_date', ['low', 'high'], index.dates);
    insert('idx_number', ['low', 'high'], index.numbers);
    insert('idx_quantity', ['system', 'unit', 'low', 'high'], index.quantities);
    insert('idx_uri', ['value'], index.uris);
  }
}

function withoutIdentity(resource: Resource): Partial<Resource> {
  const { resourceType: _t, id: _i, meta: _m, ...rest } = resource;
  return rest;
}

interface OutboxRow {
  id: number;
  subscription_id: string;
  event_number: number;
  attempts: number;
  created_ms: number;
  focus: string;
  occurred_at: string;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function toStoredVersion(row: VersionRow): StoredVersion {
  return {
    resourceType: row.resource_type,
    id: row.id,
    versionId: String(row.version_id),
    lastUpdated: row.last_updated,
    deleted: row.deleted === 1,
    resource: row.content ? (JSON.parse(row.content) as Resource) : undefined,
  };
}
