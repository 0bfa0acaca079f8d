import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadServiceRequests, type LoadSummary } from './load-service-requests.js';
import { measureSequential, runLoad, type LatencyFigures, type LoadFigures } from './support/load.js';
import { buildService, killAllOnExit, startService } from './support/processes.js';
import {
  AUTHORED_END_MS,
  IDENTIFIER_SYSTEM,
  PT_CODES,
  SNOMED,
  mix,
  referralFacts,
} from './support/referral.js';
import { envNumber, environment, fixed, printTable, saveResults } from './support/report.js';

/**
 * Search latency as the data grows: loads N realistic referrals per size (BENCH_SIZES, default
 * 10000,100000) into a fresh SQLite file, starts the built service on it, and measures typical
 * searches: p50/p99 over sequential requests and req/s under concurrent load. Prints a table per
 * size and the largest/smallest ratio per query.
 *
 * Env: BENCH_SIZES, BENCH_SAMPLES (sequential requests per query, default 300),
 * BENCH_QUERY_SECONDS (cap on the sequential phase per query, default 30), BENCH_SEARCH_SECONDS
 * (autocannon per query, default 5), BENCH_CONNECTIONS (default 10), BENCH_ANALYZE=1 (run SQLite
 * ANALYZE after loading, to see what planner statistics change), BENCH_SKIP_BUILD=1.
 */
const SIZES = (process.env.BENCH_SIZES ?? '10000,100000').split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`BENCH_SIZES must be positive integers, got '${s}'`);
  }
  return n;
});
const SAMPLES = envNumber('BENCH_SAMPLES', 300);
const QUERY_SECONDS = envNumber('BENCH_QUERY_SECONDS', 30);
const LOAD_SECONDS = envNumber('BENCH_SEARCH_SECONDS', 5);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 10);
const ANALYZE = process.env.BENCH_ANALYZE === '1';

interface Query {
  name: string;
  /** The i-th request's path; varied so the cache does not serve one hot row. */
  path(i: number, size: number): string;
}

const q = encodeURIComponent;
/** A stored referral picked pseudo-randomly, so every queried value exists. */
const pick = (i: number, size: number): ReturnType<typeof referralFacts> =>
  referralFacts(mix(i * 31 + 17) % size, size);
const MONTH_MS = 30 * 24 * 3600 * 1000;
const month = (i: number): string =>
  new Date(AUTHORED_END_MS - ((i % 23) + 1) * MONTH_MS).toISOString().slice(0, 7);
const nextMonth = (ym: string): string => {
  const [y, m] = ym.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
};

const QUERIES: Query[] = [
  { name: 'subject', path: (i, n) => `subject=${pick(i, n).subject}` },
  { name: 'subject+status', path: (i, n) => `subject=${pick(i, n).subject}&status=active` },
  { name: 'identifier', path: (i, n) => `identifier=${q(`${IDENTIFIER_SYSTEM}|${pick(i, n).identifier}`)}` },
  {
    name: 'authored month, -authored, 20',
    path: (i) => {
      const from = month(i);
      return `authored=ge${from}&authored=lt${nextMonth(from)}&_sort=-authored&_count=20`;
    },
  },
  { name: 'code', path: (i) => `code=${q(`${SNOMED}|${PT_CODES[i % PT_CODES.length]?.code}`)}` },
  { name: '_summary=count', path: () => '_summary=count' },
  { name: 'status+_summary=count', path: () => 'status=active&_summary=count' },
];

interface QueryFigures {
  query: string;
  example: string;
  meanTotal: number;
  sequential: LatencyFigures;
  load: LoadFigures;
}

interface SizeFigures {
  size: number;
  load: LoadSummary;
  queries: QueryFigures[];
}

async function benchSize(size: number): Promise<SizeFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'referral-search-'));
  const file = join(dir, 'search.sqlite');
  try {
    console.log(`\n== ${size} ServiceRequests`);
    const load = await loadServiceRequests({ databaseUrl: `sqlite:${file}`, count: size });
    console.log(`loaded in ${fixed(load.seconds)} s: ${fixed(load.perSecond, 0)} referrals/s`);
    if (ANALYZE) {
      const db = new Database(file);
      db.exec('ANALYZE');
      db.close();
      console.log('ANALYZE done');
    }
    const service = await startService(`sqlite:${file}`);
    try {
      const queries: QueryFigures[] = [];
      for (const query of QUERIES) {
        const path = (i: number): string => `/fhir/ServiceRequest?${query.path(i, size)}`;
        const totals: number[] = [];
        const sequential = await measureSequential(
          service.url,
          path,
          SAMPLES,
          QUERY_SECONDS,
          (status, body) => {
            const bundle = JSON.parse(body) as { resourceType?: string; total?: number };
            if (status !== 200 || bundle.resourceType !== 'Bundle') {
              throw new Error(`${query.name}: ${status} ${body.slice(0, 300)}`);
            }
            totals.push(bundle.total ?? Number.NaN);
          },
        );
        let next = 0;
        const load = await runLoad({
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
          meanTotal: totals.reduce((a, b) => a + b, 0) / totals.length,
          sequential,
          load,
        };
        queries.push(figures);
        console.log(
          `  ${query.name.padEnd(30)} matches ${fixed(figures.meanTotal).padStart(8)}  ` +
            `p50 ${fixed(sequential.p50Ms, 2).padStart(7)} ms  p99 ${fixed(sequential.p99Ms, 2).padStart(7)} ms ` +
            `(${sequential.samples} seq)  ${fixed(load.requestsPerSecond, 0).padStart(5)} req/s ` +
            `(c=${CONNECTIONS}, p99 ${load.p99Ms} ms)${load.non2xx || load.errors ? `  non-2xx ${load.non2xx} errors ${load.errors}` : ''}`,
        );
      }
      return { size, load, queries };
    } finally {
      await service.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function printSummary(results: SizeFigures[]): void {
  const first = results[0];
  const last = results[results.length - 1];
  if (!first || !last) {
    return;
  }
  const label = (n: number): string => (n % 1000 === 0 ? `${n / 1000}k` : String(n));
  console.log(
    `\nSearch latency (sequential p50/p99 in ms) and throughput (req/s, ${CONNECTIONS} connections)\n`,
  );
  printTable(
    [
      'query',
      ...results.flatMap((r) => [
        `matches@${label(r.size)}`,
        `p50@${label(r.size)}`,
        `p99@${label(r.size)}`,
        `req/s@${label(r.size)}`,
      ]),
      ...(results.length > 1
        ? [`p50 ${label(last.size)}/${label(first.size)}`, `p99 ratio`, `req/s ratio`]
        : []),
    ],
    QUERIES.map((query, qi) => {
      const a = first.queries[qi];
      const b = last.queries[qi];
      return [
        query.name,
        ...results.flatMap((r) => {
          const f = r.queries[qi];
          return f
            ? [
                fixed(f.meanTotal, 0),
                fixed(f.sequential.p50Ms, 2),
                fixed(f.sequential.p99Ms, 2),
                fixed(f.load.requestsPerSecond, 0),
              ]
            : ['', '', '', ''];
        }),
        ...(results.length > 1 && a && b
          ? [
              fixed(b.sequential.p50Ms / a.sequential.p50Ms, 1),
              fixed(b.sequential.p99Ms / a.sequential.p99Ms, 1),
              fixed(b.load.requestsPerSecond / a.load.requestsPerSecond, 2),
            ]
          : []),
      ];
    }),
  );
  console.log(
    '\nLoad rate through the store (batched transactions, extractIndexRows; counts referrals, the N/5 Patients and 200 Practitioners are written too):',
  );
  for (const r of results) {
    console.log(`  ${label(r.size)}: ${fixed(r.load.seconds)} s, ${fixed(r.load.perSecond, 0)} referrals/s`);
  }
}

async function main(): Promise<void> {
  killAllOnExit();
  console.log('Building dist/ ...');
  buildService();
  console.log(
    `Sizes ${SIZES.join(', ')}; per query ${SAMPLES} sequential requests (max ${QUERY_SECONDS} s) ` +
      `then ${LOAD_SECONDS} s at ${CONNECTIONS} connections${ANALYZE ? '; ANALYZE after load' : ''}`,
  );
  const results: SizeFigures[] = [];
  for (const size of SIZES) {
    results.push(await benchSize(size));
  }
  printSummary(results);
  const file = saveResults('search-scaling', {
    date: new Date().toISOString(),
    environment: environment(),
    settings: {
      sizes: SIZES,
      samples: SAMPLES,
      querySeconds: QUERY_SECONDS,
      loadSeconds: LOAD_SECONDS,
      connections: CONNECTIONS,
      analyze: ANALYZE,
    },
    results,
  });
  console.log(`Results written to ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
