import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { AsyncMutex } from '../async-mutex.js';
import type {
  NotificationResult,
  ObservableStore,
  OutboxNotification,
  StoreTransaction,
  SubscriptionEvent,
} from '../fhir-store.js';
import { pendingMigrations } from '../shared/migrations.js';
import { StoreBase } from '../shared/store-base.js';
import { MIGRATIONS } from './schema.js';
import { SqliteQueries, SqliteTransaction } from './sqlite-queries.js';

type Db = Database.Database;

/**
 * The embedded store: better-sqlite3 in WAL mode with `synchronous=FULL`, so a commit is on disk
 * before the HTTP answer leaves (https://www.sqlite.org/pragma.html#pragma_synchronous).
 * Writes go through one connection, one transaction at a time (SQLite has a single writer);
 * reads use a second connection and see the last committed state.
 */
export class SqliteStore extends StoreBase implements ObservableStore {
  readonly dialect = 'sqlite' as const;
  private readonly writer: Db;
  private readonly reader: Db;
  private readonly writeLock = new AsyncMutex();
  private readonly readerQueries: SqliteQueries;
  private readonly writerQueries: SqliteQueries;
  private readonly inMemory: boolean;

  constructor(path: string) {
    super();
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
    this.writerQueries = new SqliteQueries(this.writer, this.versions);
    this.readerQueries = this.inMemory ? this.writerQueries : new SqliteQueries(this.reader, this.versions);
  }

  protected override async reading<T>(work: (q: SqliteQueries) => Promise<T> | T): Promise<T> {
    if (this.inMemory) {
      return this.writeLock.run(async () => work(this.readerQueries));
    }
    return work(this.readerQueries);
  }

  /** Statements prepared and kept, over both connections (for the bound's test). */
  preparedStatementCount(): number {
    return (
      this.writerQueries.preparedStatementCount() +
      (this.inMemory ? 0 : this.readerQueries.preparedStatementCount())
    );
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
    return this.reading((q) => q.events(subscriptionId, from, to));
  }

  subscriptionEventCount(subscriptionId: string): Promise<number> {
    return this.reading((q) => q.eventCount(subscriptionId));
  }

  nextNotificationDueMs(): Promise<number | undefined> {
    return this.reading((q) => q.nextDue());
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
  const applied = db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[];
  for (const migration of pendingMigrations(
    MIGRATIONS,
    applied.map((r) => r.version),
  )) {
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
