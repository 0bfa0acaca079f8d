import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Bundle, OperationOutcome, Patient, Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenTestApp, type ListeningApp } from '../support/listen.js';
import {
  postgresTestsEnabled,
  testPostgresUrl,
  warnPostgresSkipped,
  withFreshSchema,
} from '../support/postgres.js';

/**
 * Two service instances (two apps, two pools) on one PostgreSQL database, hit with real
 * concurrent HTTP requests split between them: what the issue "PostgreSQL for deployments that
 * outgrow one process" is for. Needs TEST_POSTGRES_URL; under CI its absence fails the run.
 */
const enabled = postgresTestsEnabled();
if (!enabled) {
  warnPostgresSkipped();
}

interface Reply<T = Resource> {
  status: number;
  body: T;
  etag: string | null;
}

const call = async <T = Resource>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> => {
  const res = await fetch(`${base}/${path}`, {
    method,
    headers: {
      accept: 'application/fhir+json',
      ...(body === undefined ? {} : { 'content-type': 'application/fhir+json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: (text ? JSON.parse(text) : undefined) as T,
    etag: res.headers.get('etag'),
  };
};

const count = (statuses: number[]): Record<number, number> => {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
};

describe.skipIf(!enabled)('two service instances on one PostgreSQL database', () => {
  let a: ListeningApp;
  let b: ListeningApp;
  const instance = (i: number): string => (i % 2 ? a : b).fhirBase;

  beforeAll(async () => {
    const url = withFreshSchema(testPostgresUrl() as string);
    // Started together, as a deployment would: migrations and the practice record race.
    [a, b] = await Promise.all([listenTestApp({ databaseUrl: url }), listenTestApp({ databaseUrl: url })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('both serve the same data', async () => {
    expect([a.store.dialect, b.store.dialect]).toEqual(['postgres', 'postgres']);
    const created = await call<Patient>(a.fhirBase, 'POST', 'Patient', {
      resourceType: 'Patient',
      gender: 'other',
    });
    expect(created.status).toBe(201);
    const read = await call<Patient>(b.fhirBase, 'GET', `Patient/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);
    const practice = await call(b.fhirBase, 'GET', 'Organization/practice');
    expect(practice.status).toBe(200);
  });

  it('200 concurrent identical conditional creates across both make exactly one resource', async () => {
    const value = crypto.randomUUID();
    const patient: Patient = {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:example:mrn', value }],
      name: [{ family: 'Once' }],
    };
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        call<Patient>(instance(i), 'POST', 'Patient', patient, {
          'if-none-exist': `identifier=urn:example:mrn|${value}`,
        }),
      ),
    );
    expect(count(replies.map((r) => r.status))).toEqual({ 201: 1, 200: 199 });
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
    const found = await call<Bundle>(
      a.fhirBase,
      'GET',
      `Patient?identifier=${encodeURIComponent(`urn:example:mrn|${value}`)}&_total=accurate`,
    );
    expect(found.body.total).toBe(1);
  });

  it('20 concurrent PUTs with the same If-Match across both: one succeeds, 19 get 412', async () => {
    const created = await call<Patient>(a.fhirBase, 'POST', 'Patient', {
      resourceType: 'Patient',
      name: [{ family: 'Race' }],
    });
    const id = created.body.id as string;
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call<Patient | OperationOutcome>(
          instance(i),
          'PUT',
          `Patient/${id}`,
          { resourceType: 'Patient', id, name: [{ family: 'Race', given: [`writer-${i}`] }] },
          { 'if-match': 'W/"1"' },
        ),
      ),
    );
    expect(count(replies.map((r) => r.status))).toEqual({ 200: 1, 412: 19 });
    const history = await call<Bundle>(b.fhirBase, 'GET', `Patient/${id}/_history`);
    expect(history.body.entry?.map((e) => e.resource?.meta?.versionId)).toEqual(['2', '1']);
  });
});

describe.skipIf(!enabled)('an instance whose database goes away', () => {
  let t: ListeningApp;
  let proxy: Server | undefined;
  let port = 0;
  const sockets = new Set<Socket>();
  const target = enabled ? new URL(testPostgresUrl() as string) : undefined;

  /** A TCP proxy in front of the database, to cut and restore it like a restart. */
  const listen = (onPort: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer((client) => {
        const upstream = connect(Number(target?.port || 5432), target?.hostname ?? '127.0.0.1');
        sockets.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        const drop = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
      });
      server.once('error', reject);
      server.listen(onPort, '127.0.0.1', () => resolve(server));
    });
  const cut = () =>
    new Promise<void>((resolve) => {
      proxy?.close(() => resolve());
      for (const s of sockets) s.destroy();
      sockets.clear();
    });

  beforeAll(async () => {
    proxy = await listen(0);
    port = (proxy.address() as AddressInfo).port;
    const url = new URL(withFreshSchema(testPostgresUrl() as string));
    url.hostname = '127.0.0.1';
    url.port = String(port);
    t = await listenTestApp({ databaseUrl: url.toString() });
  });
  afterAll(async () => {
    await t?.close();
    if (proxy?.listening) await cut();
  });

  it('answers 503 with an OperationOutcome while it is down, and recovers by itself', async () => {
    const created = await call<Patient>(t.fhirBase, 'POST', 'Patient', { resourceType: 'Patient' });
    expect(created.status).toBe(201);

    await cut();
    for (const [method, path, body] of [
      ['GET', `Patient/${created.body.id}`],
      ['GET', 'Patient?gender=other'],
      ['POST', 'Patient', { resourceType: 'Patient' }],
    ] as const) {
      const reply = await call<OperationOutcome>(t.fhirBase, method, path, body);
      expect(reply.status, `${method} ${path}`).toBe(503);
      expect(reply.body.resourceType).toBe('OperationOutcome');
      expect(reply.body.issue?.[0]?.code).toBe('transient');
      expect(reply.body.issue?.[0]?.details?.coding?.[0]?.code).toBe('store-unavailable');
    }
    expect((await fetch(`${t.origin}/readyz`)).status).toBe(503);

    proxy = await listen(port);
    expect((await fetch(`${t.origin}/readyz`)).status).toBe(200);
    const read = await call<Patient>(t.fhirBase, 'GET', `Patient/${created.body.id}`);
    expect(read.status).toBe(200);
    const again = await call<Patient>(t.fhirBase, 'POST', 'Patient', { resourceType: 'Patient' });
    expect(again.status).toBe(201);
  });
});
