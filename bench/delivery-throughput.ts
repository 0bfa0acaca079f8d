import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Communication, Subscription } from '@medplum/fhirtypes';
import { compose } from '../src/compose.js';
import type { DeliveryWorker } from '../src/delivery/delivery-worker.js';
import { loadFhirDefinitions } from '../src/fhir/definitions.js';
import { ResourceValidator } from '../src/validation/resource-validator.js';
import type { ReceivedNotification } from './mock-receiver.js';
import { benchConfig } from './support/config.js';
import { ROOT } from './support/processes.js';
import { envNumber, environment, fixed, printTable, saveResults } from './support/report.js';

/**
 * Delivery throughput and end-to-end latency: how fast committed Communications reach a referrer's
 * endpoint, and what delivery costs the write path.
 *
 * The service runs in process as src/main.ts composes it (HTTP app on a temp SQLite file, the
 * DeliveryWorker woken after each commit that queued notifications, default retry policy and batch
 * size); the receiver is bench/mock-receiver.ts in its own process on loopback (it verifies each
 * HMAC signature and prints one JSON line per notification with its arrival time). Phases, each on
 * a fresh database:
 *  1. baseline — N Communication POSTs, concurrency C, no Subscription (the worker idles);
 *  2. live — the same with one full-resource Subscription matching every Communication: POST rate,
 *     deliveries/s and end-to-end latency, "committed" (the 201 reached the client, or the stored
 *     meta.lastUpdated) → "the receiver got it" (its clock; same host);
 *  3. backlog — N Communications committed with the worker stopped, then the worker started: the
 *     rate at which it drains a backlog, with no write load beside it.
 * The load generator shares the service's event loop, so absolute rates are lower than against a
 * separate process; the ratios are what to compare.
 *
 * Phases 1 and 2 alternate for BENCH_ROUNDS rounds; medians are printed.
 *
 * Env: BENCH_COUNT (N, default 2000), BENCH_CONNECTIONS (C, default 10), BENCH_ROUNDS (default 3).
 */
const COUNT = envNumber('BENCH_COUNT', 2000);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 10);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const HOST = '127.0.0.1';
const SECRET = 's3cret';
const TOPIC = 'https://ptreferral.dev/fhir/SubscriptionTopic/referral-progress';
const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const IDENTIFIER_SYSTEM = 'https://ptreferral.dev/fhir/communication-id';
const RECIPIENT = 'Practitioner/dr-bench';
const HEADERS = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
const DRAIN_DEADLINE_MS = 300_000;

const cleanups: (() => Promise<void> | void)[] = [];
const children = new Set<ChildProcess>();

async function cleanUp(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      console.error('cleanup failed:', err);
    }
  }
}

interface Service {
  fhirBase: string;
  worker: DeliveryWorker;
  close(): Promise<void>;
}

async function startService(dir: string, name: string, validator: ResourceValidator): Promise<Service> {
  // The worker with the production defaults (DELIVERY_* unset), created but not started.
  const composed = await compose(benchConfig({ DATABASE_URL: `sqlite:${join(dir, `${name}.sqlite`)}` }), {
    validator,
    audit: false,
    version: 'bench',
    worker: { baseUrl: (at) => at.fhirBase },
  });
  const { fhirBase } = await composed.start();
  const service: Service = {
    fhirBase,
    worker: composed.worker as DeliveryWorker,
    close: () => composed.close(),
  };
  cleanups.push(() => service.close());
  return service;
}

interface Receiver {
  url: string;
  /** Arrival time (receiver clock, ms) per Communication identifier value; the first arrival. */
  arrivals: Map<string, number>;
  notifications: number;
  duplicates: number;
  invalidSignatures: number;
  reset(): void;
}

/** bench/mock-receiver.ts as a separate process, as in the fault tests. */
async function startReceiver(): Promise<Receiver> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', 'mock-receiver.ts'), '--port', '0', '--secret', SECRET],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  );
  const receiver: Receiver = {
    url: '',
    arrivals: new Map(),
    notifications: 0,
    duplicates: 0,
    invalidSignatures: 0,
    reset() {
      this.arrivals.clear();
      this.notifications = 0;
      this.duplicates = 0;
      this.invalidSignatures = 0;
    },
  };
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the receiver did not start within 15 s')), 15_000);
    child.once('exit', (code) => reject(new Error(`the receiver exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line) as { listening?: number } & Partial<ReceivedNotification>;
      if (message.listening !== undefined) {
        clearTimeout(timer);
        resolve(message.listening);
        return;
      }
      const n = message as ReceivedNotification;
      receiver.notifications++;
      if (!n.signatureValid) receiver.invalidSignatures++;
      for (const id of n.communicationIdentifiers) {
        const value = id.slice(IDENTIFIER_SYSTEM.length + 1);
        if (receiver.arrivals.has(value)) receiver.duplicates++;
        else receiver.arrivals.set(value, n.receivedAt);
      }
    });
  });
  receiver.url = `http://${HOST}:${port}/notify`;
  return receiver;
}

function communication(value: string): Communication {
  return {
    resourceType: 'Communication',
    status: 'completed',
    identifier: [{ system: IDENTIFIER_SYSTEM, value }],
    category: [
      {
        coding: [
          { system: 'https://ptreferral.dev/fhir/CodeSystem/pt-referral-event', code: 'progress-report' },
        ],
      },
    ],
    subject: { reference: 'Patient/p1' },
    recipient: [{ reference: RECIPIENT }],
    sender: { reference: 'Organization/practice' },
    sent: '2026-11-03T10:00:00Z',
    payload: [{ contentString: `Progress after visit 6: knee flexion 0-115 degrees, pain 2/10 (${value}).` }],
  };
}

function subscription(endpoint: string): Subscription {
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'Benchmark',
    criteria: TOPIC,
    _criteria: {
      extension: [
        { url: `${BACKPORT}/backport-filter-criteria`, valueString: `Communication?recipient=${RECIPIENT}` },
      ],
    },
    extension: [
      {
        url: 'https://ptreferral.dev/fhir/StructureDefinition/subscription-signing-secret',
        valueString: SECRET,
      },
    ],
    channel: {
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: 'full-resource' }] },
    },
  } as Subscription;
}

async function post<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: HEADERS, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

interface Commit {
  /** When the 201 reached the client (ms). */
  respondedAt: number;
  /** The stored meta.lastUpdated (ms), stamped inside the committing transaction. */
  lastUpdated: number;
}

/** POSTs `count` Communications over `connections` concurrent loops; answers the commits by value. */
async function createCommunications(fhirBase: string, prefix: string, count: number) {
  const commits = new Map<string, Commit>();
  let next = 0;
  const started = performance.now();
  const loop = async (): Promise<void> => {
    while (next < count) {
      const value = `${prefix}-${next++}`;
      const created = await post<Communication>(`${fhirBase}/Communication`, communication(value));
      commits.set(value, {
        respondedAt: Date.now(),
        lastUpdated: Date.parse(created.meta?.lastUpdated as string),
      });
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, loop));
  const seconds = (performance.now() - started) / 1000;
  return { commits, seconds, postsPerSecond: count / seconds };
}

async function waitForArrivals(receiver: Receiver, count: number): Promise<void> {
  const deadline = Date.now() + DRAIN_DEADLINE_MS;
  while (receiver.arrivals.size < count) {
    if (Date.now() > deadline) {
      throw new Error(
        `only ${receiver.arrivals.size} of ${count} notifications arrived within ${DRAIN_DEADLINE_MS} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 200)); // let duplicates, if any, show up
}

interface LiveRound {
  postsPerSecond: number;
  deliveriesPerSecond: number;
  deliveredAfterLastPostMs: number;
  fromResponse: number[];
  fromLastUpdated: number[];
  deliveredBeforeResponse: number;
  notifications: number;
  duplicates: number;
  invalidSignatures: number;
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function latencies(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

async function main(): Promise<void> {
  loadFhirDefinitions();
  const validator = new ResourceValidator();
  const dir = mkdtempSync(join(tmpdir(), 'bench-delivery-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  console.log(`delivery throughput: ${COUNT} Communications, ${CONNECTIONS} concurrent POSTs\n`);

  // A short warm-up (JIT, validator caches) on a throw-away service.
  const warm = await startService(dir, 'warmup', validator);
  warm.worker.start();
  await createCommunications(warm.fhirBase, 'warm', Math.min(200, COUNT));
  await warm.close();
  cleanups.pop();

  const receiver = await startReceiver();
  const baselineRounds: { postsPerSecond: number; seconds: number }[] = [];
  const liveRounds: LiveRound[] = [];
  // Baseline and live alternate, each round on fresh databases, so a noisy neighbour or a
  // slower stretch of the run hits both alike; medians are reported.
  for (let round = 1; round <= ROUNDS; round++) {
    // 1. Baseline: no Subscription.
    const plain = await startService(dir, `baseline-${round}`, validator);
    plain.worker.start();
    const baseline = await createCommunications(plain.fhirBase, `base-${round}`, COUNT);
    await plain.close();
    cleanups.pop();
    baselineRounds.push({ postsPerSecond: baseline.postsPerSecond, seconds: baseline.seconds });

    // 2. Live: one Subscription matching every Communication.
    receiver.reset();
    const live = await startService(dir, `live-${round}`, validator);
    live.worker.start();
    await post(`${live.fhirBase}/Subscription`, subscription(receiver.url));
    const writes = await createCommunications(live.fhirBase, `live-${round}`, COUNT);
    await waitForArrivals(receiver, COUNT);
    const commits = [...writes.commits.values()];
    const firstCommit = Math.min(...commits.map((c) => c.lastUpdated));
    const lastArrival = Math.max(...receiver.arrivals.values());
    const fromResponse: number[] = [];
    const fromLastUpdated: number[] = [];
    for (const [value, commit] of writes.commits) {
      const arrival = receiver.arrivals.get(value) as number;
      fromResponse.push(arrival - commit.respondedAt);
      fromLastUpdated.push(arrival - commit.lastUpdated);
    }
    liveRounds.push({
      postsPerSecond: writes.postsPerSecond,
      deliveriesPerSecond: COUNT / ((lastArrival - firstCommit) / 1000),
      deliveredAfterLastPostMs: lastArrival - Math.max(...commits.map((c) => c.respondedAt)),
      fromResponse,
      fromLastUpdated,
      deliveredBeforeResponse: fromResponse.filter((ms) => ms < 0).length,
      notifications: receiver.notifications,
      duplicates: receiver.duplicates,
      invalidSignatures: receiver.invalidSignatures,
    });
    await live.close();
    cleanups.pop();
    console.log(
      `round ${round}/${ROUNDS}: baseline ${fixed(baseline.postsPerSecond)} POST/s, ` +
        `live ${fixed(writes.postsPerSecond)} POST/s, ${fixed(liveRounds.at(-1)?.deliveriesPerSecond ?? NaN)} deliveries/s`,
    );
  }
  const liveFigures = {
    postsPerSecond: median(liveRounds.map((r) => r.postsPerSecond)),
    deliveriesPerSecond: median(liveRounds.map((r) => r.deliveriesPerSecond)),
    deliveredAfterLastPostMs: median(liveRounds.map((r) => r.deliveredAfterLastPostMs)),
    // Latencies pooled over every round.
    e2eFromResponse: latencies(liveRounds.flatMap((r) => r.fromResponse)),
    e2eFromLastUpdated: latencies(liveRounds.flatMap((r) => r.fromLastUpdated)),
    deliveredBeforeResponse: liveRounds.reduce((n, r) => n + r.deliveredBeforeResponse, 0),
    notifications: liveRounds.reduce((n, r) => n + r.notifications, 0),
    duplicates: liveRounds.reduce((n, r) => n + r.duplicates, 0),
    invalidSignatures: liveRounds.reduce((n, r) => n + r.invalidSignatures, 0),
  };
  const baseline = { postsPerSecond: median(baselineRounds.map((r) => r.postsPerSecond)) };

  // 3. Backlog: commit with the worker stopped, then drain.
  receiver.reset();
  const backlogService = await startService(dir, 'backlog', validator);
  await post(`${backlogService.fhirBase}/Subscription`, subscription(receiver.url));
  await createCommunications(backlogService.fhirBase, 'backlog', COUNT);
  const drainStart = Date.now();
  backlogService.worker.start();
  await waitForArrivals(receiver, COUNT);
  const drainSeconds = (Math.max(...receiver.arrivals.values()) - drainStart) / 1000;
  const backlog = {
    deliveriesPerSecond: COUNT / drainSeconds,
    drainSeconds,
    notifications: receiver.notifications,
    duplicates: receiver.duplicates,
    invalidSignatures: receiver.invalidSignatures,
  };
  await backlogService.close();
  cleanups.pop();

  const ratio = liveFigures.postsPerSecond / baseline.postsPerSecond;
  printTable(
    ['scenario', 'POST/s', 'deliveries/s', 'e2e p50 ms', 'e2e p99 ms', 'e2e max ms', 'dups'],
    [
      ['baseline (no subscription)', fixed(baseline.postsPerSecond), '-', '-', '-', '-', '-'],
      [
        'live, from 201 response',
        fixed(liveFigures.postsPerSecond),
        fixed(liveFigures.deliveriesPerSecond),
        fixed(liveFigures.e2eFromResponse.p50Ms),
        fixed(liveFigures.e2eFromResponse.p99Ms),
        fixed(liveFigures.e2eFromResponse.maxMs),
        liveFigures.duplicates,
      ],
      [
        'live, from meta.lastUpdated',
        '',
        '',
        fixed(liveFigures.e2eFromLastUpdated.p50Ms),
        fixed(liveFigures.e2eFromLastUpdated.p99Ms),
        fixed(liveFigures.e2eFromLastUpdated.maxMs),
        '',
      ],
      [
        'backlog drain (no writes)',
        '-',
        fixed(backlog.deliveriesPerSecond),
        '-',
        '-',
        '-',
        backlog.duplicates,
      ],
    ],
  );
  console.log(
    `\nmedians of ${ROUNDS} rounds; latencies pooled over ${ROUNDS * COUNT} deliveries.` +
      `\nPOST rate with delivery / without: ${fixed(ratio, 2)}; ` +
      `${liveFigures.deliveredBeforeResponse} of ${ROUNDS * COUNT} arrived before the client had its 201; ` +
      `the last delivery of a round ${fixed(liveFigures.deliveredAfterLastPostMs, 0)} ms after its last 201 (median).`,
  );
  const file = saveResults('delivery-throughput', {
    environment: environment(),
    settings: {
      count: COUNT,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      store: 'sqlite file',
      receiver: 'separate process, loopback',
    },
    baseline: { ...baseline, rounds: baselineRounds },
    live: {
      ...liveFigures,
      rounds: liveRounds.map(({ fromResponse, fromLastUpdated, ...r }) => ({
        ...r,
        e2eFromResponse: latencies(fromResponse),
        e2eFromLastUpdated: latencies(fromLastUpdated),
      })),
    },
    backlog,
    postRateRatio: ratio,
  });
  console.log(`results: ${file}`);
  if (
    liveFigures.duplicates ||
    backlog.duplicates ||
    liveFigures.invalidSignatures ||
    backlog.invalidSignatures
  ) {
    throw new Error('duplicates or invalid signatures at the receiver');
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

main()
  .then(cleanUp)
  .catch(async (err) => {
    console.error(err);
    await cleanUp();
    process.exitCode = 1;
  });
