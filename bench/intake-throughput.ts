import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Resource, ServiceRequest } from '@medplum/fhirtypes';
import type { Request } from 'autocannon';
import type { Logger } from 'pino';
import { compose } from '../src/compose.js';
import { createLogger } from '../src/logging.js';
import { ResourceValidator } from '../src/validation/resource-validator.js';
import { benchConfig } from './support/config.js';
import { runLoad, type LoadFigures } from './support/load.js';
import { envNumber, environment, fixed, printTable, saveResults } from './support/report.js';

/**
 * Validated referral intake against a plain create of the same bytes, in one run, in process:
 * the real app (validation, then the referral hooks write the EpisodeOfCare, Task and referrer
 * notification in the same transaction) and a second app on the same HTTP stack and store type
 * with the hooks off and validation skipped. Scenarios: one ServiceRequest, one transaction Bundle,
 * and a Patient create on the real app for context.
 *
 * Server and load generator share one process and event loop, so absolute req/s are lower than
 * against a separate server process; the validated/plain ratios are what to compare.
 *
 * Env: BENCH_SECONDS (per scenario and round, default 10), BENCH_ROUNDS (default 3; the median
 * round is reported), BENCH_WARMUP_SECONDS (default 2), BENCH_CONNECTIONS (default 10),
 * BENCH_BUNDLE (fixture name, default knee-osteoarthritis).
 */
const SECONDS = envNumber('BENCH_SECONDS', 10);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 2);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 10);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const BUNDLE_NAME = process.env.BENCH_BUNDLE ?? 'knee-osteoarthritis';
const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const HEADERS = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
/** Stands for the per-request counter in a serialised body; replaced with a plain string replace. */
const TOKEN = '__SEQ__';

interface RunningApp {
  url: string;
  /** Identifier suffixes are unique per app across warm-up and timed runs. */
  next(): number;
}

const cleanups: (() => Promise<void> | void)[] = [];

/** Runs every cleanup in reverse order, once, even if one fails. */
async function cleanUp(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      console.error('cleanup failed:', err);
    }
  }
}

function fixture<T>(file: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as T;
}

/**
 * The service as test/support/test-app.ts builds it (src/compose.ts without security or audit,
 * which src/main.ts has in production), on its own SQLite file.
 */
async function startService(dir: string, validator: ResourceValidator, logger: Logger): Promise<RunningApp> {
  const service = await compose(benchConfig({ DATABASE_URL: `sqlite:${join(dir, 'service.sqlite')}` }), {
    validator,
    logger,
    audit: false,
    version: 'bench',
  });
  cleanups.push(() => service.close());
  const { origin } = await service.start();
  let seq = 0;
  return { url: origin, next: () => seq++ };
}

/**
 * The baseline: the same composition, with no domain modules on the write path (no referral
 * workflow, no subscriptions) and a validator that accepts everything, so a ServiceRequest is
 * stored as a plain FHIR create.
 */
async function startPlain(dir: string, validator: ResourceValidator, logger: Logger): Promise<RunningApp> {
  const acceptAll: Pick<ResourceValidator, 'validate' | 'validateYielding' | 'assertValid' | 'knowsProfile'> =
    {
      validate: () => ({ issues: [] }),
      validateYielding: () => Promise.resolve({ issues: [] }),
      assertValid: () => {},
      knowsProfile: (url) => validator.knowsProfile(url),
    };
  const service = await compose(benchConfig({ DATABASE_URL: `sqlite:${join(dir, 'plain.sqlite')}` }), {
    // ResourceValidator is a class with private fields, so a structural stand-in needs the cast.
    validator: acceptAll as unknown as ResourceValidator,
    logger,
    audit: false,
    version: 'bench',
    modules: { replace: [] },
  });
  cleanups.push(() => service.close());
  const { origin } = await service.start();
  let seq = 0;
  return { url: origin, next: () => seq++ };
}

async function put(target: RunningApp, resource: Resource): Promise<void> {
  const res = await fetch(`${target.url}/fhir/${resource.resourceType}/${resource.id}`, {
    method: 'PUT',
    headers: HEADERS,
    body: JSON.stringify(resource),
  });
  if (!res.ok) {
    throw new Error(`PUT ${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
  }
}

/** The knee-OA referral with TOKEN in its identifier values: each request is a new referral. */
function serviceRequestTemplate(): string {
  const referral = fixture<ServiceRequest>('ServiceRequest-referral-knee-oa.json');
  for (const identifier of referral.identifier ?? []) {
    if (identifier.value) identifier.value = `${identifier.value}-${TOKEN}`;
  }
  return JSON.stringify(referral);
}

/**
 * The Bundle with TOKEN in the ServiceRequest's identifiers and in every ifNoneExist identifier
 * (Patient, Practitioner, PractitionerRole, Organization) and the matching resource identifier, so
 * each request is a new intake rather than a re-send matched to what the previous one stored.
 */
function bundleTemplate(file: string): string {
  const bundle = fixture<Bundle>(file);
  for (const [index, entry] of (bundle.entry ?? []).entries()) {
    const resource = entry.resource as
      (Resource & { identifier?: { system?: string; value?: string }[] }) | undefined;
    if (!resource) continue;
    if (resource.resourceType === 'ServiceRequest') {
      for (const identifier of resource.identifier ?? []) {
        if (identifier.value) identifier.value = `${identifier.value}-${TOKEN}`;
      }
    }
    const criteria = entry.request?.ifNoneExist;
    if (!criteria) continue;
    const match = /^identifier=([^|]*)\|(.+)$/.exec(criteria);
    const identifier = resource.identifier?.find((i) => i.system === match?.[1] && i.value === match?.[2]);
    if (!match || !identifier || !entry.request) {
      throw new Error(
        `${file} entry ${index}: ifNoneExist '${criteria}' does not name an identifier of the resource`,
      );
    }
    identifier.value = `${match[2]}-${TOKEN}`;
    entry.request.ifNoneExist = `identifier=${match[1]}|${identifier.value}`;
  }
  return JSON.stringify(bundle);
}

interface Scenario {
  name: string;
  /** Which pair the row belongs to, for the validated/plain ratio. */
  pair?: { kind: 'single' | 'bundle'; side: 'validated' | 'plain' };
  target: RunningApp;
  path: string;
  template: string;
  expectStatus: number;
}

/** Answers that are not what a new intake gets: another status, or a Bundle entry "200 OK". */
interface Tally {
  unexpected: number;
  first?: string;
}

function intakeRequest(s: Scenario, tally: Tally): Request {
  return {
    method: 'POST',
    path: s.path,
    headers: HEADERS,
    setupRequest: (req) => ({ ...req, body: s.template.replaceAll(TOKEN, String(s.target.next())) }),
    onResponse: (status, body) => {
      // An entry answered "200 OK" means ifNoneExist matched: a re-send, not the intake we time.
      if (status !== s.expectStatus || body.includes('"status":"200 OK"')) {
        tally.unexpected++;
        tally.first ??= `${status} ${body.slice(0, 300)}`;
      }
    },
  };
}

interface Figures extends LoadFigures {
  /**
   * CPU time of this process (server and load generator both) per request. Other processes taking
   * the CPU lower req/s a lot but this much less, so it still compares on a busy machine.
   */
  cpuMsPerRequest: number;
}

async function load(s: Scenario, seconds: number, tally: Tally): Promise<Figures> {
  const cpu = process.cpuUsage();
  const figures = await runLoad({
    url: s.target.url,
    connections: CONNECTIONS,
    seconds,
    requests: [intakeRequest(s, tally)],
  });
  const used = process.cpuUsage(cpu);
  return { ...figures, cpuMsPerRequest: (used.user + used.system) / 1000 / figures.requests };
}

interface Row {
  name: string;
  pair?: Scenario['pair'];
  /** The round with the median req/s: its req/s, p50 and p99 are the ones printed. */
  median: Figures;
  rounds: Figures[];
  /** Median over the rounds. */
  cpuMsPerRequest: number;
  /** Over the timed rounds: unexpected answers plus socket errors and timeouts. */
  failures: number;
  firstUnexpected?: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function count(target: RunningApp, type: string): Promise<number> {
  const res = await fetch(`${target.url}/fhir/${type}?_summary=count`, { headers: HEADERS });
  return ((await res.json()) as Bundle).total ?? Number.NaN;
}

async function main(): Promise<void> {
  // Other work on the machine inflates every figure; the 1-minute load average says how much.
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const dir = mkdtempSync(join(tmpdir(), 'intake-bench-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const logger = createLogger('silent');
  const validator = new ResourceValidator();
  const service = await startService(dir, validator, logger);
  const plain = await startPlain(dir, validator, logger);

  // Referrals in the single-create scenario point at these (the intake checks they resolve).
  const patient = fixture<Resource>('Patient-example-patient.json');
  const practitioner = fixture<Resource>('Practitioner-example-practitioner.json');
  for (const target of [service, plain]) {
    await put(target, patient);
    await put(target, practitioner);
  }

  const single = serviceRequestTemplate();
  const bundleFile = `Bundle-referral-${BUNDLE_NAME}.json`;
  const bundle = bundleTemplate(bundleFile);
  const { id: _id, ...newPatient } = patient;
  const patientTemplate = JSON.stringify(newPatient).replace('"GLC-0045192"', `"GLC-0045192-${TOKEN}"`);

  const scenarios: Scenario[] = [
    {
      name: 'ServiceRequest, validated intake',
      pair: { kind: 'single', side: 'validated' },
      target: service,
      path: '/fhir/ServiceRequest',
      template: single,
      expectStatus: 201,
    },
    {
      name: 'ServiceRequest, plain create',
      pair: { kind: 'single', side: 'plain' },
      target: plain,
      path: '/fhir/ServiceRequest',
      template: single,
      expectStatus: 201,
    },
    {
      name: `Bundle (${BUNDLE_NAME}), validated intake`,
      pair: { kind: 'bundle', side: 'validated' },
      target: service,
      path: '/fhir',
      template: bundle,
      expectStatus: 200,
    },
    {
      name: `Bundle (${BUNDLE_NAME}), plain create`,
      pair: { kind: 'bundle', side: 'plain' },
      target: plain,
      path: '/fhir',
      template: bundle,
      expectStatus: 200,
    },
    {
      name: 'Patient, create on the service',
      target: service,
      path: '/fhir/Patient',
      template: patientTemplate,
      expectStatus: 201,
    },
  ];

  console.log(
    `${CONNECTIONS} connections, ${WARMUP_SECONDS} s warm-up, then ${ROUNDS} rounds of ${SECONDS} s per scenario, in process, SQLite files in ${dir}\n`,
  );
  // Warm-up of every scenario first: JIT, SQLite page cache and WAL reach a steady state.
  for (const s of scenarios) {
    await load(s, WARMUP_SECONDS, { unexpected: 0 });
  }
  // Scenarios interleave round by round, so a validated run and its plain counterpart always run
  // back to back and share whatever else the machine is doing at the time.
  const results = scenarios.map(() => ({ rounds: [] as Figures[], tally: { unexpected: 0 } as Tally }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, s] of scenarios.entries()) {
      const r = results[i] as (typeof results)[number];
      r.rounds.push(await load(s, SECONDS, r.tally));
    }
  }
  const loadAfter = loadavg()[0] ?? Number.NaN;
  const rows: Row[] = scenarios.map((s, i) => {
    const { rounds, tally } = results[i] as (typeof results)[number];
    const mid = median(rounds.map((f) => f.requestsPerSecond));
    return {
      name: s.name,
      pair: s.pair,
      median: rounds.find((f) => f.requestsPerSecond === mid) as Figures,
      cpuMsPerRequest: median(rounds.map((f) => f.cpuMsPerRequest)),
      rounds,
      failures: tally.unexpected + rounds.reduce((sum, f) => sum + f.errors, 0),
      firstUnexpected: tally.first,
    };
  });

  printTable(
    ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req', 'req/s per round', 'failures'],
    rows.map((r) => [
      r.name,
      fixed(r.median.requestsPerSecond, 0),
      fixed(r.median.p50Ms, 1),
      fixed(r.median.p99Ms, 1),
      fixed(r.cpuMsPerRequest, 2),
      r.rounds.map((f) => fixed(f.requestsPerSecond, 0)).join(' '),
      r.failures,
    ]),
  );
  // The ratio per round (adjacent runs), then its median: background load cancels out best this way.
  const ratios = (['single', 'bundle'] as const).map((kind) => {
    const side = (which: 'validated' | 'plain'): Row | undefined =>
      rows.find((r) => r.pair?.kind === kind && r.pair.side === which);
    const perRound = (side('validated')?.rounds ?? []).map(
      (f, round) => f.requestsPerSecond / (side('plain')?.rounds[round]?.requestsPerSecond ?? Number.NaN),
    );
    // Plain CPU per request over validated: the throughput ratio the CPU cost alone implies.
    const cpuRatio =
      (side('plain')?.cpuMsPerRequest ?? Number.NaN) / (side('validated')?.cpuMsPerRequest ?? Number.NaN);
    return { kind, validatedOverPlain: median(perRound), perRound, cpuRatio };
  });
  console.log('');
  printTable(
    ['validated/plain', 'req/s, median', 'req/s per round', 'by CPU ms/req'],
    ratios.map((r) => [
      r.kind === 'single' ? 'ServiceRequest' : 'Bundle',
      fixed(r.validatedOverPlain, 2),
      r.perRound.map((x) => fixed(x, 2)).join(' '),
      fixed(r.cpuRatio, 2),
    ]),
  );

  // Every 2xx intake made one Task and one EpisodeOfCare on the service, none on the plain app.
  const stored = {
    service: {
      Task: await count(service, 'Task'),
      EpisodeOfCare: await count(service, 'EpisodeOfCare'),
      ServiceRequest: await count(service, 'ServiceRequest'),
    },
    plain: { Task: await count(plain, 'Task'), ServiceRequest: await count(plain, 'ServiceRequest') },
  };
  console.log(`\nload average ${fixed(loadBefore, 2)} before, ${fixed(loadAfter, 2)} after the timed rounds`);
  console.log(`stored (warm-up included): ${JSON.stringify(stored)}`);
  for (const r of rows.filter((row) => row.firstUnexpected)) {
    console.log(`first unexpected answer in '${r.name}': ${r.firstUnexpected}`);
  }

  const file = saveResults('intake-throughput', {
    environment: environment(),
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    rounds: ROUNDS,
    loadAverage: { before: loadBefore, after: loadAfter },
    connections: CONNECTIONS,
    bundle: bundleFile,
    rows,
    ratios,
    stored,
  });
  console.log(`saved ${file}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanUp().then(() => process.exit(130));
  });
}

try {
  await main();
} finally {
  await cleanUp();
}
