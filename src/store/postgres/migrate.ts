import type pg from 'pg';
import { pendingMigrations } from '../shared/migrations.js';
import { PG_MIGRATIONS } from './schema.js';

/**
 * Applies pending migrations. A session advisory lock (per schema) makes instances that start
 * together take turns: the first applies, the others then find nothing left to do.
 */
export async function migrate(pool: pg.Pool, schema: string | undefined): Promise<void> {
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
      for (const migration of pendingMigrations(
        PG_MIGRATIONS,
        rows.map((r) => r.version),
      )) {
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
