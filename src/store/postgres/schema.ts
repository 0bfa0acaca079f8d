import { OWNER_INDEXES_WITH_CODE, searchIndexTables, type Migration } from '../shared/migrations.js';

/**
 * Versioned PostgreSQL schema migrations, numbered like the SQLite ones (src/store/sqlite/schema.ts)
 * and describing the same tables, so both dialects answer the same SQL from `sql/search-sql.ts`.
 * A migration is applied once, in order, in its own transaction, and recorded in
 * `schema_migrations`; start-up holds an advisory lock around the whole run, so several instances
 * starting at once apply each migration exactly once.
 *
 * Dialect choices:
 * - Text that is compared or sorted is `COLLATE "C"` (byte order, as SQLite compares), whatever
 *   the database's default collation: search and `_sort` order must not depend on the locale, and
 *   the `norm < 'abc\uffff'` prefix trick needs code-point order.
 * - Resource content is kept twice: `content` (JSONB, for ad-hoc queries and future indexes) and
 *   `content_text`, the exact JSON the service answers with (JSONB reorders keys and rewrites
 *   numbers, so it cannot give the client back what it wrote).
 * - Millisecond instants are DOUBLE PRECISION: search binds them as plain numbers (ranges widened
 *   by `ap` are fractional, open ranges are ±8.64e15), and a double holds every epoch millisecond
 *   exactly.
 * - `deleted` is a SMALLINT 0/1, as the shared search SQL compares `r.deleted = 0`.
 */
export type PgMigration = Migration;

const TEXT = 'TEXT COLLATE "C"';

export const PG_MIGRATIONS: PgMigration[] = [
  {
    version: 1,
    description: 'resources, version history and search indexes',
    statements: [
      // Every version ever written; `seq` orders the system-wide history.
      `CREATE TABLE resource_version (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        resource_type ${TEXT} NOT NULL,
        id ${TEXT} NOT NULL,
        version_id INTEGER NOT NULL,
        last_updated TEXT NOT NULL,
        last_updated_ms DOUBLE PRECISION NOT NULL,
        deleted SMALLINT NOT NULL,
        content JSONB,
        content_text TEXT,
        CONSTRAINT resource_version_unique UNIQUE (resource_type, id, version_id)
      )`,
      `CREATE INDEX resource_version_type_time ON resource_version (resource_type, last_updated_ms)`,
      `CREATE INDEX resource_version_time ON resource_version (last_updated_ms)`,
      // The current version of each resource, which search and read use.
      `CREATE TABLE resource (
        resource_type ${TEXT} NOT NULL,
        id ${TEXT} NOT NULL,
        version_id INTEGER NOT NULL,
        last_updated TEXT NOT NULL,
        last_updated_ms DOUBLE PRECISION NOT NULL,
        deleted SMALLINT NOT NULL,
        content JSONB,
        content_text TEXT,
        PRIMARY KEY (resource_type, id)
      )`,
      `CREATE INDEX resource_type_time ON resource (resource_type, deleted, last_updated_ms)`,
      ...searchIndexTables(TEXT),
    ],
  },
  {
    version: 2,
    description: 'subscription events and the notification outbox',
    statements: [
      // Every event announced to a subscription, numbered without gaps (the primary key makes a
      // duplicate number impossible), kept for $events replays.
      `CREATE TABLE subscription_event (
        subscription_id ${TEXT} NOT NULL,
        event_number INTEGER NOT NULL,
        focus TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        PRIMARY KEY (subscription_id, event_number)
      )`,
      // One row per notification to deliver; written in the transaction that creates the event.
      `CREATE TABLE notification_outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        subscription_id ${TEXT} NOT NULL,
        event_number INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_ms DOUBLE PRECISION NOT NULL,
        next_attempt_ms DOUBLE PRECISION NOT NULL,
        lease_until_ms DOUBLE PRECISION,
        delivered_ms DOUBLE PRECISION,
        last_error TEXT,
        UNIQUE (subscription_id, event_number)
      )`,
      `CREATE INDEX notification_outbox_due ON notification_outbox (status, next_attempt_ms)`,
    ],
  },
  OWNER_INDEXES_WITH_CODE,
];
