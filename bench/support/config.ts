import { loadConfig, type Config } from '../../src/config/config.js';

/**
 * The Config an in-process benchmark composes the service with (src/compose.ts), got through
 * `loadConfig` as production gets it: loopback on an ephemeral port, AUTH=off (benchmarks of
 * security bring their own token service), no delivery worker running unless the benchmark starts
 * it, the practice "Riverside Physical Therapy" under the id `practice`, 5 MiB bodies. `env` adds
 * to or replaces any of these, as environment values.
 */
export function benchConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    AUTH: 'off',
    DELIVERY_WORKER: 'off',
    PRACTICE_ORGANIZATION_ID: 'practice',
    PRACTICE_NAME: 'Riverside Physical Therapy',
    BODY_LIMIT_BYTES: String(5 * 1024 * 1024),
    ...env,
  });
}
