import pg from 'pg';
import { loadServiceRequestsPostgres, type PgLoadSummary } from './load-postgres.js';
import { measureSequential, runLoad, type LatencyFigures, type LoadFigures } from './support/load.js';
import { startPostgresCluster, type PostgresCluster } from './support/postgres-cluster.js';
import { buildService } from './support/processes.js';
import {
  AUTHORED_END_MS,
  IDENTIFIER_SYSTEM,
  PT_CODES,
  SNOMED,
  mix,
  PRACTITIONER_COUNT,
  referralFacts,
} from './support/referral.js';
import { envNumber, environment, fixed, printTable, saveResults } from './support/report.js';
import { startBuiltService } from './support/service.js';

/**
 * Search latency with 1,000,000 stored ServiceRequests on PostgreSQL: bulk-loads the referrals
 * (bench/load-postgres.ts: the rows the store writes, with 200,000 Patients and 200
 * Practitioners), runs VACUUM ANALYZE (what autovacuum does to a freshly loaded table), starts the
 * built service on the schema and measures typical referral-inbox searches: p50/p99 over
 * sequential requests, and req/s with p99 under concurrent load. Prints the load time too.
 *
 * By default a PostgreSQL cluster of the benchmark's own is started (a tmp data directory,
 * removed at the end: ~10 GB for a million referrals); BENCH_POSTGRES_URL uses that server instead
 * (schema `million`, kept for a rerun with BENCH_REUSE=1).
 *
 * Env: BENCH_MILLION_SIZE (default 1000000), BENCH_SAMPLES (sequential requests per query,
 * default 300), BENCH_QUERY_SECONDS (cap per query, default 30), BENCH_SEARCH_SECONDS (load per
 * query, default 5), BENCH_CONNECTIONS (default 10), PG_POOL_SIZE (default 10), LOAD_BATCH,
 * LOAD_CONNECTIONS, BENCH_REUSE=1 (BENCH_POSTGRES_URL only: skip the load if the schema is full),
 * BENCH_SKIP_BUILD=1.
 */
const SIZE = envNumber('BENCH_MILLION_SIZE', 1_000_000);
const SAMPLES = envNumber('BENCH_SAMPLES', 300);
const QUERY_SECONDS = envNumber('BENCH_QUERY_SECONDS', 30);
const LOAD_SECONDS = envNumber('BENCH_SEARCH_SECONDS', 5);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 10);

const q = encodeURIComponent;
/** A stored referral picked pseudo-randomly, so every queried value exists. */
const pick = (i: number): ReturnType<typeof referralFacts> => referralFacts(mix(i * 31 + 17) % SIZE, SIZE);
const MONTH_MS = 30 * 24 * 3600 * 1000;
const month = (i: number): string =>
  new Date(AUTHORED_END_MS - ((i % 23) + 1) * MONTH_MS).toISOString().slice(0, 7);
const nextMonth = (ym: string): string => {
  const [y, m] = ym.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
};

/** The searches of search-scaling.ts (same names, same values), plus a referrer's inbox. */
const QUERIES: { name: string; path: (i: number) => string }[] = [
  { name: 'subject', path: (i) => `subject=${pick(i).subject}` },
  { name: 'subject+status', path: (i) => `subject=${pick(i).subject}&status=active` },
  { name: 'identifier', path: (i) => `identifier=${q(`${IDENTIFIER_SYSTEM}|${pick(i).identifier}`)}` },
  {
    name: 'authored month, -authored, 20',
    path: (i) => {
      const from = month(i);
      return `authored=ge${from}&authored=lt${nextMonth(from)}&_sort=-authored&_count=20`;
    },
  },
  { name: 'code', path: (i) => `code=${q(`${SNOMED}|${PT_CODES[i % PT_CODES.length]?.code}`)}` },
  {
    name: 'requester+status, -authored, 20',
    path: (i) =>
      `requester=Practitioner/pr-${i % PRACTITIONER_COUNT}&status=active&_sort=-authored&_count=20`,
  },
  {
    name: 'subject+_include=subject',
    path: (i) => `subject=${pick(i).subject}&_include=ServiceRequest:subject`,
  },
  { name: '_summary=count', path: () => '_summary=count' },
  { name: 'status+_summary=count', path: () => 'status=active&_summary=count' },
];

interface QueryFigures {
  query: string;
  example: string;
  meanMatches: number;
  sequential: LatencyFigures;
  load: LoadFigures;
}

async function rowCount(databaseUrl: string): Promise<number> {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') as string;
  url.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'resource'`,
      [schema],
    );
    if (!rows[0]?.n) return 0;
    const count = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${schema}.resource WHERE resource_type = 'ServiceRequest'`,
    );
    return count.rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

async function vacuumAnalyze(databaseUrl: string): Promise<number> {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') as string;
  url.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  const started = performance.now();
  try {
    const { rows } = await client.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
      [schema],
    );
    for (const { table_name } of rows) await client.query(`VACUUM (ANALYZE) ${schema}.${table_name}`);
  } finally {
    await client.end();
  }
  return (performance.now() - started) / 1000;
}

async function databaseSize(databaseUrl: string): Promise<string> {
  const url = new URL(databaseUrl);
  url.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rows } = await client.query<{ size: string }>(
      'SELECT pg_size_pretty(pg_database_size(current_database())) AS size',
    );
    return rows[0]?.size ?? '?';
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  console.log('Building dist/ ...');
  buildService();
  let cluster: PostgresCluster | undefined;
  const destroy = (): void => cluster?.destroy();
  process.once('exit', destroy);
  process.once('SIGINT', () => process.exit(130));
  try {
    let databaseUrl: string;
    let where: string;
    if (process.env.BENCH_POSTGRES_URL) {
      const url = new URL(process.env.BENCH_POSTGRES_URL);
      url.searchParams.set('schema', 'million');
      databaseUrl = url.toString();
      where = 'BENCH_POSTGRES_URL, schema million';
    } else {
      const settings = {
        shared_buffers: '1GB',
        effective_cache_size: '4GB',
        max_wal_size: '8GB',
        checkpoint_timeout: '30min',
        maintenance_work_mem: '512MB',
      };
      cluster = await startPostgresCluster({ settings });
      databaseUrl = `${cluster.url}?schema=million`;
      where = `own cluster (${Object.entries(settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}, fsync on)`;
    }
    let load: PgLoadSummary | undefined;
    let vacuumSeconds = 0;
    const existing = process.env.BENCH_REUSE === '1' ? await rowCount(databaseUrl) : 0;
    if (existing >= SIZE) {
      console.log(`Reusing ${existing} stored ServiceRequests (BENCH_REUSE=1)`);
    } else {
      console.log(`Loading ${SIZE} ServiceRequests into PostgreSQL (${where}) ...`);
      load = await loadServiceRequestsPostgres({
        databaseUrl,
        count: SIZE,
        batchSize: process.env.LOAD_BATCH ? Number(process.env.LOAD_BATCH) : undefined,
        connections: process.env.LOAD_CONNECTIONS ? Number(process.env.LOAD_CONNECTIONS) : undefined,
        onProgress: (n) => {
          if (n % 50_000 < 2000 || n === SIZE) process.stdout.write(`\r  ${n}/${SIZE}`);
        },
      });
      console.log(
        `\n  loaded in ${fixed(load.seconds)} s (${fixed(load.perSecond, 0)} referrals/s; ${load.resources} resources, ${load.indexRows} index rows)`,
      );
      vacuumSeconds = await vacuumAnalyze(databaseUrl);
      console.log(
        `  VACUUM ANALYZE in ${fixed(vacuumSeconds)} s; database size ${await databaseSize(databaseUrl)}`,
      );
    }

    const service = await startBuiltService(databaseUrl);
    const results: QueryFigures[] = [];
    try {
      for (const query of QUERIES) {
        const path = (i: number): string => `/fhir/ServiceRequest?${query.path(i)}`;
        const matches: number[] = [];
        const sequential = await measureSequential(
          service.url,
          path,
          SAMPLES,
          QUERY_SECONDS,
          (status, body) => {
            const bundle = JSON.parse(body) as {
              resourceType?: string;
              total?: number;
              entry?: { search?: { mode?: string } }[];
            };
            if (status !== 200 || bundle.resourceType !== 'Bundle') {
              throw new Error(`${query.name}: ${status} ${body.slice(0, 300)}`);
            }
            matches.push(
              bundle.total ?? (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').length,
            );
          },
        );
        let next = 0;
        const loadFigures = await runLoad({
          url: service.url,
          connections: CONNECTIONS,
          seconds: LOAD_SECONDS,
          requests: [
            {
              method: 'GET',
              headers: { accept: 'application/fhir+json' },
              setupRequest: (req) => ({ ...req, path: path(next++) }),
            },
          ],
        });
        const figures: QueryFigures = {
          query: query.name,
          example: path(0),
          meanMatches: matches.reduce((a, b) => a + b, 0) / matches.length,
          sequential,
          load: loadFigures,
        };
        results.push(figures);
        console.log(
          `  ${query.name.padEnd(34)} matches/page ${fixed(figures.meanMatches).padStart(9)}  ` +
            `p50 ${fixed(sequential.p50Ms, 2).padStart(8)} ms  p99 ${fixed(sequential.p99Ms, 2).padStart(8)} ms ` +
            `(${sequential.samples} seq)  ${fixed(loadFigures.requestsPerSecond, 0).padStart(5)} req/s ` +
            `(c=${CONNECTIONS}, p99 ${loadFigures.p99Ms} ms)` +
            (loadFigures.non2xx || loadFigures.errors
              ? `  non-2xx ${loadFigures.non2xx} errors ${loadFigures.errors}`
              : ''),
        );
      }
    } finally {
      await service.stop();
    }

    console.log(
      `\nSearch latency with ${SIZE} ServiceRequests on PostgreSQL (sequential p50/p99; req/s and p99 at ${CONNECTIONS} connections)\n`,
    );
    printTable(
      ['query', 'matches', 'p50 ms', 'p99 ms', 'req/s', 'p99 ms (load)', 'example'],
      results.map((r) => [
        r.query,
        fixed(r.meanMatches, 0),
        fixed(r.sequential.p50Ms, 2),
        fixed(r.sequential.p99Ms, 2),
        // No answer within the load phase: slower than LOAD_SECONDS at this concurrency.
        r.load.requests > 0
          ? fixed(r.load.requestsPerSecond, r.load.requestsPerSecond < 10 ? 1 : 0)
          : '0 done',
        r.load.requests > 0 ? r.load.p99Ms : `>${LOAD_SECONDS * 1000}`,
        r.example.length > 90 ? `${r.example.slice(0, 87)}...` : r.example,
      ]),
    );
    console.log(
      "\n'matches' is Bundle.total where the search gives one (_summary=count), else the entries of the first page;\n" +
        "'0 done': no request finished within the load phase.",
    );
    if (load) {
      console.log(
        `Load: ${fixed(load.seconds)} s for ${SIZE} referrals (${fixed(load.perSecond, 0)}/s, bulk INSERTs of the store's rows), VACUUM ANALYZE ${fixed(vacuumSeconds)} s.`,
      );
    }
    const file = saveResults('search-million', {
      date: new Date().toISOString(),
      environment: environment(),
      settings: {
        size: SIZE,
        samples: SAMPLES,
        querySeconds: QUERY_SECONDS,
        loadSeconds: LOAD_SECONDS,
        connections: CONNECTIONS,
        postgres: where,
        poolSize: process.env.PG_POOL_SIZE ?? '10',
      },
      load,
      vacuumSeconds,
      results,
    });
    console.log(`Results written to ${file}`);
  } finally {
    destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
