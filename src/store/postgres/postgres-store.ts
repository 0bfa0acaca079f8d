import pg from 'pg';
import type { Resource } from '@medplum/fhirtypes';
import type { SearchIndexRows } from '../../fhir/search/index-rows.js';
import type { SearchQuery } from '../../fhir/search/search-query.js';
import type {
  FhirStore,
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
import { buildOrderBy, buildWhere } from '../sql/search-sql.js';
import {
  WriteConflict,
  isConnectionError,
  isRetryableConflict,
  toStoreError,
  unavailable,
} from './pg-errors.js';
import { numberPlaceholders } from './placeholders.js';
import { PG_MIGRATIONS } from './schema.js';

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

interface VersionRow {
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: string;
  deleted: number;
  content_text: string | null;
}

interface OutboxRow {
  id: string;
  subscription_id: string;
  event_number: number;
  attempts: number;
  created_ms: number;
  focus: string;
  occurred_at: string;
}

/** Something that runs a query: the pool (one statement, autocommit) or a transaction's client. */
type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/**
 * A fixed statement, prepared once per connection under its own name (node-postgres keeps the
 * per-connection cache). Dynamic SQL (search, history filters) runs unnamed.
 */
interface Statement {
  name: string;
  text: string;
}
let statementCount = 0;
const statement = (text: string): Statement => ({ name: `fhir_store_${++statementCount}`, text });

const COLUMNS = 'resource_type, id, version_id, last_updated, deleted, content_text';
const SQL = {
  read: statement(`SELECT ${COLUMNS} FROM resource WHERE resource_type = $1 AND id = $2`),
  // Inside a transaction a read locks the row: a concurrent transaction that reads the same
  // resource (to check If-Match, say) waits for this one and then sees its write, exactly the
  // serialised view SQLite's single writer gives.
  readForUpdate: statement(`SELECT ${COLUMNS} FROM resource WHERE resource_type = $1 AND id = $2 FOR UPDATE`),
  vread: statement(
    `SELECT ${COLUMNS} FROM resource_version WHERE resource_type = $1 AND id = $2 AND version_id = $3`,
  ),
  readReferences: statement(
    `SELECT r.resource_type, r.id, r.content_text FROM resource r
     JOIN unnest($1::text[], $2::text[]) AS ref(resource_type, id)
       ON r.resource_type = ref.resource_type AND r.id = ref.id
     WHERE r.deleted = 0`,
  ),
  current: statement(
    'SELECT version_id, last_updated_ms FROM resource WHERE resource_type = $1 AND id = $2 FOR UPDATE',
  ),
  // One round trip for the whole write: the history row, the current row, and the search index
  // (deleted and re-inserted; sub-statements share a snapshot, so the DELETEs never see the new
  // rows). The current row is only overwritten if it is still the version this transaction
  // computed from ($9, 0 = none): otherwise nothing is returned and the transaction runs again.
  write: statement(
    `WITH upsert AS (
       INSERT INTO resource (resource_type, id, version_id, last_updated, last_updated_ms, deleted, content, content_text)
       VALUES ($1::text, $2::text, $3::int, $4::text, $5::float8, $6::smallint, COALESCE($8::text, $7::text)::jsonb, $7::text)
       ON CONFLICT (resource_type, id) DO UPDATE SET version_id = EXCLUDED.version_id,
         last_updated = EXCLUDED.last_updated, last_updated_ms = EXCLUDED.last_updated_ms,
         deleted = EXCLUDED.deleted, content = EXCLUDED.content, content_text = EXCLUDED.content_text
       WHERE resource.version_id = $9::int
       RETURNING 1
     ), history AS (
       INSERT INTO resource_version (resource_type, id, version_id, last_updated, last_updated_ms, deleted, content, content_text)
       VALUES ($1::text, $2::text, $3::int, $4::text, $5::float8, $6::smallint, COALESCE($8::text, $7::text)::jsonb, $7::text)
     ),
     d1 AS (DELETE FROM idx_token WHERE resource_type = $1::text AND id = $2::text),
     d2 AS (DELETE FROM idx_string WHERE resource_type = $1::text AND id = $2::text),
     d3 AS (DELETE FROM idx_reference WHERE resource_type = $1::text AND id = $2::text),
     d4 AS (DELETE FROM idx_date WHERE resource_type = $1::text AND id = $2::text),
     d5 AS (DELETE FROM idx_number WHERE resource_type = $1::text AND id = $2::text),
     d6 AS (DELETE FROM idx_quantity WHERE resource_type = $1::text AND id = $2::text),
     d7 AS (DELETE FROM idx_uri WHERE resource_type = $1::text AND id = $2::text),
     i1 AS (INSERT INTO idx_token (resource_type, id, code, system, value)
       SELECT $1::text, $2::text, * FROM unnest($10::text[], $11::text[], $12::text[])),
     i2 AS (INSERT INTO idx_string (resource_type, id, code, value, norm)
       SELECT $1::text, $2::text, * FROM unnest($13::text[], $14::text[], $15::text[])),
     i3 AS (INSERT INTO idx_reference (resource_type, id, code, reference, target_type, target_id)
       SELECT $1::text, $2::text, * FROM unnest($16::text[], $17::text[], $18::text[], $19::text[])),
     i4 AS (INSERT INTO idx_date (resource_type, id, code, low, high)
       SELECT $1::text, $2::text, * FROM unnest($20::text[], $21::float8[], $22::float8[])),
     i5 AS (INSERT INTO idx_number (resource_type, id, code, low, high)
       SELECT $1::text, $2::text, * FROM unnest($23::text[], $24::float8[], $25::float8[])),
     i6 AS (INSERT INTO idx_quantity (resource_type, id, code, system, unit, low, high)
       SELECT $1::text, $2::text, * FROM unnest($26::text[], $27::text[], $28::text[], $29::float8[], $30::float8[])),
     i7 AS (INSERT INTO idx_uri (resource_type, id, code, value)
       SELECT $1::text, $2::text, * FROM unnest($31::text[], $32::text[]))
     SELECT count(*)::int AS n FROM upsert`,
  ),
  lock: statement('SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))'),
  // Event numbers: the caller holds the subscription's advisory lock, so MAX + 1 is this
  // transaction's alone (the primary key would refuse a duplicate anyway).
  appendEvent: statement(
    `WITH next AS (
       SELECT COALESCE(MAX(event_number), 0) + 1 AS n FROM subscription_event WHERE subscription_id = $1::text
     ), event AS (
       INSERT INTO subscription_event (subscription_id, event_number, focus, occurred_at)
       SELECT $1::text, n, $2::text, $3::text FROM next
     ), outbox AS (
       INSERT INTO notification_outbox (subscription_id, event_number, status, created_ms, next_attempt_ms)
       SELECT $1::text, n, 'pending', $4::float8, $4::float8 FROM next
     )
     SELECT n FROM next`,
  ),
  // SKIP LOCKED: rows another instance is leasing right now are passed over, not waited for; a
  // row leased and committed meanwhile is re-checked against the WHERE clause (READ COMMITTED
  // re-evaluates locked rows), so it is not handed out twice.
  claim: statement(
    `WITH due AS (
       SELECT id FROM notification_outbox
       WHERE status = 'pending' AND next_attempt_ms <= $1::float8 AND (lease_until_ms IS NULL OR lease_until_ms <= $1::float8)
       ORDER BY next_attempt_ms, id
       LIMIT $2::int
       FOR UPDATE SKIP LOCKED
     ), leased AS (
       UPDATE notification_outbox o SET lease_until_ms = $3::float8, attempts = o.attempts + 1
       FROM due WHERE o.id = due.id
       RETURNING o.id, o.subscription_id, o.event_number, o.attempts, o.created_ms, o.next_attempt_ms
     )
     SELECT l.id, l.subscription_id, l.event_number, l.attempts, l.created_ms, e.focus, e.occurred_at
     FROM leased l JOIN subscription_event e ON e.subscription_id = l.subscription_id AND e.event_number = l.event_number
     ORDER BY l.next_attempt_ms, l.id`,
  ),
  delivered: statement(
    "UPDATE notification_outbox SET status = 'delivered', delivered_ms = $2::float8, lease_until_ms = NULL WHERE id = $1::bigint",
  ),
  retry: statement(
    'UPDATE notification_outbox SET next_attempt_ms = $2::float8, last_error = $3::text, lease_until_ms = NULL WHERE id = $1::bigint',
  ),
  failed: statement(
    "UPDATE notification_outbox SET status = 'failed', last_error = $2::text, lease_until_ms = NULL WHERE id = $1::bigint",
  ),
  abandon: statement(
    "UPDATE notification_outbox SET status = 'failed', last_error = $2::text, lease_until_ms = NULL WHERE subscription_id = $1::text AND status = 'pending'",
  ),
  events: statement(
    `SELECT subscription_id, event_number, focus, occurred_at FROM subscription_event
     WHERE subscription_id = $1::text AND event_number BETWEEN $2::int AND $3::int ORDER BY event_number`,
  ),
  eventCount: statement(
    'SELECT COALESCE(MAX(event_number), 0) AS n FROM subscription_event WHERE subscription_id = $1::text',
  ),
  nextDue: statement(
    `SELECT MIN(CASE WHEN lease_until_ms IS NOT NULL AND lease_until_ms > next_attempt_ms THEN lease_until_ms ELSE next_attempt_ms END) AS due
     FROM notification_outbox WHERE status = 'pending'`,
  ),
};

const MAX_VERSION_ID = 2 ** 31 - 1;
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
export class PostgresStore implements FhirStore {
  readonly dialect = 'postgres' as const;
  /** The last lastUpdated this instance handed out (ms), so it never goes backwards here. */
  lastMs = 0;
  private closed = false;
  private readonly maxAttempts: number;

  private constructor(
    private readonly pool: pg.Pool,
    readonly schema: string | undefined,
    options: PostgresStoreOptions,
  ) {
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

  read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    return this.reader.read(resourceType, id);
  }

  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    return this.reader.vread(resourceType, id, versionId);
  }

  search(query: SearchQuery): Promise<SearchResult> {
    return this.reader.search(query);
  }

  readReferences(references: string[]): Promise<Resource[]> {
    return this.reader.readReferences(references);
  }

  history(request: HistoryRequest): Promise<HistoryPage> {
    return this.reader.history(request);
  }

  async claimNotifications(nowMs: number, limit: number, leaseMs: number): Promise<OutboxNotification[]> {
    const { rows } = await this.run<OutboxRow>(SQL.claim, [nowMs, limit, nowMs + leaseMs]);
    return rows.map((row) => ({
      id: Number(row.id),
      subscriptionId: row.subscription_id,
      eventNumber: row.event_number,
      attempts: row.attempts,
      createdMs: row.created_ms,
      focus: row.focus,
      occurredAt: row.occurred_at,
    }));
  }

  async finishNotification(id: number, result: NotificationResult): Promise<void> {
    if (result.status === 'delivered') {
      await this.run(SQL.delivered, [id, result.atMs]);
    } else if (result.status === 'retry') {
      await this.run(SQL.retry, [id, result.nextAttemptMs, result.error.slice(0, 500)]);
    } else {
      await this.run(SQL.failed, [id, result.error.slice(0, 500)]);
    }
  }

  async abandonNotifications(subscriptionId: string, error: string): Promise<number> {
    const result = await this.run(SQL.abandon, [subscriptionId, error.slice(0, 500)]);
    return result.rowCount ?? 0;
  }

  async subscriptionEvents(subscriptionId: string, from: number, to: number): Promise<SubscriptionEvent[]> {
    const { rows } = await this.run<{
      subscription_id: string;
      event_number: number;
      focus: string;
      occurred_at: string;
    }>(SQL.events, [subscriptionId, from, to]);
    return rows.map((r) => ({
      subscriptionId: r.subscription_id,
      eventNumber: r.event_number,
      focus: r.focus,
      occurredAt: r.occurred_at,
    }));
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
    const tx = new PgTransaction(client, this);
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

class PgTransaction implements StoreTransaction {
  /** The first statement that failed: the transaction is aborted from then on. */
  failure: unknown;
  finished = false;
  private readonly queries: PgQueries;

  constructor(
    private readonly client: pg.PoolClient,
    store: PostgresStore,
  ) {
    this.queries = new PgQueries(
      async (sql, params) => {
        if (this.finished) {
          throw new Error('The transaction has already ended');
        }
        try {
          return await runOn(this.client, sql, params ?? []);
        } catch (err) {
          this.failure ??= err;
          throw err;
        }
      },
      true,
      store,
      (err) => {
        this.failure ??= err;
      },
    );
  }

  read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    return this.queries.read(resourceType, id);
  }
  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    return this.queries.vread(resourceType, id, versionId);
  }
  search(query: SearchQuery): Promise<SearchResult> {
    return this.queries.search(query);
  }
  readReferences(references: string[]): Promise<Resource[]> {
    return this.queries.readReferences(references);
  }
  history(request: HistoryRequest): Promise<HistoryPage> {
    return this.queries.history(request);
  }
  write(request: WriteRequest): Promise<StoredVersion> {
    return this.queries.write(request);
  }
  async lock(key: string): Promise<void> {
    await this.queries.exec(SQL.lock, [key]);
  }
  async appendSubscriptionEvent(subscriptionId: string, focus: string, occurredAt: string): Promise<number> {
    // Serialise event numbering per subscription across transactions and instances.
    await this.queries.exec(SQL.lock, [`subscription-event:${subscriptionId}`]);
    const { rows } = await this.queries.exec<{ n: number }>(SQL.appendEvent, [
      subscriptionId,
      focus,
      occurredAt,
      Date.now(),
    ]);
    return rows[0]?.n as number;
  }
}

type Exec = <R extends pg.QueryResultRow>(
  sql: Statement | string,
  params?: unknown[],
) => Promise<pg.QueryResult<R>>;

/** The statements, over either the pool (reads) or one transaction's connection. */
class PgQueries implements StoreReader {
  /** Rows this transaction holds locked (read FOR UPDATE, or written): version and lastUpdated. */
  private readonly locked = new Map<string, { versionId: number; ms: number }>();
  /** Resources this transaction found missing (which locks nothing). */
  private readonly missing = new Set<string>();

  constructor(
    readonly exec: Exec,
    private readonly inTransaction: boolean,
    private readonly store?: PostgresStore,
    /** Records a conflict found here, so the transaction re-runs even if `work` catches it. */
    private readonly onConflict: (err: WriteConflict) => void = () => undefined,
  ) {}

  private conflict(key: string): WriteConflict {
    const err = new WriteConflict(key);
    this.onConflict(err);
    return err;
  }

  async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const { rows } = await this.exec<VersionRow>(this.inTransaction ? SQL.readForUpdate : SQL.read, [
      resourceType,
      id,
    ]);
    const row = rows[0];
    if (this.inTransaction) {
      const key = `${resourceType}/${id}`;
      if (row) {
        this.locked.set(key, { versionId: row.version_id, ms: Date.parse(row.last_updated) });
      } else {
        this.missing.add(key);
      }
    }
    return row && toStoredVersion(row);
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    if (!/^\d{1,15}$/.test(versionId) || Number(versionId) > MAX_VERSION_ID) {
      return undefined;
    }
    const { rows } = await this.exec<VersionRow>(SQL.vread, [resourceType, id, Number(versionId)]);
    const row = rows[0];
    return row && toStoredVersion(row);
  }

  async search(query: SearchQuery): Promise<SearchResult> {
    const where = buildWhere(query);
    const order = buildOrderBy(query, { explicitNullOrder: true });
    let resources: Resource[] = [];
    if (query.count !== 0) {
      const { rows } = await this.exec<{ content_text: string }>(
        numberPlaceholders(
          `SELECT r.content_text FROM resource r WHERE ${where.sql} ORDER BY ${order.sql} LIMIT ? OFFSET ?`,
        ),
        [...where.params, ...order.params, query.count, query.offset],
      );
      resources = rows.map((r) => JSON.parse(r.content_text) as Resource);
    }
    if (!query.total) {
      return { resources };
    }
    if (query.offset === 0 && resources.length < query.count && query.count > 0) {
      return { resources, total: resources.length };
    }
    const { rows } = await this.exec<{ n: number }>(
      numberPlaceholders(`SELECT COUNT(*)::int AS n FROM resource r WHERE ${where.sql}`),
      where.params,
    );
    return { resources, total: rows[0]?.n ?? 0 };
  }

  async readReferences(references: string[]): Promise<Resource[]> {
    const unique = [...new Set(references)];
    if (unique.length === 0) {
      return [];
    }
    const pairs = unique.map((reference) => reference.split('/'));
    const { rows } = await this.exec<{ resource_type: string; id: string; content_text: string }>(
      SQL.readReferences,
      [pairs.map((p) => p[0] ?? ''), pairs.map((p) => p[1] ?? '')],
    );
    const found = new Map(rows.map((r) => [`${r.resource_type}/${r.id}`, r.content_text]));
    // In the order asked, like the SQLite store.
    const out: Resource[] = [];
    for (const [type, id] of pairs) {
      const text = found.get(`${type}/${id}`);
      if (text !== undefined) {
        out.push(JSON.parse(text) as Resource);
      }
    }
    return out;
  }

  async history(request: HistoryRequest): Promise<HistoryPage> {
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
    const page = await this.exec<VersionRow>(
      numberPlaceholders(
        `SELECT ${COLUMNS} FROM resource_version ${where} ORDER BY seq DESC LIMIT ? OFFSET ?`,
      ),
      [...params, request.count, request.offset],
    );
    const count = await this.exec<{ n: number }>(
      numberPlaceholders(`SELECT COUNT(*)::int AS n FROM resource_version ${where}`),
      params,
    );
    return { versions: page.rows.map(toStoredVersion), total: count.rows[0]?.n ?? 0 };
  }

  async write(request: WriteRequest): Promise<StoredVersion> {
    const store = this.store as PostgresStore;
    const { resourceType, id } = request;
    const key = `${resourceType}/${id}`;
    // A row this transaction already holds cannot have changed; otherwise lock it now.
    let current = this.locked.get(key);
    if (!current) {
      const { rows } = await this.exec<{ version_id: number; last_updated_ms: number }>(SQL.current, [
        resourceType,
        id,
      ]);
      const row = rows[0];
      if (row && this.missing.has(key)) {
        // Created by another instance after this transaction found it missing: run again, so
        // the decision (create or update, If-None-Match, …) is taken on what is there now.
        throw this.conflict(key);
      }
      current = row && { versionId: row.version_id, ms: row.last_updated_ms };
    }
    const previous = current?.versionId ?? 0;
    const versionId = previous + 1;
    // lastUpdated never goes backwards for a resource (nor within this instance), even if the
    // clock does, so `_since` polling loses nothing.
    const ms = Math.max(Date.now(), store.lastMs, current?.ms ?? 0);
    store.lastMs = ms;
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
    const index = deleted ? undefined : request.index;
    const result = await this.exec<{ n: number }>(SQL.write, [
      resourceType,
      id,
      versionId,
      lastUpdated,
      ms,
      deleted ? 1 : 0,
      content,
      content === null ? null : jsonbSafeText(content, resource),
      previous,
      ...indexParams(index),
    ]);
    if (result.rows[0]?.n !== 1) {
      throw this.conflict(key);
    }
    this.locked.set(key, { versionId, ms });
    this.missing.delete(key);
    return { resourceType, id, versionId: String(versionId), lastUpdated, deleted, resource };
  }
}

/** The index rows as column arrays, in the order of the write statement's parameters $10-$32. */
function indexParams(index: SearchIndexRows | undefined): unknown[][] {
  const i = index ?? {
    tokens: [],
    strings: [],
    references: [],
    dates: [],
    numbers: [],
    quantities: [],
    uris: [],
  };
  return [
    i.tokens.map((r) => r.code),
    i.tokens.map((r) => clip(r.system)),
    i.tokens.map((r) => clip(r.value)),
    i.strings.map((r) => r.code),
    i.strings.map((r) => r.value),
    i.strings.map((r) => clip(r.norm)),
    i.references.map((r) => r.code),
    i.references.map((r) => clip(r.reference)),
    i.references.map((r) => clip(r.targetType)),
    i.references.map((r) => clip(r.targetId)),
    i.dates.map((r) => r.code),
    i.dates.map((r) => r.low),
    i.dates.map((r) => r.high),
    i.numbers.map((r) => r.code),
    i.numbers.map((r) => r.low),
    i.numbers.map((r) => r.high),
    i.quantities.map((r) => r.code),
    i.quantities.map((r) => r.system),
    i.quantities.map((r) => r.unit),
    i.quantities.map((r) => r.low),
    i.quantities.map((r) => r.high),
    i.uris.map((r) => r.code),
    i.uris.map((r) => clip(r.value)),
  ];
}

/** Bytes of an index column value kept in a B-tree key (PostgreSQL refuses keys over ~2.7 kB). */
export const MAX_INDEXED_BYTES = 1000;

/**
 * Cuts an indexed text value to MAX_INDEXED_BYTES of UTF-8 (at a character boundary), so a
 * pathological value cannot fail the write with "index row size exceeds maximum". Prefix and
 * `:contains` matches within the kept bytes still work, exact matches of a longer value do not
 * (as in other FHIR servers, which index a prefix too). `idx_string.value`, which `:exact`
 * compares and no index holds, is kept whole.
 */
function clip(value: string | null): string | null {
  if (value === null || value.length * 3 <= MAX_INDEXED_BYTES) {
    return value;
  }
  if (Buffer.byteLength(value, 'utf8') <= MAX_INDEXED_BYTES) {
    return value;
  }
  let bytes = 0;
  let end = 0;
  for (const ch of value) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (bytes + size > MAX_INDEXED_BYTES) {
      break;
    }
    bytes += size;
    end += ch.length;
  }
  return value.slice(0, end);
}

/**
 * JSONB refuses `\u0000` and unpaired surrogates, which JSON (and so `content_text`) allows. For
 * the rare resource holding one, the JSONB copy gets U+FFFD instead; `content_text`, which is what
 * the service answers with, keeps the exact value. Null when the text converts as it is.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function jsonbSafeText(text: string, resource: Resource | undefined): string | null {
  if (!/\\u(0000|d[89a-f])/i.test(text)) {
    return null;
  }
  return JSON.stringify(resource, (_key, value: unknown) =>
    typeof value === 'string'
      ? value.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATE, '\ufffd')
      : value,
  );
}

/** PostgreSQL text cannot hold NUL; index values and search values map it alike to U+FFFD. */
function pgValue(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.includes('\u0000') ? value.replaceAll('\u0000', '\ufffd') : value;
  }
  if (Array.isArray(value)) {
    return value.some((v) => typeof v === 'string' && v.includes('\u0000')) ? value.map(pgValue) : value;
  }
  return value;
}

async function runOn<R extends pg.QueryResultRow>(
  target: Queryable,
  sql: Statement | string,
  params: unknown[],
): Promise<pg.QueryResult<R>> {
  const values = params.map(pgValue);
  return typeof sql === 'string'
    ? await target.query<R>(sql, values)
    : await target.query<R>({ name: sql.name, text: sql.text, values });
}

function withoutIdentity(resource: Resource): Partial<Resource> {
  const { resourceType: _t, id: _i, meta: _m, ...rest } = resource;
  return rest;
}

function toStoredVersion(row: VersionRow): StoredVersion {
  return {
    resourceType: row.resource_type,
    id: row.id,
    versionId: String(row.version_id),
    lastUpdated: row.last_updated,
    deleted: row.deleted === 1,
    resource: row.content_text ? (JSON.parse(row.content_text) as Resource) : undefined,
  };
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

/**
 * Applies pending migrations. A session advisory lock (per schema) makes instances that start
 * together take turns: the first applies, the others then find nothing left to do.
 */
async function migrate(pool: pg.Pool, schema: string | undefined): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const lockKey = `pt-referral-fhir:migrate:${schema ?? ''}`;
    await client.query('SELECT pg_advisory_lock(hashtextextended($1::text, 0))', [lockKey]);
    try {
      if (schema) {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      }
      await client.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
          version INTEGER PRIMARY KEY,
          description TEXT NOT NULL,
          applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )`,
      );
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((r) => r.version));
      for (const migration of PG_MIGRATIONS) {
        if (applied.has(migration.version)) {
          continue;
        }
        await client.query('BEGIN');
        try {
          // One round trip: the statements take no parameters (simple query protocol).
          await client.query(migration.statements.join(';\n'));
          await client.query('INSERT INTO schema_migrations (version, description) VALUES ($1, $2)', [
            migration.version,
            migration.description,
          ]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
    } finally {
      await client
        .query('SELECT pg_advisory_unlock(hashtextextended($1::text, 0))', [lockKey])
        .catch((err: Error) => {
          broken = err;
        });
    }
  } catch (err) {
    broken ??= err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}
