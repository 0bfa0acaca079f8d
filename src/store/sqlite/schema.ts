/**
 * Versioned SQLite schema migrations. A migration is
 * applied once, in order, inside a transaction, and recorded in `schema_migrations`.
 */
export interface Migration {
  version: number;
  description: string;
  statements: string[];
}

const indexTable = (name: string, columns: string, lookup: string): string[] => [
  `CREATE TABLE ${name} (resource_type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, ${columns})`,
  `CREATE INDEX ${name}_lookup ON ${name} (resource_type, code, ${lookup})`,
  `CREATE INDEX ${name}_owner ON ${name} (resource_type, id)`,
];

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
      ...indexTable('idx_token', 'system TEXT, value TEXT', 'value, system'),
      ...indexTable('idx_string', 'value TEXT NOT NULL, norm TEXT NOT NULL', 'norm'),
      ...indexTable(
        'idx_reference',
        'reference TEXT NOT NULL, target_type TEXT, target_id TEXT',
        'target_id, target_type',
      ),
      `CREATE INDEX idx_reference_literal ON idx_reference (resource_type, code, reference)`,
      ...indexTable('idx_date', 'low DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL', 'low, high'),
      ...indexTable(
        'idx_number',
        'low DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL',
        'low, high',
      ),
      ...indexTable(
        'idx_quantity',
        'system TEXT, unit TEXT, low DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL',
        'low, high',
      ),
      ...indexTable('idx_uri', 'value TEXT NOT NULL', 'value'),
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
  {
    version: 3,
    description:
      'owner indexes include the parameter code (for correlated EXISTS checks); date upper bounds indexed',
    statements: [
      `DROP INDEX idx_token_owner`,
      `CREATE INDEX idx_token_owner ON idx_token (resource_type, id, code)`,
      `DROP INDEX idx_string_owner`,
      `CREATE INDEX idx_string_owner ON idx_string (resource_type, id, code)`,
      `DROP INDEX idx_reference_owner`,
      `CREATE INDEX idx_reference_owner ON idx_reference (resource_type, id, code)`,
      `DROP INDEX idx_date_owner`,
      `CREATE INDEX idx_date_owner ON idx_date (resource_type, id, code)`,
      `DROP INDEX idx_number_owner`,
      `CREATE INDEX idx_number_owner ON idx_number (resource_type, id, code)`,
      `DROP INDEX idx_quantity_owner`,
      `CREATE INDEX idx_quantity_owner ON idx_quantity (resource_type, id, code)`,
      `DROP INDEX idx_uri_owner`,
      `CREATE INDEX idx_uri_owner ON idx_uri (resource_type, id, code)`,
      `CREATE INDEX idx_date_high ON idx_date (resource_type, code, high)`,
    ],
  },
];
