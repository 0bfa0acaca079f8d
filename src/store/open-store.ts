import { ConfigError } from '../config/config.js';
import type { FhirStore } from './fhir-store.js';
import { PostgresStore, parsePostgresUrl } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

/**
 * Picks the store dialect from DATABASE_URL: `sqlite:<path>`, `sqlite::memory:`, or
 * `postgres://…` / `postgresql://…` (optionally `?schema=<name>`; pool size from PG_POOL_SIZE,
 * default 10). Opening a PostgreSQL store applies pending migrations.
 */
export async function openStore(
  databaseUrl: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<FhirStore> {
  if (databaseUrl.startsWith('sqlite:')) {
    const path = databaseUrl.slice('sqlite:'.length);
    return new SqliteStore(path === '' ? ':memory:' : path);
  }
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) {
    let target: ReturnType<typeof parsePostgresUrl>;
    try {
      target = parsePostgresUrl(databaseUrl);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    return PostgresStore.open({ ...target, poolSize: poolSize(env.PG_POOL_SIZE) });
  }
  throw new ConfigError('DATABASE_URL must start with sqlite:, postgres:// or postgresql://');
}

function poolSize(value: string | undefined): number {
  if (value === undefined || value === '') {
    return 10;
  }
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new ConfigError('PG_POOL_SIZE must be an integer from 1 to 1000');
  }
  return n;
}
