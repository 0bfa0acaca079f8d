import type { NotificationUpdate } from '../shared/outbox.js';
import { INDEX_TABLE_SPECS } from '../shared/index-tables.js';
import { versionColumns, type ReadDialect } from '../shared/reads.js';

/**
 * The PostgreSQL dialect's fixed statements. Each is prepared once per connection under its own
 * name (node-postgres keeps the per-connection cache); dynamic SQL (search, history filters)
 * runs unnamed.
 */
export interface Statement {
  name: string;
  text: string;
}
let statementCount = 0;
const statement = (text: string): Statement => ({ name: `fhir_store_${++statementCount}`, text });

/** Reads answer `content_text`, the exact JSON written: JSONB reorders keys and rewrites numbers. */
export const PG_READS: ReadDialect = {
  content: 'content_text',
  count: 'COUNT(*)::int',
  explicitNullOrder: true,
};
const COLUMNS = versionColumns(PG_READS);

/** The write statement's parameters before the index columns ($1-$9). */
const ENVELOPE_PARAMS = 9;

/**
 * Each index table's rows are replaced in the write statement: deleted, then inserted from one
 * array parameter per column (`unnest`), in the order of INDEX_TABLE_SPECS from $10 on.
 */
function indexReplacement(): string[] {
  let n = ENVELOPE_PARAMS;
  const deletes = INDEX_TABLE_SPECS.map(
    (spec, i) => `d${i + 1} AS (DELETE FROM ${spec.table} WHERE resource_type = $1::text AND id = $2::text)`,
  );
  const inserts = INDEX_TABLE_SPECS.map((spec, i) => {
    const arrays = [
      `$${++n}::text[]`,
      ...spec.columns.map((c) => `$${++n}::${c.type === 'text' ? 'text' : 'float8'}[]`),
    ];
    const columns = ['code', ...spec.columns.map((c) => c.column)].join(', ');
    return `i${i + 1} AS (INSERT INTO ${spec.table} (resource_type, id, ${columns})
       SELECT $1::text, $2::text, * FROM unnest(${arrays.join(', ')}))`;
  });
  return [...deletes, ...inserts];
}

export const SQL = {
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
    'SELECT version_id AS "versionId", last_updated_ms AS "lastUpdatedMs" FROM resource WHERE resource_type = $1 AND id = $2 FOR UPDATE',
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
     ${indexReplacement().join(',\n     ')}
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

/** Parameters in the order of `notificationUpdate` (shared/outbox.ts): the new values, then the id. */
export const NOTIFICATION_UPDATES: Record<NotificationUpdate['kind'], Statement> = {
  delivered: statement(
    "UPDATE notification_outbox SET status = 'delivered', delivered_ms = $1::float8, lease_until_ms = NULL WHERE id = $2::bigint",
  ),
  retry: statement(
    'UPDATE notification_outbox SET next_attempt_ms = $1::float8, last_error = $2::text, lease_until_ms = NULL WHERE id = $3::bigint',
  ),
  failed: statement(
    "UPDATE notification_outbox SET status = 'failed', last_error = $1::text, lease_until_ms = NULL WHERE id = $2::bigint",
  ),
};
