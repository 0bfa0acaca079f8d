import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, BundleEntry, Identifier, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  postgresBin,
  startPostgresCluster,
  type PostgresCluster,
} from '../../bench/support/postgres-cluster.js';
import { readFixture } from '../referral/referral-fixtures.js';
import { killAllChildren, startServiceProcess, type ServiceProcess } from '../support/delivery-processes.js';
import {
  isCi,
  postgresTestsEnabled,
  testPostgresUrl,
  warnPostgresSkipped,
  withFreshSchema,
} from '../support/postgres.js';
import { call, envInt, isPostgresRerun, secondsSince, sleep, tally, type Reply } from './support.js';

/**
 * Crash safety of the service process and of its database:
 *
 * - SIGKILL during transaction Bundles: each trial posts CRASH_BUNDLES realistic referral
 *   transactions at once (the knee-osteoarthritis fixture: Patient, referrer, role, organization,
 *   Condition, two Observations, the ServiceRequest; the intake adds an EpisodeOfCare and a Task),
 *   each under a unique marker, SIGKILLs the service a random few to few-tens of ms later, starts
 *   it again on the same database and checks that every marker's resources are all there or
 *   none is, and that every Bundle answered 200 before the kill is all there. On PostgreSQL
 *   (CRASH_TRIALS, default 30) and on SQLite (CRASH_TRIALS_SQLITE, default 10).
 * - PostgreSQL stopped under load (a cluster of the test's own, stopped with pg_ctl -m fast and
 *   then -m immediate while requests run): the service answers 503 OperationOutcomes meanwhile,
 *   never crashes, serves 2xx again once the server is back without being restarted, and no write
 *   it acknowledged is lost.
 *
 * The PostgreSQL parts need TEST_POSTGRES_URL and the server binaries (under CI their absence
 * fails the run).
 */
const enabled = postgresTestsEnabled();
if (!enabled) warnPostgresSkipped();
const rerun = isPostgresRerun();
/** The restart test runs a cluster of its own: it needs the server binaries (CI installs them). */
const binaries = postgresBin() !== undefined;
if (enabled && !binaries && !rerun) {
  if (isCi()) throw new Error('CI: the PostgreSQL server binaries are needed (pg_ctl; set PG_BIN)');
  console.warn('[crash] PostgreSQL restart test SKIPPED: no server binaries (pg_ctl) here; set PG_BIN');
}

const TRIALS = envInt('CRASH_TRIALS', 30);
const SQLITE_TRIALS = envInt('CRASH_TRIALS_SQLITE', 10);
const BUNDLES = envInt('CRASH_BUNDLES', 3);
/**
 * The kill lands uniformly within 2 ms .. max(CRASH_MIN_WINDOW_MS, (BUNDLES + 1) / 2 × a warm
 * Bundle's latency) after sending: the Bundles partly wait for one another (the shared referrer's
 * conditional creates), so that window spans the time they are being processed.
 */
const MIN_WINDOW_MS = envInt('CRASH_MIN_WINDOW_MS', 40);

const RUN = Math.random().toString(36).slice(2, 8);
const MARK_SYSTEM = 'https://ptreferral.dev/fhir/sid/crash-marker';
const FIXTURE = readFixture<Bundle>('Bundle-referral-knee-osteoarthritis.json');

/**
 * The fixture with `marker` on every resource that is new per referral: the Patient's MRN, the
 * referral's number, an identifier on the Condition and the Observations. The referrer, role and
 * organization keep their identifiers (conditional creates: made by the first Bundle, matched by
 * the later ones, as a re-sending EHR's are).
 */
function markedBundle(marker: string): Bundle {
  const bundle = structuredClone(FIXTURE);
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource as Resource & { identifier?: Identifier[] };
    switch (resource.resourceType) {
      case 'Patient':
      case 'ServiceRequest': {
        const id = resource.identifier?.[0] as Identifier;
        id.value = marker;
        if (entry.request?.ifNoneExist) entry.request.ifNoneExist = `identifier=${id.system}|${marker}`;
        break;
      }
      case 'Condition':
      case 'Observation':
        resource.identifier = [{ system: MARK_SYSTEM, value: marker }];
        break;
    }
  }
  return bundle;
}

const systemOf = (type: string): string =>
  type === 'Condition' || type === 'Observation'
    ? MARK_SYSTEM
    : ((
        (FIXTURE.entry ?? []).find((e) => e.resource?.resourceType === type)?.resource as {
          identifier?: Identifier[];
        }
      ).identifier?.[0]?.system as string);

/** What one marker's Bundle stores when it commits: 5 resources posted, 2 made by the intake. */
const EXPECTED = { Patient: 1, Condition: 1, Observation: 2, ServiceRequest: 1, intake: 2 };
const NOTHING = { Patient: 0, Condition: 0, Observation: 0, ServiceRequest: 0, intake: 0 };

async function storedFor(fhirBase: string, marker: string): Promise<typeof EXPECTED> {
  const search = async (type: string, extra = ''): Promise<Bundle> => {
    const reply = await call<Bundle>(
      'GET',
      `${fhirBase}/${type}?identifier=${encodeURIComponent(`${systemOf(type)}|${marker}`)}${extra}`,
    );
    if (reply.status !== 200) throw new Error(`${type} search answered ${reply.status}`);
    return reply.body;
  };
  const [patients, conditions, observations, referrals] = await Promise.all([
    search('Patient'),
    search('Condition'),
    search('Observation'),
    search('ServiceRequest', '&_revinclude=EpisodeOfCare:incoming-referral&_revinclude=Task:focus'),
  ]);
  const matches = (b: Bundle): number => (b.entry ?? []).filter((e) => e.search?.mode === 'match').length;
  return {
    Patient: matches(patients),
    Condition: matches(conditions),
    Observation: matches(observations),
    ServiceRequest: matches(referrals),
    intake: (referrals.entry ?? []).filter(
      (e) =>
        e.search?.mode === 'include' &&
        (e.resource?.resourceType === 'EpisodeOfCare' || e.resource?.resourceType === 'Task'),
    ).length,
  };
}

interface TrialSummary {
  bundles: number;
  present: number;
  absent: number;
  acknowledged: number;
  partial: string[];
  lostAcknowledged: string[];
  killDelaysMs: number[];
  warmLatencyMs: number[];
}

/**
 * Runs `trials` kill-and-restart trials against the service started with `env`, and answers what
 * was found. The service is started once before the first trial and after every kill.
 */
async function crashTrials(
  label: string,
  env: Record<string, string>,
  trials: number,
): Promise<TrialSummary> {
  const summary: TrialSummary = {
    bundles: 0,
    present: 0,
    absent: 0,
    acknowledged: 0,
    partial: [],
    lostAcknowledged: [],
    killDelaysMs: [],
    warmLatencyMs: [],
  };
  let service: ServiceProcess = await startServiceProcess(env, 60_000);
  try {
    for (let trial = 0; trial < trials; trial++) {
      // A warm-up Bundle that completes: the service is up and hot, and its latency sizes the window.
      const warmStarted = performance.now();
      const warm = await call<Bundle>(
        'POST',
        service.fhirBase,
        markedBundle(`${RUN}-${label}-warm-${trial}`),
      );
      const warmMs = performance.now() - warmStarted;
      expect(warm.status, JSON.stringify(warm.body).slice(0, 2000)).toBe(200);
      summary.warmLatencyMs.push(warmMs);

      const markers = Array.from({ length: BUNDLES }, (_, i) => `${RUN}-${label}-${trial}-${i}`);
      const answers: (number | 'no answer')[] = markers.map(() => 'no answer');
      const sent = markers.map((marker, i) =>
        call('POST', service.fhirBase, markedBundle(marker)).then(
          (reply) => {
            answers[i] = reply.status;
          },
          () => undefined, // the connection died with the process
        ),
      );
      const window = Math.max(MIN_WINDOW_MS, ((BUNDLES + 1) / 2) * warmMs);
      const delay = 2 + Math.random() * (window - 2);
      summary.killDelaysMs.push(delay);
      await sleep(delay);
      await service.kill('SIGKILL');
      await Promise.all(sent);

      service = await startServiceProcess(env, 60_000);
      for (const [i, marker] of markers.entries()) {
        const stored = await storedFor(service.fhirBase, marker);
        summary.bundles++;
        if (answers[i] === 200) summary.acknowledged++;
        if (JSON.stringify(stored) === JSON.stringify(EXPECTED)) {
          summary.present++;
        } else if (JSON.stringify(stored) === JSON.stringify(NOTHING)) {
          summary.absent++;
          if (answers[i] === 200) summary.lostAcknowledged.push(marker);
        } else {
          summary.partial.push(`${marker} (answer ${answers[i]}): ${JSON.stringify(stored)}`);
        }
        if (answers[i] !== 200 && answers[i] !== 'no answer') {
          summary.partial.push(`${marker}: unexpected answer ${answers[i]}`);
        }
      }
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- service output:\n${service.output().slice(-4000)}`, {
      cause: err,
    });
  } finally {
    await service.kill('SIGKILL');
  }
  return summary;
}

function report(label: string, summary: TrialSummary, started: number): void {
  const sorted = [...summary.killDelaysMs].sort((x, y) => x - y);
  const warm = [...summary.warmLatencyMs].sort((x, y) => x - y);
  console.warn(
    `[crash] ${label}: ${summary.killDelaysMs.length} SIGKILL trials, ${summary.bundles} Bundles: ` +
      `${summary.present} fully present (${summary.acknowledged} acknowledged before the kill), ` +
      `${summary.absent} fully absent, ${summary.partial.length} partial, ` +
      `${summary.lostAcknowledged.length} acknowledged but lost; kill after ` +
      `${sorted[0]?.toFixed(0)}-${sorted.at(-1)?.toFixed(0)} ms (median ${sorted[sorted.length >> 1]?.toFixed(0)}); ` +
      `warm Bundle ${warm[warm.length >> 1]?.toFixed(0)} ms median; ${secondsSince(started)} s`,
  );
}

afterEach(async () => {
  await killAllChildren();
});
afterAll(async () => {
  await killAllChildren();
});

describe.skipIf(rerun)('SIGKILL during transaction Bundles', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crash-trials-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!enabled)(
    `PostgreSQL: ${TRIALS} trials, each Bundle all present or all absent after the restart`,
    async () => {
      const started = performance.now();
      const summary = await crashTrials(
        'pg',
        { DATABASE_URL: withFreshSchema(testPostgresUrl() as string), DELIVERY_WORKER: 'on' },
        TRIALS,
      );
      report('PostgreSQL', summary, started);
      expect(summary.partial).toEqual([]);
      expect(summary.lostAcknowledged).toEqual([]);
      expect(summary.present + summary.absent).toBe(TRIALS * BUNDLES);
    },
    TRIALS * 20_000 + 60_000,
  );

  it(
    `SQLite: ${SQLITE_TRIALS} trials, each Bundle all present or all absent after the restart`,
    async () => {
      const started = performance.now();
      const summary = await crashTrials(
        'sqlite',
        { DATABASE_URL: `sqlite:${join(dir, 'crash.sqlite')}`, DELIVERY_WORKER: 'on' },
        SQLITE_TRIALS,
      );
      report('SQLite', summary, started);
      expect(summary.partial).toEqual([]);
      expect(summary.lostAcknowledged).toEqual([]);
      expect(summary.present + summary.absent).toBe(SQLITE_TRIALS * BUNDLES);
    },
    SQLITE_TRIALS * 20_000 + 60_000,
  );
});

describe.skipIf(!enabled || rerun || !binaries)('PostgreSQL stopped and started again under load', () => {
  let cluster: PostgresCluster | undefined;
  let service: ServiceProcess;
  const destroy = (): void => cluster?.destroy();

  beforeAll(async () => {
    // A cluster of this test's own: stopping the shared test server would fail other test files.
    // fsync is off (the OS does not crash here), but commits are synchronous: an acknowledged
    // write must survive even the immediate (crash-like) stop.
    cluster = await startPostgresCluster({
      settings: { fsync: 'off', full_page_writes: 'off', shared_buffers: '32MB', synchronous_commit: 'on' },
    });
    process.once('exit', destroy);
    service = await startServiceProcess(
      {
        DATABASE_URL: `${cluster.url}?schema=restart`,
        DELIVERY_WORKER: 'on',
        DELIVERY_BASE_BACKOFF_MS: '50',
        PG_POOL_SIZE: '10',
      },
      60_000,
    );
  }, 120_000);

  afterAll(async () => {
    await killAllChildren();
    destroy();
    process.off('exit', destroy);
  });

  it('answers 503 OperationOutcomes while it is down, 2xx again after, same process, nothing acknowledged lost', async () => {
    const pg = cluster as PostgresCluster;
    const acknowledged: string[] = [];
    const statuses: { phase: string; status: number }[] = [];
    const bad: string[] = [];
    let phase = 'up';
    let stop = false;
    let n = 0;

    /** One client: creates Patients (remembering the acknowledged ones), reads and searches them. */
    const client = async (c: number): Promise<void> => {
      while (!stop) {
        const i = n++;
        const sentIn = phase;
        let reply: Reply<Resource>;
        try {
          reply =
            i % 3 === 2 && acknowledged.length > 0
              ? await call<Resource>(
                  'GET',
                  `${service.fhirBase}/Patient/${acknowledged[i % acknowledged.length] as string}`,
                )
              : i % 3 === 1
                ? await call<Resource>('GET', `${service.fhirBase}/Patient?family=Restart-${c}&_count=5`)
                : await call<Resource>('POST', `${service.fhirBase}/Patient`, {
                    resourceType: 'Patient',
                    identifier: [{ system: MARK_SYSTEM, value: `${RUN}-restart-${i}` }],
                    name: [{ family: `Restart-${c}` }],
                  });
        } catch (err) {
          bad.push(`${phase}: request failed: ${(err as Error).message}`);
          await sleep(50);
          continue;
        }
        statuses.push({ phase: sentIn, status: reply.status });
        if (reply.status === 201) acknowledged.push(reply.body.id as string);
        if (reply.status >= 300) {
          const outcome = reply.body as OperationOutcome;
          const code = outcome.issue?.[0]?.details?.coding?.[0]?.code;
          if (
            reply.status !== 503 ||
            outcome.resourceType !== 'OperationOutcome' ||
            code !== 'store-unavailable'
          ) {
            bad.push(`${phase}: ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`);
          }
          await sleep(20); // a client backs off a little
        }
      }
    };
    const readyz = async (): Promise<number> =>
      (await fetch(`${service.origin}/readyz`, { signal: AbortSignal.timeout(15_000) })).status;

    const clients = Array.from({ length: 8 }, (_, c) => client(c));
    const timeline: string[] = [];
    try {
      for (const mode of ['fast', 'immediate'] as const) {
        phase = `up before ${mode} stop`;
        await sleep(1_500);
        const stopStarted = performance.now();
        phase = `stopping (${mode})`;
        await pg.stop(mode);
        phase = `down (${mode})`;
        await sleep(2_000);
        expect(await readyz()).toBe(503);
        const downFor = secondsSince(stopStarted);
        // pg_ctl start returns once it sees the server up, a little after it is.
        phase = `starting after ${mode} stop`;
        await pg.start();
        phase = `restarted after ${mode} stop`;
        const restarted = performance.now();
        // The same process serves again, by itself: wait for the first acknowledged write.
        const before = acknowledged.length;
        const deadline = Date.now() + 30_000;
        while (acknowledged.length === before && Date.now() < deadline) await sleep(20);
        expect(acknowledged.length, `no 201 within 30 s after the ${mode} restart`).toBeGreaterThan(before);
        timeline.push(
          `${mode} stop: down ${downFor} s, first 201 ${secondsSince(restarted)} s after pg_ctl start returned`,
        );
        expect(await readyz()).toBe(200);
        await sleep(1_500);
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- service output:\n${service.output().slice(-4000)}`, {
        cause: err,
      });
    } finally {
      stop = true;
      await Promise.all(clients);
    }

    // Tallied by the phase a request was sent in.
    const byPhase: Record<string, Record<number, number>> = {};
    for (const { phase: p, status } of statuses) {
      byPhase[p] = { ...byPhase[p], [status]: (byPhase[p]?.[status] ?? 0) + 1 };
    }
    console.warn(
      `[crash] PostgreSQL restarts under load (8 clients): ${timeline.join('; ')}\n` +
        `        statuses by phase: ${JSON.stringify(byPhase)}\n` +
        `        ${acknowledged.length} creates acknowledged in all`,
    );
    expect(bad.slice(0, 10)).toEqual([]);
    // The server being down was seen, as 503s, in both rounds.
    for (const mode of ['fast', 'immediate']) {
      const down = byPhase[`down (${mode})`] ?? {};
      expect(down[503] ?? 0, `503s while down (${mode})`).toBeGreaterThan(0);
      // Sent while the server was down: nothing can have succeeded.
      expect(Object.keys(down), `statuses of requests sent while down (${mode})`).toEqual(['503']);
    }
    // Never restarted: the same process answers.
    expect(() => process.kill(service.pid, 0)).not.toThrow();
    // Every acknowledged create is there (read back through the same process).
    const missing: string[] = [];
    for (let i = 0; i < acknowledged.length; i += 50) {
      const ids = acknowledged.slice(i, i + 50);
      const found = await call<Bundle>('GET', `${service.fhirBase}/Patient?_id=${ids.join(',')}&_count=50`);
      expect(found.status).toBe(200);
      const got = new Set((found.body.entry ?? []).map((e: BundleEntry) => e.resource?.id));
      missing.push(...ids.filter((id) => !got.has(id)));
    }
    expect(missing).toEqual([]);
    expect(tally(statuses.map((s) => s.status))[500]).toBeUndefined();
  }, 180_000);
});
