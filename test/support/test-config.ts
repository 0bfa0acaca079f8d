import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config/config.js';

/**
 * The Config test apps run with, got the way production gets it — `loadConfig` over an
 * environment — so tests never build a Config field by field. The defaults are the tests':
 * an in-memory SQLite store, authentication off (helpers that test security bring their own
 * token service), no delivery worker running unless a test starts it, 127.0.0.1 on an ephemeral
 * port, the practice "Riverside Physical Therapy" under the id `practice`, 1 MiB bodies.
 * `env` adds to or replaces any of them (values as the environment would hold them; an
 * undefined value keeps the default).
 */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    DATABASE_URL: 'sqlite::memory:',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    AUTH: 'off',
    DELIVERY_WORKER: 'off',
    PRACTICE_ORGANIZATION_ID: 'practice',
    PRACTICE_NAME: 'Riverside Physical Therapy',
    BODY_LIMIT_BYTES: String(1024 * 1024),
    ...Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined)),
  });
}

/** A log destination that keeps every line the app writes, parsed, in `logs`. */
export function captureLogs(): { logs: Record<string, unknown>[]; sink: Writable } {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) {
        if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logs, sink };
}
