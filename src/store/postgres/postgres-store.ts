import pg from 'pg';
import type {
  NotificationResult,
  ObservableStore,
  OutboxNotification,
  StoreReader,
  StoreTransaction,
  SubscriptionEvent,
} from '../fhir-store.js';
import { errorText, notificationUpdate } from '../shared/outbox.js';
import { toOutboxNotification, toSubscriptionEvent, type EventRow, type OutboxRow } from '../shared/rows.js';
import { StoreBase } from '../shared/store-base.js';
import { migrate } from './migrate.js';
import { isConnectionError, isRetryableConflict, toStoreError, unavailable } from './pg-errors.js';
import { PgQueries, PgTransaction, runOn } from './pg-queries.js';
import { NOTIFICATION_UPDATES, SQL, type Statement } from './statements.js';

export { MAX_INDEXED_BYTES } from './pg-values.js';

export interface PostgresStoreOptions {
  /** A libpq-style URL, `postgres://user:password@host:port/database?sslmode=…`. */
  connectionString: string;
  /**
   * The schema holding the tables (created if missing; every connection's `search_path`).
   * Default: the server's default (`public`). Tests use one schema per test for a clean database.
   */
  schema?: string;
  /** Connections in the pool (PG_POOL_SIZE). Default 10. */
  poolSize?: number;
  /** How long a request waits for a connection before answering 503. Default 10 s. */
  connectTimeoutMs?: number;
  /** Attempts of a transaction that hits a serialization failure or deadlock. Default 5. */
  maxAttempts?: number;
}

/** `?schema=` names a plain lower-case identifier, so it never needs quoting. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Splits a DATABASE_URL into the pg connection string and the store's own options: `schema`
 * (e.g. `postgres://host/db?schema=referrals`) is ours, everything else is node-postgres'.
 */
export function parsePostgresUrl(
  databaseUrl: string,
): Pick<PostgresStoreOptions, 'connectionString' | 'schema'> {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new Error('DATABASE_URL is not a valid postgres:// URL');
  }
  const schema = url.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new Error('DATABASE_URL: schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)');
  }
  url.searchParams.delete('schema');
  return { connectionString: url.toString(), schema };
}

const DEFAULT_POOL_SIZE = 10;

/**
 * The PostgreSQL dialect (node-postgres, one pool per store). Reads run as single autocommit
 * statements on any pooled connection; `transaction()` runs on one connection between BEGIN and
 * COMMIT at READ COMMITTED, made safe for several service instances by row locks (a read inside a
 * transaction is `FOR UPDATE`), advisory transaction locks (`lock(key)`, event numbering) and the
 * unique keys of history and events. Serialization failures and deadlocks re-run the transaction
 * with jitter, so `work` must have no effect outside the transaction. A lost or refused connection
 * answers `store-unavailable` (503); the pool drops broken connections and opens new ones.
 */
export class PostgresStore extends StoreBase implements ObservableStore {
  readonly dialect = 'postgres' as const;
  private closed = false;
  private readonly maxAttempts: number;

  private constructor(
    private readonly pool: pg.Pool,
    readonly schema: string | undefined,
    options: PostgresStoreOptions,
  ) {
    super();
    this.maxAttempts = options.maxAttempts ?? 5;
  }

  /** Connects, applies pending migrations (under an advisory lock), and answers the store. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
    if (!Number.isInteger(poolSize) || poolSize < 1) {
      throw new Error('PostgreSQL pool size must be a positive integer');
    }
    const pool = new pg.Pool({
      connectionString: withSearchPath(options.connectionString, options.schema),
      max: poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      application_name: 'pt-referral-fhir',
    });
    // An idle connection that breaks (server restart, network) is reported here; the pool has
    // already dropped it and opens a fresh one on demand. Without a listener it would crash us.
    pool.on('error', () => undefined);
    try {
      await migrate(pool, options.schema);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw toStoreError(err);
    }
    return new PostgresStore(pool, options.schema, options);
  }

  /** Runs one autocommit statement on a pooled connection. */
  private async run<R extends pg.QueryResultRow>(
    sql: Statement | string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await runOn<R>(this.pool, sql, params);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  private readonly reader = new PgQueries((sql, params) => this.run(sql, params ?? []), false);

  protected override reading<T>(work: (reader: StoreReader) => Promise<T>): Promise<T> {
    return work(this.reader);
  }

  async claimNotifications(nowMs: number, limit: number, leaseMs: number): Promise<OutboxNotification[]> {
    const { rows } = await this.run<OutboxRow>(SQL.claim, [nowMs, limit, nowMs + leaseMs]);
    return rows.map(toOutboxNotification);
  }

  async finishNotification(id: number, result: NotificationResult): Promise<void> {
    const update = notificationUpdate(id, result);
    await this.run(NOTIFICATION_UPDATES[update.kind], update.params);
  }

  async abandonNotifications(subscriptionId: string, error: string): Promise<number> {
    const result = await this.run(SQL.abandon, [subscriptionId, errorText(error)]);
    return result.rowCount ?? 0;
  }

  async subscriptionEvents(subscriptionId: string, from: number, to: number): Promise<SubscriptionEvent[]> {
    const { rows } = await this.run<EventRow>(SQL.events, [subscriptionId, from, to]);
    return rows.map(toSubscriptionEvent);
  }

  async subscriptionEventCount(subscriptionId: string): Promise<number> {
    const { rows } = await this.run<{ n: number }>(SQL.eventCount, [subscriptionId]);
    return rows[0]?.n ?? 0;
  }

  async nextNotificationDueMs(): Promise<number | undefined> {
    const { rows } = await this.run<{ due: number | null }>(SQL.nextDue);
    return rows[0]?.due ?? undefined;
  }

  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(work);
      } catch (err) {
        if (!isRetryableConflict(err)) {
          throw toStoreError(err);
        }
        if (attempt >= this.maxAttempts) {
          throw unavailable('The database is busy with conflicting writes; try again', err);
        }
        // Exponential backoff with full jitter: 0-10 ms, 0-20 ms, 0-40 ms, …
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** (attempt - 1)));
      }
    }
  }

  private async attempt<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    if (this.closed) {
      throw new Error('The store is closed');
    }
    const client = await this.pool.connect();
    // While checked out, the pool no longer listens for this connection's errors: a connection
    // that dies between two statements would otherwise be an unhandled 'error' event.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken ??= err;
    };
    client.on('error', onError);
    const tx = new PgTransaction(client, this.versions);
    try {
      await client.query('BEGIN');
      let result: T;
      try {
        result = await work(tx);
      } catch (err) {
        // A statement that failed aborted the transaction; if it was a conflict, that (not
        // whatever `work` made of it) decides: the whole transaction runs again.
        throw tx.failure !== undefined && (isRetryableConflict(tx.failure) || isConnectionError(tx.failure))
          ? tx.failure
          : err;
      }
      if (tx.failure !== undefined) {
        // `work` swallowed a failed statement: PostgreSQL would answer COMMIT with a silent
        // ROLLBACK, so report the failure instead of a success that did not happen.
        throw tx.failure;
      }
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (!broken && !isConnectionError(err)) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken ??= rollbackErr;
        });
      }
      if (isConnectionError(err)) {
        broken ??= err as Error;
      }
      throw err;
    } finally {
      tx.finished = true;
      client.off('error', onError);
      // A broken connection is destroyed rather than returned to the pool.
      client.release(broken ?? undefined);
    }
  }

  async ping(): Promise<void> {
    await this.run('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    await this.pool.end();
  }
}

/** Every pooled connection starts with the store's schema as its search_path. */
function withSearchPath(connectionString: string, schema: string | undefined): string {
  if (!schema) {
    return connectionString;
  }
  const url = new URL(connectionString);
  const options = url.searchParams.get('options');
  url.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${schema}`);
  return url.toString();
}
