import { ConfigError } from '../config/config.js';
import type { FhirStore } from './fhir-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

/** Picks the store dialect from DATABASE_URL: `sqlite:<path>`, `sqlite::memory:`, or `postgres://…`. */
export async function openStore(databaseUrl: string): Promise<FhirStore> {
  if (databaseUrl.startsWith('sqlite:')) {
    const path = databaseUrl.slice('sqlite:'.length);
    return new SqliteStore(path === '' ? ':memory:' : path);
  }
  throw new ConfigError('PostgreSQL support is not available yet: use a sqlite: DATABASE_URL');
}
