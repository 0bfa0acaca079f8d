import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Request } from 'autocannon';
import { loadServiceRequests } from './load-service-requests.js';
import { runLoad, type LoadFigures } from './support/load.js';
import { startPostgresCluster, type PostgresCluster } from './support/postgres-cluster.js';
import { buildService } from './support/processes.js';
import { buildReferral, patientCount } from './support/referral.js';
import { envNumber, environment, fixed, printTable, saveResults } from './support/report.js';
import { startBuiltService, type BuiltService } from './support/service.js';

/**
 * The service on PostgreSQL against the service on SQLite, same run, same machine, same data and
 * request shapes: intake (POST a PT referral: validation, the ServiceRequest, its EpisodeOfCare and
 * Task in one transaction), read (GET a ServiceRequest by id) and search (GET by subject and
 * status). Scenario by scenario, the two alternate (SQLite first in odd rounds, PostgreSQL first in
 * even ones), so drift on a shared machine hits both alike. Prints req/s, p50 and p99 per dialect
 * and the PostgreSQL/SQLite ratios.
 *
 * Both are durable: SQLite in WAL mode with synchronous=FULL (the service's setting), PostgreSQL
 * with fsync and synchronous_commit on. By default the benchmark starts a PostgreSQL cluster of its
 * own with those settings (server binaries needed, see scripts/start-test-postgres.sh); with
 * BENCH_POSTGRES_URL it uses that server instead (a fresh schema, dropped at the end — mind that
 * the test server of scripts/start-test-postgres.sh runs with fsync=off).
 *
 * Env: BENCH_SECONDS (per measurement, default 10), BENCH_ROUNDS (default 2), BENCH_CONNECTIONS
 * (default 16), BENCH_WARMUP_SECONDS (default 3), BENCH_SEED (referrals stored first, default
 * 5000), PG_POOL_SIZE (default 10), BENCH_SKIP_BUILD=1 to reuse dist/.
 */
const SECONDS = envNumber('BENCH_SECONDS', 10);
const ROUNDS = envNumber('BENCH_ROUNDS', 2);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 16);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 3);
const SEED = envNumber('BENCH_SEED', 5000);
/** Patients of the referrals created under load (created with the seed, so references resolve). */
const NEW_PATIENTS = 1000;
const HEADERS = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
const SCENARIOS = ['intake', 'read', 'search'] as const;
type Scenario = (typeof SCENARIOS)[number];
type Dialect = 'sqlite' | 'postgres';

function requestFor(scenario: Scenario, dialect: Dialect, round: number): Request {
  let next = 0;
  switch (scenario) {
    case 'intake': {
      // Identifiers unique per dialect and round: every POST is a new referral, never a re-send.
      const prefix = `${dialect === 'sqlite' ? 'SQ' : 'PG'}${round}`;
      return {
        method: 'POST',
        path: '/fhir/ServiceRequest',
        headers: HEADERS,
        setupRequest: (req) => {
          const i = next++;
          const referral = {
            ...buildReferral(i, SEED, prefix),
            status: 'active',
            subject: { reference: `Patient/new-${i % NEW_PATIENTS}` },
          };
          return { ...req, body: JSON.stringify(referral) };
        },
      };
    }
    case 'read':
      return {
        method: 'GET',
        headers: HEADERS,
        setupRequest: (req) => ({ ...req, path: `/fhir/ServiceRequest/sr-${(next++ * 7919) % SEED}` }),
      };
    case 'search':
      return {
        method: 'GET',
        headers: HEADERS,
        setupRequest: (req) => ({
          ...req,
          path: `/fhir/ServiceRequest?subject=Patient/pt-${(next++ * 31) % patientCount(SEED)}&status=active`,
        }),
      };
  }
}

/** One request of each scenario before the load, so a refused body fails loudly. */
async function check(service: BuiltService, dialect: Dialect): Promise<void> {
  const referral = { ...buildReferral(0, SEED, `CHECK-${dialect}`), status: 'active' };
  for (const [method, path, body, expected] of [
    ['POST', '/fhir/ServiceRequest', referral, 201],
    ['GET', '/fhir/ServiceRequest/sr-1', undefined, 200],
    ['GET', '/fhir/ServiceRequest?subject=Patient/pt-1&status=active', undefined, 200],
  ] as const) {
    const res = await fetch(`${service.url}${path}`, {
      method,
      headers: HEADERS,
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (res.status !== expected)
      throw new Error(`${dialect}: ${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  }
}

interface Target {
  dialect: Dialect;
  databaseUrl: string;
  service?: BuiltService;
}

async function main(): Promise<void> {
  console.log('Building dist/ ...');
  buildService();
  const dir = mkdtempSync(join(tmpdir(), 'referral-pg-vs-sqlite-'));
  let cluster: PostgresCluster | undefined;
  let dropSchema: (() => Promise<void>) | undefined;
  const targets: Target[] = [];
  const destroy = (): void => cluster?.destroy();
  process.once('exit', destroy);
  try {
    let postgresUrl: string;
    let postgresSettings: string;
    if (process.env.BENCH_POSTGRES_URL) {
      const schema = `bench_${process.pid}_${Date.now().toString(36)}`;
      const url = new URL(process.env.BENCH_POSTGRES_URL);
      url.searchParams.set('schema', schema);
      postgresUrl = url.toString();
      postgresSettings = `BENCH_POSTGRES_URL server, schema ${schema}`;
      dropSchema = async () => {
        const base = new URL(postgresUrl);
        base.searchParams.delete('schema');
        const client = new pg.Client({ connectionString: base.toString() });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      };
    } else {
      const settings = {
        shared_buffers: '256MB',
        fsync: 'on',
        synchronous_commit: 'on',
        max_wal_size: '2GB',
      };
      cluster = await startPostgresCluster({ settings });
      postgresUrl = `${cluster.url}?schema=bench`;
      postgresSettings = `own cluster on 127.0.0.1:${cluster.port} (${Object.entries(settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')})`;
    }
    targets.push(
      { dialect: 'sqlite', databaseUrl: `sqlite:${join(dir, 'bench.sqlite')}` },
      { dialect: 'postgres', databaseUrl: postgresUrl },
    );
    for (const target of targets) {
      const load = await loadServiceRequests({
        databaseUrl: target.databaseUrl,
        count: SEED,
        extraPatientIds: Array.from({ length: NEW_PATIENTS }, (_, i) => `new-${i}`),
      });
      console.log(
        `${target.dialect}: ${SEED} referrals stored through the store in ${fixed(load.seconds)} s`,
      );
      target.service = await startBuiltService(target.databaseUrl);
      await check(target.service, target.dialect);
    }
    console.log(
      `SQLite: WAL, synchronous=FULL, file in ${dir}. PostgreSQL: ${postgresSettings}, PG_POOL_SIZE=${process.env.PG_POOL_SIZE ?? 10}.\n` +
        `Load: ${CONNECTIONS} connections, ${ROUNDS} rounds × ${SECONDS} s per scenario and dialect (+${WARMUP_SECONDS} s warm-up).`,
    );

    const figures: Record<Dialect, Record<Scenario, LoadFigures[]>> = {
      sqlite: { intake: [], read: [], search: [] },
      postgres: { intake: [], read: [], search: [] },
    };
    for (const scenario of SCENARIOS) {
      for (let round = 1; round <= ROUNDS; round++) {
        const order = round % 2 === 1 ? targets : [...targets].reverse();
        for (const target of order) {
          const service = target.service as BuiltService;
          if (round === 1) {
            await runLoad({
              url: service.url,
              connections: CONNECTIONS,
              seconds: WARMUP_SECONDS,
              requests: [requestFor(scenario, target.dialect, 0)],
            });
          }
          const result = await runLoad({
            url: service.url,
            connections: CONNECTIONS,
            seconds: SECONDS,
            requests: [requestFor(scenario, target.dialect, round)],
          });
          figures[target.dialect][scenario].push(result);
          console.log(
            `  ${scenario.padEnd(6)} round ${round} ${target.dialect.padEnd(8)} ${fixed(result.requestsPerSecond, 0).padStart(6)} req/s  ` +
              `p50 ${result.p50Ms} ms  p99 ${result.p99Ms} ms  status ${JSON.stringify(result.statusCodes)}` +
              (result.errors ? `  errors ${result.errors}` : ''),
          );
        }
      }
    }

    const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
    const summary = (dialect: Dialect, scenario: Scenario) => {
      const runs = figures[dialect][scenario];
      return {
        rps: mean(runs.map((r) => r.requestsPerSecond)),
        p50: mean(runs.map((r) => r.p50Ms)),
        p99: mean(runs.map((r) => r.p99Ms)),
        non2xx: runs.reduce((n, r) => n + r.non2xx + r.errors, 0),
      };
    };
    console.log(
      `\nPostgreSQL vs SQLite (node dist/main.js, mean of ${ROUNDS} rounds, ${CONNECTIONS} connections)\n`,
    );
    printTable(
      [
        'scenario',
        'SQLite req/s',
        'p50 ms',
        'p99 ms',
        'PostgreSQL req/s',
        'p50 ms',
        'p99 ms',
        'req/s PG/SQLite',
        'p99 PG/SQLite',
        'non-2xx',
      ],
      SCENARIOS.map((scenario) => {
        const s = summary('sqlite', scenario);
        const p = summary('postgres', scenario);
        return [
          scenario,
          fixed(s.rps, 0),
          fixed(s.p50, 1),
          fixed(s.p99, 1),
          fixed(p.rps, 0),
          fixed(p.p50, 1),
          fixed(p.p99, 1),
          fixed(p.rps / s.rps, 2),
          fixed(p.p99 / Math.max(s.p99, 1), 2),
          `${s.non2xx}/${p.non2xx}`,
        ];
      }),
    );
    const file = saveResults('postgres-vs-sqlite', {
      date: new Date().toISOString(),
      environment: environment(),
      settings: {
        seconds: SECONDS,
        rounds: ROUNDS,
        connections: CONNECTIONS,
        warmupSeconds: WARMUP_SECONDS,
        seed: SEED,
        postgres: postgresSettings,
        poolSize: process.env.PG_POOL_SIZE ?? '10',
      },
      figures,
    });
    console.log(`Results written to ${file}`);
  } finally {
    for (const target of targets) await target.service?.stop();
    await dropSchema?.().catch(() => undefined);
    destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
