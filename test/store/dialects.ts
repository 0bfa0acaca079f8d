import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  postgresTestsEnabled,
  testPostgresUrl,
  warnPostgresSkipped,
  withFreshSchema,
} from '../support/postgres.js';

/**
 * The database URLs the store contract suite runs against. Every dialect the service supports is
 * listed here, so one suite proves them all alike. PostgreSQL runs when TEST_POSTGRES_URL is set
 * (each URL is a fresh, empty schema); under CI its absence is an error, not a skip.
 */
export function contractDatabaseUrls(): { name: string; url: () => string }[] {
  const dialects = [
    { name: 'sqlite in memory', url: () => 'sqlite::memory:' },
    {
      name: 'sqlite file (WAL)',
      url: () => `sqlite:${join(mkdtempSync(join(tmpdir(), 'fhir-store-')), 'store.sqlite')}`,
    },
  ];
  if (postgresTestsEnabled()) {
    const server = testPostgresUrl() as string;
    dialects.push({ name: 'postgres (a fresh schema per test)', url: () => withFreshSchema(server) });
  } else {
    warnPostgresSkipped();
  }
  return dialects;
}
