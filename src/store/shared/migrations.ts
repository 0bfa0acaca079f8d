import { INDEX_TABLE_SPECS } from './index-tables.js';

/**
 * Versioned schema migrations, numbered alike in both dialects (each describes the same tables in
 * its own DDL). A migration is applied once, in order, in its own transaction, and recorded in
 * `schema_migrations`.
 */
export interface Migration {
  version: number;
  description: string;
  statements: string[];
}

/** The migrations not yet applied, in version order. */
export function pendingMigrations(migrations: readonly Migration[], applied: Iterable<number>): Migration[] {
  const done = new Set(applied);
  return [...migrations].sort((a, b) => a.version - b.version).filter((m) => !done.has(m.version));
}

/** An index table with its lookup and owner indexes. */
function indexTable(name: string, text: string, columns: string, lookup: string): string[] {
  return [
    `CREATE TABLE ${name} (resource_type ${text} NOT NULL, id ${text} NOT NULL, code ${text} NOT NULL, ${columns})`,
    `CREATE INDEX ${name}_lookup ON ${name} (resource_type, code, ${lookup})`,
    `CREATE INDEX ${name}_owner ON ${name} (resource_type, id)`,
  ];
}

/**
 * Migration 1's search index tables, the same in both dialects but for the text type (SQLite's
 * `TEXT`, PostgreSQL's byte-ordered `TEXT COLLATE "C"`). Frozen: a new table is a new migration.
 */
export function searchIndexTables(text: string): string[] {
  const range = 'low DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL';
  return [
    ...indexTable('idx_token', text, `system ${text}, value ${text}`, 'value, system'),
    ...indexTable('idx_string', text, `value ${text} NOT NULL, norm ${text} NOT NULL`, 'norm'),
    ...indexTable(
      'idx_reference',
      text,
      `reference ${text} NOT NULL, target_type ${text}, target_id ${text}`,
      'target_id, target_type',
    ),
    `CREATE INDEX idx_reference_literal ON idx_reference (resource_type, code, reference)`,
    ...indexTable('idx_date', text, range, 'low, high'),
    ...indexTable('idx_number', text, range, 'low, high'),
    ...indexTable('idx_quantity', text, `system ${text}, unit ${text}, ${range}`, 'low, high'),
    ...indexTable('idx_uri', text, `value ${text} NOT NULL`, 'value'),
  ];
}

/** Migration 3 is the same SQL in both dialects. */
export const OWNER_INDEXES_WITH_CODE: Migration = {
  version: 3,
  description:
    'owner indexes include the parameter code (for correlated EXISTS checks); date upper bounds indexed',
  statements: [
    ...INDEX_TABLE_SPECS.filter((spec) => spec.createdIn === 1).flatMap(({ table }) => [
      `DROP INDEX ${table}_owner`,
      `CREATE INDEX ${table}_owner ON ${table} (resource_type, id, code)`,
    ]),
    `CREATE INDEX idx_date_high ON idx_date (resource_type, code, high)`,
  ],
};
