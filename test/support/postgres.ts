import pg from 'pg';
import { randomBytes } from 'node:crypto';

/**
 * PostgreSQL for tests. The database comes from TEST_POSTGRES_URL (start a throwaway cluster with
 * `export TEST_POSTGRES_URL="$(scripts/start-test-postgres.sh)"`); each store a test opens gets a
 * schema of its own (`?schema=test_…`), so every test starts from an empty database and test
 * files can run in parallel against one server. The schemas are dropped when the test file ends
 * (test/support/postgres-setup.ts).
 */

export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\//.test(url);
}

/** The PostgreSQL server for tests, if one is configured. */
export function testPostgresUrl(): string | undefined {
  const url = process.env.TEST_POSTGRES_URL;
  return url ? url : undefined;
}

/** CI must run the PostgreSQL tests, never skip them. */
export function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/** Throws under CI without TEST_POSTGRES_URL; elsewhere answers whether PostgreSQL tests run. */
export function postgresTestsEnabled(): boolean {
  if (testPostgresUrl()) {
    return true;
  }
  if (isCi()) {
    throw new Error(
      'CI is set but TEST_POSTGRES_URL is not: the PostgreSQL tests must run in CI (.ci/run starts a server with scripts/start-test-postgres.sh)',
    );
  }
  return false;
}

let warned = false;
/** Says once per worker, visibly, that the PostgreSQL tests are skipped and how to run them. */
export function warnPostgresSkipped(): void {
  if (!warned) {
    warned = true;
    console.warn(
      '\n[postgres] PostgreSQL tests SKIPPED: TEST_POSTGRES_URL is not set. Run them with\n' +
        '  export TEST_POSTGRES_URL="$(scripts/start-test-postgres.sh)" && npm test\n',
    );
  }
}

/** Schemas created by this worker for the current test file (name -> server URL), dropped when it ends. */
const created = new Map<string, string>();
let counter = 0;

/** `url` with a new, unique `schema` parameter: an empty database for one store. */
export function withFreshSchema(url: string): string {
  const schema = `test_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  const parsed = new URL(url);
  parsed.searchParams.delete('schema');
  created.set(schema, parsed.toString());
  parsed.searchParams.set('schema', schema);
  return parsed.toString();
}

/**
 * The URL a test store should open: a postgres URL without `schema` gets a fresh one (so an app
 * built from TEST_DATABASE_URL starts empty, like `sqlite::memory:`); anything else is unchanged.
 */
export function testStoreUrl(url: string): string {
  if (isPostgresUrl(url) && !new URL(url).searchParams.has('schema')) {
    return withFreshSchema(url);
  }
  return url;
}

/** Drops the schemas made for the test file that just ended (its stores are closed by then). */
export async function dropCreatedSchemas(): Promise<void> {
  const byServer = new Map<string, string[]>();
  for (const [schema, server] of created) {
    byServer.set(server, [...(byServer.get(server) ?? []), schema]);
  }
  created.clear();
  for (const [server, schemas] of byServer) {
    const client = new pg.Client({ connectionString: server });
    try {
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schemas.join(', ')} CASCADE`);
    } catch {
      // Best effort: a server a test made unreachable on purpose never got the schema anyway,
      // and the test cluster is thrown away after the run.
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
