import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Resource, ServiceRequest } from '@medplum/fhirtypes';
import type { Request } from 'autocannon';
import type { Logger } from 'pino';
import type { AppDeps } from '../src/app.js';
import {
  generateClientKeys,
  registration,
  signClientAssertion,
  tokenRequestBody,
  type ClientKeyPair,
} from '../src/auth/client-keys.js';
import type { ClientRegistration } from '../src/auth/clients.js';
import { KeyRing } from '../src/auth/key-ring.js';
import { TokenService } from '../src/auth/token-service.js';
import { compose } from '../src/compose.js';
import { createLogger } from '../src/logging.js';
import type { FhirStore } from '../src/store/fhir-store.js';
import { ResourceValidator } from '../src/validation/resource-validator.js';
import { benchConfig } from './support/config.js';
import { runLoad, type LoadFigures } from './support/load.js';
import { envNumber, environment, fixed, printTable, saveResults } from './support/report.js';

/**
 * Authenticated referral intake against the same intake with authentication off, in one run, in
 * process: two apps composed by src/compose.ts as src/main.ts runs them (both with the AuditTrail,
 * which is on whether or not AUTH is), each on its own temp SQLite file. Every request is
 * POST /fhir/ServiceRequest with a unique referral identifier (a new intake each time: validation,
 * EpisodeOfCare and Task in the same transaction).
 *
 * Scenarios:
 * - auth off: no token (AUTH=off);
 * - auth on, practice client: bearer token (ES256 verify per request), scope check, audit;
 * - auth on, referrer client: the same plus per-referrer isolation (access labels written, the
 *   requester checked against acts_for, the subject's visibility judged through the referrer's
 *   referrals).
 * Tokens are got once per scenario through POST /auth/token with a signed ES384 client assertion
 * (they live 5 minutes, longer than a run).
 *
 * Server and load generator share one event loop, so absolute req/s are lower than against a
 * separate process; compare the rows, and the CPU ms per request.
 *
 * Env: BENCH_SECONDS (per scenario and round, default 10), BENCH_ROUNDS (default 3, interleaved;
 * the median round is printed), BENCH_WARMUP_SECONDS (default 2), BENCH_CONNECTIONS (default 10).
 */
const SECONDS = envNumber('BENCH_SECONDS', 10);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 2);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 10);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const PUBLIC_ORIGIN = 'https://referrals.bench.example';
const HEADERS = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
/** Stands for the per-request counter in the serialised referral. */
const SEQ = '__SEQ__';

interface RunningApp {
  url: string;
  store: FhirStore;
  next(): number;
}

const cleanups: (() => Promise<void> | void)[] = [];

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

async function startApp(
  dir: string,
  name: string,
  validator: ResourceValidator,
  logger: Logger,
  security?: AppDeps['security'],
): Promise<RunningApp> {
  // As in production, the AuditTrail is on whether or not security is.
  const service = await compose(benchConfig({ DATABASE_URL: `sqlite:${join(dir, `${name}.sqlite`)}` }), {
    validator,
    logger,
    security,
    version: 'bench',
  });
  cleanups.push(() => service.close());
  const { origin } = await service.start();
  let seq = 0;
  return { url: origin, store: service.store, next: () => seq++ };
}

async function token(target: RunningApp, clientId: string, keys: ClientKeyPair): Promise<string> {
  const tokenUrl = `${PUBLIC_ORIGIN}/auth/token`;
  const assertion = await signClientAssertion(clientId, keys.privateJwk, tokenUrl);
  const res = await fetch(`${target.url}/auth/token`, { method: 'POST', body: tokenRequestBody(assertion) });
  const body = (await res.json()) as { access_token?: string };
  if (!res.ok || !body.access_token)
    throw new Error(`token for ${clientId}: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

async function put(target: RunningApp, resource: Resource, bearer?: string): Promise<void> {
  const res = await fetch(`${target.url}/fhir/${resource.resourceType}/${resource.id}`, {
    method: 'PUT',
    headers: { ...HEADERS, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(resource),
  });
  if (!res.ok)
    throw new Error(`PUT ${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}

/** The knee-OA referral with SEQ in its identifier values: each request is a new referral. */
function referralTemplate(): string {
  const referral = fixture<ServiceRequest>('ServiceRequest-referral-knee-oa.json');
  for (const identifier of referral.identifier ?? []) {
    if (identifier.value) identifier.value = `${identifier.value}-${SEQ}`;
  }
  return JSON.stringify(referral);
}

interface Scenario {
  name: string;
  target: RunningApp;
  /** Bearer token, or none (auth off). */
  bearer?: string;
  template: string;
}

interface Tally {
  unexpected: number;
  first?: string;
}

function intakeRequest(s: Scenario, tally: Tally): Request {
  return {
    method: 'POST',
    path: '/fhir/ServiceRequest',
    headers: { ...HEADERS, ...(s.bearer ? { authorization: `Bearer ${s.bearer}` } : {}) },
    setupRequest: (req) => ({ ...req, body: s.template.replaceAll(SEQ, String(s.target.next())) }),
    onResponse: (status, body) => {
      if (status !== 201) {
        tally.unexpected++;
        tally.first ??= `${status} ${body.slice(0, 300)}`;
      }
    },
  };
}

interface Figures extends LoadFigures {
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function count(target: RunningApp, type: string, bearer?: string): Promise<number> {
  const res = await fetch(`${target.url}/fhir/${type}?_summary=count`, {
    headers: { ...HEADERS, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
  });
  return ((await res.json()) as Bundle).total ?? Number.NaN;
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const dir = mkdtempSync(join(tmpdir(), 'auth-bench-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const logger = createLogger('silent');
  const validator = new ResourceValidator();

  const patient = fixture<Resource>('Patient-example-patient.json');
  const practitioner = fixture<Resource>('Practitioner-example-practitioner.json');
  const requester = `Practitioner/${practitioner.id}`;

  // Auth on: a registry of real ES384 client keys, a real KeyRing and TokenService.
  const keys = new Map<string, ClientKeyPair>();
  const clients = new Map<string, ClientRegistration>();
  for (const [id, role, actsFor] of [
    ['bench-admin', 'admin', []],
    ['bench-practice', 'practice', []],
    ['bench-referrer', 'referrer', [requester]],
  ] as const) {
    const pair = await generateClientKeys();
    keys.set(id, pair);
    clients.set(id, registration(id, pair, role, 'system/*.cruds', [...actsFor]));
  }
  const tokens = new TokenService({
    clients,
    keys: await KeyRing.create(),
    issuer: PUBLIC_ORIGIN,
    tokenTtlSeconds: 300,
  });
  const secured = await startApp(dir, 'auth-on', validator, logger, {
    tokens,
    rateLimitPerMinute: 1_000_000_000,
    publicOrigin: PUBLIC_ORIGIN,
  });
  const open = await startApp(dir, 'auth-off', validator, logger);

  const admin = await token(secured, 'bench-admin', keys.get('bench-admin') as ClientKeyPair);
  // The referrer's practitioner (admin, under its known id) and its patient (the referrer's own).
  await put(secured, practitioner, admin);
  const referrerToken = await token(secured, 'bench-referrer', keys.get('bench-referrer') as ClientKeyPair);
  await put(secured, patient, referrerToken);
  await put(open, patient);
  await put(open, practitioner);

  const template = referralTemplate();
  const scenarios: Scenario[] = [
    { name: 'auth off (AUTH=off)', target: open, template },
    {
      name: 'auth on, practice client',
      target: secured,
      bearer: await token(secured, 'bench-practice', keys.get('bench-practice') as ClientKeyPair),
      template,
    },
    { name: 'auth on, referrer client', target: secured, bearer: referrerToken, template },
  ];

  console.log(
    `POST /fhir/ServiceRequest, ${CONNECTIONS} connections, ${WARMUP_SECONDS} s warm-up, then ${ROUNDS} rounds of ${SECONDS} s per scenario (interleaved), in process, SQLite files in ${dir}\n`,
  );
  for (const s of scenarios) await load(s, WARMUP_SECONDS, { unexpected: 0 });
  const results = scenarios.map(() => ({ rounds: [] as Figures[], tally: { unexpected: 0 } as Tally }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, s] of scenarios.entries()) {
      const r = results[i] as (typeof results)[number];
      r.rounds.push(await load(s, SECONDS, r.tally));
    }
  }
  const loadAfter = loadavg()[0] ?? Number.NaN;
  const rows = scenarios.map((s, i) => {
    const { rounds, tally } = results[i] as (typeof results)[number];
    const mid = median(rounds.map((f) => f.requestsPerSecond));
    return {
      name: s.name,
      median: rounds.find((f) => f.requestsPerSecond === mid) as Figures,
      cpuMsPerRequest: median(rounds.map((f) => f.cpuMsPerRequest)),
      rounds,
      failures: tally.unexpected + rounds.reduce((sum, f) => sum + f.errors, 0),
      firstUnexpected: tally.first,
    };
  });
  const baseline = rows[0] as (typeof rows)[number];
  printTable(
    ['scenario', 'req/s', 'vs off', 'p50 ms', 'p99 ms', 'CPU ms/req', 'req/s per round', 'failures'],
    rows.map((r) => [
      r.name,
      fixed(r.median.requestsPerSecond, 0),
      fixed(r.median.requestsPerSecond / baseline.median.requestsPerSecond, 2),
      fixed(r.median.p50Ms, 1),
      fixed(r.median.p99Ms, 1),
      fixed(r.cpuMsPerRequest, 2),
      r.rounds.map((f) => fixed(f.requestsPerSecond, 0)).join(' '),
      r.failures,
    ]),
  );
  // What authentication itself costs per request and per token, measured alone (sequentially).
  const practiceToken = scenarios[1]?.bearer as string;
  const verifies = 2_000;
  let started = performance.now();
  for (let i = 0; i < verifies; i++) await tokens.verifyAccessToken(practiceToken);
  const verifyUs = ((performance.now() - started) * 1000) / verifies;
  const issues = 200;
  started = performance.now();
  for (let i = 0; i < issues; i++)
    await token(secured, 'bench-practice', keys.get('bench-practice') as ClientKeyPair);
  const issueMs = (performance.now() - started) / issues;
  console.log(
    `\naccess-token check (ES256 verify + claims), alone: ${fixed(verifyUs, 0)} µs; token request over HTTP (ES384 assertion verified, ES256 token signed): ${fixed(issueMs, 2)} ms`,
  );
  const stored = {
    authOn: {
      ServiceRequest: await count(secured, 'ServiceRequest', admin),
      Task: await count(secured, 'Task', admin),
    },
    authOff: { ServiceRequest: await count(open, 'ServiceRequest'), Task: await count(open, 'Task') },
  };
  console.log(`\nload average ${fixed(loadBefore, 2)} before, ${fixed(loadAfter, 2)} after the timed rounds`);
  console.log(`stored (warm-up included): ${JSON.stringify(stored)}`);
  for (const r of rows.filter((row) => row.firstUnexpected)) {
    console.log(`first unexpected answer in '${r.name}': ${r.firstUnexpected}`);
  }
  const file = saveResults('auth-throughput', {
    environment: environment(),
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    rounds: ROUNDS,
    connections: CONNECTIONS,
    loadAverage: { before: loadBefore, after: loadAfter },
    rows,
    verifyMicroseconds: verifyUs,
    tokenRequestMs: issueMs,
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
