import type { Express } from 'express';
import { compose, type Composition } from '../../src/compose.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { ResourceValidator } from '../../src/validation/resource-validator.js';
import { testStoreUrl } from './postgres.js';
import { captureLogs, testConfig } from './test-config.js';

export interface TestApp {
  app: Express;
  store: FhirStore;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  /** The composed service (src/compose.ts) the app belongs to. */
  service: Composition;
  close(): Promise<void>;
}

export interface TestAppOptions {
  databaseUrl?: string;
  bodyLimitBytes?: number;
}

/**
 * A real app on a real store: SQLite in memory by default, or the database named by
 * TEST_DATABASE_URL (e.g. a file, to exercise WAL and the reader connection). Composed by
 * src/compose.ts as production is, without security and audit (tests of those use secure-app.ts).
 */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const { logs, sink } = captureLogs();
  const service = await compose(
    testConfig({
      // On PostgreSQL every app gets a fresh schema, as every sqlite::memory: app gets a fresh database.
      DATABASE_URL: testStoreUrl(options.databaseUrl ?? process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
      LOG_LEVEL: 'info',
      BODY_LIMIT_BYTES: options.bodyLimitBytes === undefined ? undefined : String(options.bodyLimitBytes),
    }),
    { logSink: sink, validator: sharedValidator(), audit: false, version: 'test' },
  );
  return { app: service.app, store: service.store, logs, service, close: () => service.close() };
}

export const FHIR_JSON = 'application/fhir+json';

let validator: ResourceValidator | undefined;

/** One validator per test worker: compiling terminology and profiles takes a few hundred ms. */
export function sharedValidator(): ResourceValidator {
  validator ??= new ResourceValidator();
  return validator;
}
