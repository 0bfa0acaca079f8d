/**
 * `npm run test:postgres`: the whole suite once more with PostgreSQL as every test app's default
 * store (TEST_DATABASE_URL=$TEST_POSTGRES_URL; each app gets a fresh schema, see
 * test/support/postgres.ts). Extra arguments go to `vitest run`, e.g. `npm run test:postgres -- test/http`.
 *
 * Without TEST_POSTGRES_URL it says so and succeeds, except under CI, where it fails: CI must run
 * the PostgreSQL tests, never skip them. Start a throwaway server with
 * `export TEST_POSTGRES_URL="$(scripts/start-test-postgres.sh)"`.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const url = process.env.TEST_POSTGRES_URL;
const ci = process.env.CI;
const underCi = ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';

if (!url) {
  if (underCi) {
    console.error(
      'test:postgres: CI is set but TEST_POSTGRES_URL is not; the PostgreSQL suite must run in CI',
    );
    process.exit(1);
  }
  console.warn(
    '[postgres] test:postgres SKIPPED: TEST_POSTGRES_URL is not set. Run it with\n' +
      '  export TEST_POSTGRES_URL="$(scripts/start-test-postgres.sh)" && npm run test:postgres',
  );
  process.exit(0);
}

const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
console.log(`== the whole suite on PostgreSQL (TEST_DATABASE_URL=${url.replace(/\/\/[^@/]*@/, '//…@')})`);
const result = spawnSync(process.execPath, [vitest, 'run', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, TEST_DATABASE_URL: url },
});
process.exit(result.status ?? 1);
