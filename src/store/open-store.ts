import { ConfigError } from '../config/config.js';
import type { ObservableStore } from './fhir-store.js';
import { PostgresStore, parsePostgresUrl } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

export interface OpenStoreOptions {
  /** PostgreSQL connections in the pool (Config.postgresPoolSize, from PG_POOL_SIZE); default 10. */
  poolSize?: number;
}

/**
 * Picks the store dialect from DATABASE_URL: `sqlite:<path>`, `sqlite::memory:`, or
 * `postgres://…` / `postgresql://…` (optionally `?schema=<name>`). Opening a PostgreSQL store
 * applies pending migrations. Reads no environment: the pool size comes from the caller's Config.
 */
export async function openStore(
  databaseUrl: string,
  options: OpenStoreOptions = {},
): Promise<ObservableStore> {
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
    return PostgresStore.open({ ...target, poolSize: poolSize(options.poolSize) });
  }
  throw new ConfigError('DATABASE_URL must start with sqlite:, postgres:// or postgresql://');
}

function poolSize(value: number | undefined): number {
  if (value === undefined) {
    return 10;
  }
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new ConfigError('the PostgreSQL pool size (PG_POOL_SIZE) must be an integer from 1 to 1000');
  }
  return value;
}
