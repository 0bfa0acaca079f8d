import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Request } from 'autocannon';
import { runLoad, type LoadFigures } from './support/load.js';
import {
  buildService,
  killAllOnExit,
  startBaseline,
  startService,
  type Server,
} from './support/processes.js';
import { loadServiceRequests } from './load-service-requests.js';
import { buildReferral, patientCount } from './support/referral.js';
import { envNumber, environment, fixed, printTable, saveResults } from './support/report.js';

/**
 * HTTP throughput of the service on SQLite against a bare Express JSON server, same run, same
 * request shapes and bodies: create (POST a PT referral), read (GET by id), search (GET by subject
 * and status). Prints req/s, p50 and p99 for both and the service/baseline ratio.
 *
 * Env: BENCH_SECONDS (per scenario, default 10), BENCH_CONNECTIONS (default 16),
 * BENCH_WARMUP_SECONDS (default 2), BENCH_SKIP_BUILD=1 to reuse dist/.
 */
const SECONDS = envNumber('BENCH_SECONDS', 10);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 16);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 2);
/**
 * Both servers first get the same SEED referrals over patientCount(SEED) = 1000 patients, so a
 * search by subject matches the same handful (~5, ~2.5 active) on each. Referrals created during
 * the create scenario go to other patients and do not change what the searches match.
 */
const SEED = 5000;
/** Patients (seeded on the service, so references resolve) of the referrals created under load. */
const NEW_PATIENTS = 1000;
const MAX_IDS = 100_000;
const HEADERS = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
const SCENARIOS = ['create', 'read', 'search'] as const;
type Scenario = (typeof SCENARIOS)[number];

type Target = 'service' | 'baseline';

/** The three request shapes for one server; created ids feed the read scenario. */
function scenarioRequests(target: Target): { requests: Record<Scenario, Request>; created: () => number } {
  const ids: string[] = [];
  let next = 0;
  // A distinct identifier prefix per target, so identifiers stay unique per database.
  const prefix = target === 'service' ? 'SVC' : 'BASE';
  const create: Request = {
    method: 'POST',
    path: '/fhir/ServiceRequest',
    headers: HEADERS,
    setupRequest: (req) => {
      const i = next++;
      // A new referral must arrive active and reference a Patient the server holds.
      const referral = {
        ...buildReferral(i, SEED, prefix),
        status: 'active',
        subject: { reference: `Patient/new-${i % NEW_PATIENTS}` },
      };
      return { ...req, body: JSON.stringify(referral) };
    },
    onResponse: (status, _body, _ctx, headers) => {
      // autocannon passes raw header names, so `Location` keeps the server's capitalisation.
      const location = headers.location ?? headers.Location ?? '';
      const match = /ServiceRequest\/([^/]+)/.exec(String(location));
      if (status === 201 && match?.[1] && ids.length < MAX_IDS) {
        ids.push(match[1]);
      }
    },
  };
  let readIndex = 0;
  const read: Request = {
    method: 'GET',
    headers: HEADERS,
    setupRequest: (req) => ({ ...req, path: `/fhir/ServiceRequest/${ids[readIndex++ % ids.length]}` }),
  };
  let searchIndex = 0;
  const search: Request = {
    method: 'GET',
    headers: HEADERS,
    setupRequest: (req) => ({
      ...req,
      path: `/fhir/ServiceRequest?subject=Patient/pt-${searchIndex++ % patientCount(SEED)}&status=active`,
    }),
  };
  return { requests: { create, read, search }, created: () => ids.length };
}

/**
 * Scenario by scenario, service then baseline, so slow drift on a shared machine hits both alike.
 * The idle server costs nothing meanwhile.
 */
async function benchAll(
  servers: Record<Target, Server>,
): Promise<Record<Target, Record<Scenario, LoadFigures>>> {
  const targets: Target[] = ['service', 'baseline'];
  const shapes = { service: scenarioRequests('service'), baseline: scenarioRequests('baseline') };
  const results = { service: {}, baseline: {} } as Record<Target, Record<Scenario, LoadFigures>>;
  for (const scenario of SCENARIOS) {
    for (const target of targets) {
      const load = {
        url: servers[target].url,
        connections: CONNECTIONS,
        requests: [shapes[target].requests[scenario]],
      };
      // Warm-up: lets V8 optimise the hot paths (and the service's statement cache) before timing.
      await runLoad({ ...load, seconds: WARMUP_SECONDS });
      if (scenario === 'create' && shapes[target].created() === 0) {
        throw new Error(`${target}: no create succeeded during warm-up; is the referral body valid?`);
      }
      const figures = await runLoad({ ...load, seconds: SECONDS });
      results[target][scenario] = figures;
      console.log(
        `  ${scenario.padEnd(6)} ${target.padEnd(8)} ${fixed(figures.requestsPerSecond, 0).padStart(6)} req/s  ` +
          `p50 ${figures.p50Ms} ms  p99 ${figures.p99Ms} ms  status ${JSON.stringify(figures.statusCodes)}` +
          (figures.errors ? `  errors ${figures.errors}` : ''),
      );
    }
  }
  return results;
}

/** One request before the load, so a rejected body fails loudly instead of benchmarking 400s. */
async function checkCreate(server: Server): Promise<void> {
  await post(server, { ...buildReferral(0, SEED, 'CHECK'), status: 'active' });
}

async function post(server: Server, body: unknown): Promise<void> {
  const res = await fetch(`${server.url}/fhir/ServiceRequest`, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 201) {
    throw new Error(`create answered ${res.status}: ${text.slice(0, 500)}`);
  }
}

/** The baseline has no database to pre-fill, so it gets the seed over HTTP, 16 requests at a time. */
async function seedOverHttp(server: Server): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < SEED) {
      await post(server, buildReferral(next++, SEED));
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

async function main(): Promise<void> {
  killAllOnExit();
  console.log('Building dist/ ...');
  buildService();
  const dir = mkdtempSync(join(tmpdir(), 'referral-bench-'));
  const servers: Server[] = [];
  try {
    const databaseUrl = `sqlite:${join(dir, 'bench.sqlite')}`;
    // The same referrals the baseline gets over HTTP, written through the store (faster).
    await loadServiceRequests({
      databaseUrl,
      count: SEED,
      extraPatientIds: Array.from({ length: NEW_PATIENTS }, (_, i) => `new-${i}`),
    });
    const service = await startService(databaseUrl);
    servers.push(service);
    const baseline = await startBaseline();
    servers.push(baseline);
    await seedOverHttp(baseline);
    await checkCreate(service);
    await checkCreate(baseline);
    console.log(
      `Seeded ${SEED} referrals over ${patientCount(SEED)} patients on each server. ` +
        `Load: ${CONNECTIONS} connections, ${SECONDS} s per scenario (+${WARMUP_SECONDS} s warm-up), ` +
        `body ${JSON.stringify(buildReferral(0, SEED)).length} bytes`,
    );
    const results = await benchAll({ service, baseline });

    console.log('\nService (node dist/main.js, SQLite file, WAL, synchronous=FULL) vs bare Express JSON\n');
    printTable(
      [
        'scenario',
        'service req/s',
        'p50 ms',
        'p99 ms',
        'baseline req/s',
        'p50 ms',
        'p99 ms',
        'req/s ratio',
        'p99 ratio',
      ],
      SCENARIOS.map((scenario) => {
        const s = results.service[scenario];
        const b = results.baseline[scenario];
        return [
          scenario,
          fixed(s.requestsPerSecond, 0),
          s.p50Ms,
          s.p99Ms,
          fixed(b.requestsPerSecond, 0),
          b.p50Ms,
          b.p99Ms,
          fixed(s.requestsPerSecond / b.requestsPerSecond, 2),
          fixed(s.p99Ms / Math.max(b.p99Ms, 1), 1),
        ];
      }),
    );
    console.log('\nratios are service/baseline: req/s below 1 and p99 above 1 are the cost of the service.');
    const file = saveResults('http-throughput', {
      date: new Date().toISOString(),
      environment: environment(),
      settings: { seconds: SECONDS, connections: CONNECTIONS, warmupSeconds: WARMUP_SECONDS },
      service: { url: service.url, scenarios: results.service },
      baseline: { url: baseline.url, scenarios: results.baseline },
    });
    console.log(`Results written to ${file}`);
  } finally {
    for (const server of servers) {
      await server.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
