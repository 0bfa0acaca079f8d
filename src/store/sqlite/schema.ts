import { OWNER_INDEXES_WITH_CODE, searchIndexTables, type Migration } from '../shared/migrations.js';

/**
 * SQLite's schema migrations (the runner is in sqlite-store.ts; PostgreSQL's are in
 * postgres/schema.ts, under the same numbers).
 */
export type { Migration };

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'resources, version history and search indexes',
    statements: [
      // Every version ever written; `seq` orders the system-wide history.
      `CREATE TABLE resource_version (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        resource_type TEXT NOT NULL,
        id TEXT NOT NULL,
        version_id INTEGER NOT NULL,
        last_updated TEXT NOT NULL,
        last_updated_ms BIGINT NOT NULL,
        deleted INTEGER NOT NULL,
        content TEXT,
        UNIQUE (resource_type, id, version_id)
      )`,
      `CREATE INDEX resource_version_type_time ON resource_version (resource_type, last_updated_ms)`,
      `CREATE INDEX resource_version_time ON resource_version (last_updated_ms)`,
      // The current version of each resource, which search and read use.
      `CREATE TABLE resource (
        resource_type TEXT NOT NULL,
        id TEXT NOT NULL,
        version_id INTEGER NOT NULL,
        last_updated TEXT NOT NULL,
        last_updated_ms BIGINT NOT NULL,
        deleted INTEGER NOT NULL,
        content TEXT,
        PRIMARY KEY (resource_type, id)
      )`,
      `CREATE INDEX resource_type_time ON resource (resource_type, deleted, last_updated_ms)`,
      ...searchIndexTables('TEXT'),
    ],
  },
  {
    version: 2,
    description: 'subscription events and the notification outbox',
    statements: [
      // Every event announced to a subscription, numbered without gaps (the primary key makes a
      // duplicate number impossible), kept for $events replays.
      `CREATE TABLE subscription_event (
        subscription_id TEXT NOT NULL,
        event_number INTEGER NOT NULL,
        focus TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        PRIMARY KEY (subscription_id, event_number)
      )`,
      // One row per notification to deliver; written in the transaction that creates the event.
      `CREATE TABLE notification_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subscription_id TEXT NOT NULL,
        event_number INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_ms BIGINT NOT NULL,
        next_attempt_ms BIGINT NOT NULL,
        lease_until_ms BIGINT,
        delivered_ms BIGINT,
        last_error TEXT,
        UNIQUE (subscription_id, event_number)
      )`,
      `CREATE INDEX notification_outbox_due ON notification_outbox (status, next_attempt_ms)`,
    ],
  },
  OWNER_INDEXES_WITH_CODE,
];
