import type {
  Communication,
  OperationOutcome,
  Patient,
  ServiceRequest,
  Subscription,
} from '@medplum/fhirtypes';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dedupeKey, progressCommunication, SECRET, topicSubscription } from '../support/delivery-app.js';
import {
  killAllChildren,
  startReceiverProcess,
  startServiceProcess,
  type ReceiverProcess,
  type ServiceProcess,
} from '../support/delivery-processes.js';
import {
  postgresTestsEnabled,
  testPostgresUrl,
  warnPostgresSkipped,
  withFreshSchema,
} from '../support/postgres.js';
import { REFERRAL_ID_SYSTEM, referralServiceRequest } from '../http/http-helpers.js';
import {
  call,
  envInt,
  isPostgresRerun,
  runPool,
  schemaClient,
  secondsSince,
  sleep,
  tally,
  type Reply,
} from './support.js';

/**
 * Two service processes (`node --import tsx src/main.ts`, AUTH=off, each with its delivery worker)
 * on ONE PostgreSQL schema, on different ports, driven with real concurrent HTTP split between
 * them — the acceptance test of "PostgreSQL for deployments that outgrow one process":
 *
 * 1. conditional creates: COPIES identical If-None-Exist referrals per identifier, racing across
 *    both instances → exactly one ServiceRequest (and one EpisodeOfCare, one Task) per identifier;
 * 2. optimistic locking: rounds of WRITERS concurrent PUTs with the same If-Match → exactly one
 *    winner per round, and each resource's history is 1..n without gaps, each version the winner's;
 * 3. delivery: Communications written through both instances while both workers run → each
 *    delivered exactly once at the receiver (a separate process), event numbers 1..n.
 *
 * The defaults are the acceptance sizes: 10,000 creates over 1,000 identifiers, 1,000 rounds of
 * 20 PUTs, 1,000 Communications — about 70 s on 2 cores (4 minutes when other jobs share them).
 * Scale (env): MI_IDENTIFIERS (×MI_COPIES creates), MI_ROUNDS (×MI_WRITERS PUTs, spread over
 * MI_LANES resources updated in parallel), MI_COMMUNICATIONS, MI_CONCURRENCY (requests in flight).
 * Needs TEST_POSTGRES_URL (under CI its absence fails the run).
 */
const enabled = postgresTestsEnabled();
if (!enabled) warnPostgresSkipped();
const rerun = isPostgresRerun();

const IDENTIFIERS = envInt('MI_IDENTIFIERS', 1_000);
const COPIES = envInt('MI_COPIES', 10);
const ROUNDS = envInt('MI_ROUNDS', 1_000);
const WRITERS = envInt('MI_WRITERS', 20);
const LANES = envInt('MI_LANES', 10);
const COMMUNICATIONS = envInt('MI_COMMUNICATIONS', 1_000);
const CONCURRENCY = envInt('MI_CONCURRENCY', 64);

const RUN = Math.random().toString(36).slice(2, 8);
const SR_SYSTEM = `${REFERRAL_ID_SYSTEM}/${RUN}`;

describe.skipIf(!enabled || rerun)('two service processes on one PostgreSQL schema', () => {
  let databaseUrl: string;
  let a: ServiceProcess;
  let b: ServiceProcess;
  let receiver: ReceiverProcess;
  let db: pg.Client;
  const instances = (): ServiceProcess[] => [a, b];
  /** Request i goes to instance i % 2. */
  const base = (i: number): string => (instances()[i % 2] as ServiceProcess).fhirBase;

  beforeAll(async () => {
    databaseUrl = withFreshSchema(testPostgresUrl() as string);
    const env = {
      DATABASE_URL: databaseUrl,
      DELIVERY_WORKER: 'on',
      DELIVERY_BASE_BACKOFF_MS: '50',
      DELIVERY_MAX_BACKOFF_MS: '1000',
      DELIVERY_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'warn',
    };
    // Started together, as a deployment would start them: migrations and the practice race too.
    [a, b, receiver] = await Promise.all([
      startServiceProcess(env, 60_000),
      startServiceProcess(env, 60_000),
      startReceiverProcess({ secret: SECRET }),
    ]);
    db = await schemaClient(databaseUrl);
  }, 90_000);

  afterAll(async () => {
    await db?.end().catch(() => undefined);
    await killAllChildren();
  });

  /** Fails with both instances' output, which says why a request was refused. */
  function withOutput<T>(what: string, err: unknown): T {
    throw new Error(
      `${what}: ${(err as Error).message}\n--- instance A:\n${a?.output().slice(-4000)}\n--- instance B:\n${b?.output().slice(-4000)}`,
      { cause: err },
    );
  }

  it('both instances are up on the same store and see the same practice', async () => {
    for (const instance of instances()) {
      const practice = await call('GET', `${instance.fhirBase}/Organization/practice`);
      expect(practice.status).toBe(200);
    }
    // Both started at once (the practice is created on first start): written once, not twice.
    const { rows } = await db.query<{ id: string; version_id: number }>(
      `SELECT id, version_id FROM resource_version WHERE resource_type = 'Organization'`,
    );
    expect(rows).toEqual([{ id: 'practice', version_id: 1 }]);
  });

  it(`${IDENTIFIERS * COPIES} concurrent conditional creates over ${IDENTIFIERS} identifiers → exactly ${IDENTIFIERS} referrals`, async () => {
    const started = performance.now();
    // The parties every referral needs: a few patients and referrers, created once.
    const patients = await runPool(
      Array.from(
        { length: 20 },
        (_, i) => () =>
          call<Patient>('POST', `${base(i)}/Patient`, {
            resourceType: 'Patient',
            name: [{ family: `Racer-${i}` }],
          }),
      ),
      8,
    );
    const practitioner = await call('POST', `${a.fhirBase}/Practitioner`, {
      resourceType: 'Practitioner',
      name: [{ family: 'Referrer' }],
    });
    expect(patients.map((p) => p.status)).toEqual(patients.map(() => 201));
    expect(practitioner.status).toBe(201);
    const requester = `Practitioner/${practitioner.body.id as string}`;

    // The COPIES requests for one identifier are adjacent, so they are in flight together,
    // alternating between the instances.
    const value = (k: number): string => `MI-${RUN}-${String(k).padStart(5, '0')}`;
    const tasks = Array.from({ length: IDENTIFIERS * COPIES }, (_, i) => {
      const k = Math.floor(i / COPIES);
      const referral = referralServiceRequest(
        {
          subject: `Patient/${patients[k % patients.length]?.body.id as string}`,
          requester,
          identifierValue: value(k),
        },
        { identifier: [{ system: SR_SYSTEM, value: value(k) }] },
      );
      return async () => {
        const reply = await call<ServiceRequest | OperationOutcome>(
          'POST',
          `${base(i)}/ServiceRequest`,
          referral,
          { 'if-none-exist': `identifier=${encodeURIComponent(`${SR_SYSTEM}|${value(k)}`)}` },
        );
        return { k, status: reply.status, id: reply.body.id, body: reply.body };
      };
    });
    const replies = await runPool(tasks, CONCURRENCY).catch((err) => withOutput<never>('creates', err));
    const statuses = tally(replies.map((r) => r.status));
    const elapsed = secondsSince(started);
    console.warn(
      `[multi-instance] ${replies.length} conditional creates over ${IDENTIFIERS} identifiers, ` +
        `${CONCURRENCY} in flight: ${JSON.stringify(statuses)} in ${elapsed} s`,
    );
    const unexpected = replies.find((r) => r.status !== 201 && r.status !== 200);
    expect(unexpected?.body, `status ${unexpected?.status}`).toBeUndefined();
    expect(statuses).toEqual({ 201: IDENTIFIERS, 200: IDENTIFIERS * (COPIES - 1) });

    // Per identifier: exactly one 201, and every reply names the same resource.
    const byIdentifier = new Map<number, { created: number; ids: Set<string> }>();
    for (const r of replies) {
      const entry = byIdentifier.get(r.k) ?? { created: 0, ids: new Set<string>() };
      if (r.status === 201) entry.created++;
      entry.ids.add(String(r.id));
      byIdentifier.set(r.k, entry);
    }
    expect(byIdentifier.size).toBe(IDENTIFIERS);
    const wrong = [...byIdentifier].filter(([, e]) => e.created !== 1 || e.ids.size !== 1);
    expect(wrong).toEqual([]);

    // Behind the API: one row and one version per identifier, one episode and Task per referral.
    const count = async (sql: string, params: unknown[] = []): Promise<number> =>
      (await db.query<{ n: number }>(sql, params)).rows[0]?.n ?? -1;
    expect(
      await count(
        "SELECT count(*)::int AS n FROM resource WHERE resource_type = 'ServiceRequest' AND deleted = 0",
      ),
    ).toBe(IDENTIFIERS);
    expect(
      await count("SELECT count(*)::int AS n FROM resource_version WHERE resource_type = 'ServiceRequest'"),
    ).toBe(IDENTIFIERS);
    expect(
      await count(
        `SELECT count(DISTINCT value)::int AS n FROM idx_token
           WHERE resource_type = 'ServiceRequest' AND code = 'identifier' AND system = $1`,
        [SR_SYSTEM],
      ),
    ).toBe(IDENTIFIERS);
    expect(await count("SELECT count(*)::int AS n FROM resource WHERE resource_type = 'EpisodeOfCare'")).toBe(
      IDENTIFIERS,
    );
    expect(
      await count(
        `SELECT count(*)::int AS n FROM resource r WHERE r.resource_type = 'Task'
           AND EXISTS (SELECT 1 FROM idx_reference x WHERE x.resource_type = 'Task' AND x.id = r.id
                       AND x.code = 'focus' AND x.target_type = 'ServiceRequest')`,
      ),
    ).toBe(IDENTIFIERS);
    // And through the API of either instance.
    for (const instance of instances()) {
      const search = await call<{ total?: number }>(
        'GET',
        `${instance.fhirBase}/ServiceRequest?identifier=${encodeURIComponent(`${SR_SYSTEM}|${value(0)}`)}&_total=accurate`,
      );
      expect(search.body.total).toBe(1);
    }
  }, 600_000);

  it(`${ROUNDS} rounds of ${WRITERS} concurrent If-Match updates → one winner per round, contiguous history`, async () => {
    const started = performance.now();
    const lanes = Math.min(LANES, ROUNDS);
    const roundsPerLane = Array.from(
      { length: lanes },
      (_, l) => Math.floor(ROUNDS / lanes) + (l < ROUNDS % lanes ? 1 : 0),
    );
    const resources = await Promise.all(
      roundsPerLane.map((_, l) =>
        call<Patient>('POST', `${base(l)}/Patient`, {
          resourceType: 'Patient',
          name: [{ family: `Lane-${l}` }],
        }),
      ),
    );
    expect(resources.map((r) => r.status)).toEqual(resources.map(() => 201));
    const ids = resources.map((r) => r.body.id as string);
    /** Per lane, the writer that won each round (index = round). */
    const winners: number[][] = roundsPerLane.map(() => []);
    const statuses: number[] = [];
    const oddRounds: string[] = [];

    const lane = async (l: number): Promise<void> => {
      const id = ids[l] as string;
      for (let round = 0; round < (roundsPerLane[l] as number); round++) {
        const version = round + 1;
        const replies: Reply<Patient | OperationOutcome>[] = await Promise.all(
          Array.from({ length: WRITERS }, (_, w) =>
            call<Patient | OperationOutcome>(
              'PUT',
              `${base(w + round)}/Patient/${id}`,
              { resourceType: 'Patient', id, name: [{ family: `Lane-${l}`, given: [`r${round}-w${w}`] }] },
              { 'if-match': `W/"${version}"` },
            ),
          ),
        );
        statuses.push(...replies.map((r) => r.status));
        const won = replies.flatMap((r, w) => (r.status === 200 ? [w] : []));
        const counts = tally(replies.map((r) => r.status));
        if (won.length !== 1 || counts[412] !== WRITERS - 1) {
          oddRounds.push(`lane ${l} round ${round}: ${JSON.stringify(counts)}`);
          return; // the version is unknown now; the assertion below reports it
        }
        const winner = replies[won[0] as number]?.body as Patient;
        expect(winner.meta?.versionId).toBe(String(version + 1));
        winners[l]?.push(won[0] as number);
      }
    };
    await Promise.all(roundsPerLane.map((_, l) => lane(l))).catch((err) => withOutput<never>('rounds', err));
    console.warn(
      `[multi-instance] ${ROUNDS} rounds × ${WRITERS} If-Match PUTs over ${lanes} resources: ` +
        `${JSON.stringify(tally(statuses))} in ${secondsSince(started)} s`,
    );
    expect(oddRounds).toEqual([]);
    expect(tally(statuses)).toEqual({ 200: ROUNDS, 412: ROUNDS * (WRITERS - 1) });

    // Each resource's history: versions 1..n+1, no gap, no duplicate, version v+1 is round v's winner.
    for (const [l, id] of ids.entries()) {
      const { rows } = await db.query<{ version_id: number; given: string | null }>(
        `SELECT version_id, content #>> '{name,0,given,0}' AS given FROM resource_version
           WHERE resource_type = 'Patient' AND id = $1 ORDER BY version_id`,
        [id],
      );
      const n = roundsPerLane[l] as number;
      expect(rows.map((r) => r.version_id)).toEqual(Array.from({ length: n + 1 }, (_, v) => v + 1));
      expect(rows.slice(1).map((r) => r.given)).toEqual(winners[l]?.map((w, round) => `r${round}-w${w}`));
      // The API agrees, from the other instance.
      const history = await call<{ total?: number; entry?: { resource?: Patient }[] }>(
        'GET',
        `${base(l + 1)}/Patient/${id}/_history?_count=5`,
      );
      expect(history.body.total).toBe(n + 1);
      expect(history.body.entry?.map((e) => e.resource?.meta?.versionId)).toEqual(
        Array.from({ length: Math.min(5, n + 1) }, (_, i) => String(n + 1 - i)),
      );
    }
  }, 600_000);

  it(`${COMMUNICATIONS} Communications written through both instances, both workers delivering → each exactly once`, async () => {
    const started = performance.now();
    const recipient = `Practitioner/dr-mi-${RUN}`;
    const subscription = await call<Subscription>(
      'POST',
      `${a.fhirBase}/Subscription`,
      topicSubscription(receiver.url, { filter: `Communication?recipient=${recipient}` }),
    );
    expect(subscription.status, JSON.stringify(subscription.body)).toBe(201);
    expect(subscription.body.status).toBe('active');
    const values = Array.from({ length: COMMUNICATIONS }, (_, i) => `mi-${RUN}-${i + 1}`);
    const replies = await runPool(
      values.map(
        (v, i) => () =>
          call<Communication>('POST', `${base(i)}/Communication`, progressCommunication(v, recipient)),
      ),
      Math.min(CONCURRENCY, 32),
    ).catch((err) => withOutput<never>('communications', err));
    expect(tally(replies.map((r) => r.status))).toEqual({ 201: COMMUNICATIONS });
    const written = secondsSince(started);

    const deadline = Date.now() + 120_000;
    while (receiver.unique.size < COMMUNICATIONS && Date.now() < deadline) await sleep(50);
    const delivered = secondsSince(started);
    await sleep(1_500); // a duplicate, if any, would arrive now
    const events = receiver.received.filter((n) => n.type === 'event-notification');
    // The notification names the Subscription under the sending instance's base URL (its port).
    const portOfA = new URL(a.origin).port;
    const byInstance = tally(
      events.map((n) => (new URL(n.subscription ?? 'http://x').port === portOfA ? 1 : 2)),
    );
    console.warn(
      `[multi-instance] ${COMMUNICATIONS} Communications: written in ${written} s, all delivered after ` +
        `${delivered} s; notifications by instance A/B: ${byInstance[1] ?? 0}/${byInstance[2] ?? 0}; ` +
        `duplicates ${receiver.duplicates}`,
    );
    expect(receiver.unique.size).toBe(COMMUNICATIONS);
    expect([...receiver.unique].sort()).toEqual(values.map(dedupeKey).sort());
    expect(receiver.duplicates).toBe(0);
    expect(events.every((n) => n.signatureValid)).toBe(true);
    const numbers = events.flatMap((n) => n.eventNumbers).sort((x, y) => x - y);
    expect(numbers).toEqual(Array.from({ length: COMMUNICATIONS }, (_, i) => i + 1));
    // Both workers took part (each is woken by the writes of its own instance).
    expect(byInstance[1] ?? 0).toBeGreaterThan(0);
    expect(byInstance[2] ?? 0).toBeGreaterThan(0);
    // The outbox agrees: every notification delivered, each on its first attempt.
    const { rows } = await db.query<{ status: string; attempts: number; n: number }>(
      `SELECT status, attempts, count(*)::int AS n FROM notification_outbox
         WHERE subscription_id = $1 GROUP BY status, attempts`,
      [subscription.body.id],
    );
    expect(rows).toEqual([{ status: 'delivered', attempts: 1, n: COMMUNICATIONS }]);
  }, 600_000);

  it('both processes are still the ones started (no crash, no restart)', () => {
    for (const instance of instances()) {
      expect(() => process.kill(instance.pid, 0)).not.toThrow();
    }
  });
});
