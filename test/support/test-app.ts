import { Writable } from 'node:stream';
import type { Express } from 'express';
import { createApp, createServices } from '../../src/app.js';
import { ensurePractice } from '../../src/referral/practice.js';
import { ResourceValidator } from '../../src/validation/resource-validator.js';
import { createLogger } from '../../src/logging.js';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { openStore } from '../../src/store/open-store.js';
import { testStoreUrl } from './postgres.js';

export interface TestApp {
  app: Express;
  store: FhirStore;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/**
 * A real app on a real store: SQLite in memory by default, or the database named by
 * TEST_DATABASE_URL (e.g. a file, to exercise WAL and the reader connection).
 */
export async function startTestApp(
  options: { databaseUrl?: string; bodyLimitBytes?: number } = {},
): Promise<TestApp> {
  // On PostgreSQL every app gets a fresh schema, as every sqlite::memory: app gets a fresh database.
  const store = await openStore(
    testStoreUrl(options.databaseUrl ?? process.env.TEST_DATABASE_URL ?? 'sqlite::memory:'),
  );
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) {
        if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const validator = sharedValidator();
  const practice = await ensurePractice(store, createServices({ validator, practice: PRACTICE }), {
    organizationId: 'practice',
    name: 'Riverside Physical Therapy',
  });
  const app = createApp({
    store,
    validator,
    practice,
    logger: createLogger('info', sink),
    bodyLimitBytes: options.bodyLimitBytes ?? 1024 * 1024,
    version: 'test',
  });
  return { app, store, logs, close: () => store.close() };
}

export const FHIR_JSON = 'application/fhir+json';

const PRACTICE = { reference: 'Organization/practice' };
let validator: ResourceValidator | undefined;

/** One validator per test worker: compiling terminology and profiles takes a few hundred ms. */
export function sharedValidator(): ResourceValidator {
  validator ??= new ResourceValidator();
  return validator;
}
