import { afterAll } from 'vitest';
import { dropCreatedSchemas } from './postgres.js';

/** Runs after every test file: drops the PostgreSQL schemas the file's test apps made. */
afterAll(async () => {
  await dropCreatedSchemas();
});
