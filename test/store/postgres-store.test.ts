import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Patient, Resource } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isFhirError } from '../../src/fhir/errors.js';
import { parseSearch } from '../../src/fhir/search/parse-search.js';
import type { SearchQuery } from '../../src/fhir/search/search-query.js';
import type { FhirStore, StoreTransaction } from '../../src/store/fhir-store.js';
import { loadConfig } from '../../src/config/config.js';
import { openStore, type OpenStoreOptions } from '../../src/store/open-store.js';
import { numberPlaceholders } from '../../src/store/postgres/placeholders.js';
import { PG_MIGRATIONS } from '../../src/store/postgres/schema.js';
import { MIGRATIONS } from '../../src/store/sqlite/schema.js';
import {
  postgresTestsEnabled,
  testPostgresUrl,
  warnPostgresSkipped,
  withFreshSchema,
} from '../support/postgres.js';

/**
 * The PostgreSQL dialect beyond the shared contract: several service instances (separate stores,
 * separate pools) on one database, connection loss, migrations racing at start-up, and the exact
 * JSON round trip. Needs TEST_POSTGRES_URL; under CI its absence fails the run.
 */
const enabled = postgresTestsEnabled();
if (!enabled) {
  warnPostgresSkipped();
}

const patient = (id: string, family: string, extra: Partial<Patient> = {}): Patient & { id: string } => ({
  resourceType: 'Patient',
  id,
  name: [{ family }],
  identifier: [{ system: 'urn:test', value: id }],
  ...extra,
});

const write = (tx: StoreTransaction, resource: Resource & { id: string }) =>
  tx.write({
    resourceType: resource.resourceType,
    id: resource.id,
    resource,
  });

const byIdentifier = (value: string): SearchQuery => ({
  resourceType: 'Patient',
  filters: [{ kind: 'token', code: 'identifier', not: false, values: [{ system: 'urn:test', value }] }],
  sort: [],
  count: 10,
  offset: 0,
  total: true,
});

describe.skipIf(!enabled)('PostgreSQL store', () => {
  const server = testPostgresUrl() as string;
  const opened: FhirStore[] = [];
  const open = async (url: string, options?: OpenStoreOptions): Promise<FhirStore> => {
    const store = await openStore(url, options);
    opened.push(store);
    return store;
  };
  /** Two service instances on one (fresh) database. */
  const twoInstances = async (): Promise<[FhirStore, FhirStore]> => {
    const url = withFreshSchema(server);
    const a = await open(url);
    const b = await open(url);
    return [a, b];
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close().catch(() => undefined)));
  });

  describe('two instances, one database', () => {
    it('200 concurrent conditional creates with one lock key make exactly one resource', async () => {
      const [a, b] = await twoInstances();
      const outcomes = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          (i % 2 ? a : b).transaction(async (tx) => {
            await tx.lock('Patient?identifier=urn:test|once');
            const found = await tx.search({ ...byIdentifier('once'), total: false, count: 2 });
            if (found.resources.length > 0) {
              return { created: false, id: found.resources[0]?.id };
            }
            const id = `p${i}`;
            await write(tx, patient(id, 'Once', { identifier: [{ system: 'urn:test', value: 'once' }] }));
            return { created: true, id };
          }),
        ),
      );
      expect(outcomes.filter((o) => o.created)).toHaveLength(1);
      expect(new Set(outcomes.map((o) => o.id)).size).toBe(1);
      for (const store of [a, b]) {
        expect((await store.search(byIdentifier('once'))).total).toBe(1);
        expect((await store.history({ resourceType: 'Patient', count: 10, offset: 0 })).total).toBe(1);
      }
    });

    it('20 concurrent If-Match updates: exactly one wins, versions stay contiguous', async () => {
      const [a, b] = await twoInstances();
      await a.transaction((tx) => write(tx, patient('race', 'Start')));
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? a : b).transaction(async (tx) => {
            const current = await tx.read('Patient', 'race');
            if (current?.versionId !== '1') {
              throw new Error('precondition failed');
            }
            return write(tx, patient('race', `Writer${i}`));
          }),
        ),
      );
      const winners = results.filter((r) => r.status === 'fulfilled');
      expect(winners).toHaveLength(1);
      expect(winners[0]?.value.versionId).toBe('2');
      for (const loser of results.filter((r) => r.status === 'rejected')) {
        expect((loser.reason as Error).message).toBe('precondition failed');
      }
      const history = await b.history({ resourceType: 'Patient', id: 'race', count: 50, offset: 0 });
      expect(history.versions.map((v) => v.versionId)).toEqual(['2', '1']);
      expect((await a.read('Patient', 'race'))?.resource).toEqual(winners[0]?.value.resource);
    });

    it('20 concurrent unconditional updates on two instances lose nothing: versions 1..21', async () => {
      const [a, b] = await twoInstances();
      await a.transaction((tx) => write(tx, patient('counter', 'Counter')));
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? a : b).transaction(async (tx) => {
            const current = (await tx.read('Patient', 'counter'))?.resource as Patient;
            return write(tx, {
              ...patient('counter', 'Counter'),
              name: [...(current.name ?? []), { given: [`w${i}`] }],
            });
          }),
        ),
      );
      const history = await a.history({ resourceType: 'Patient', id: 'counter', count: 50, offset: 0 });
      expect(history.versions.map((v) => v.versionId)).toEqual(
        Array.from({ length: 21 }, (_, i) => String(21 - i)),
      );
      const times = history.versions.map((v) => Date.parse(v.lastUpdated)).reverse();
      expect([...times].sort((x, y) => x - y)).toEqual(times);
      const final = (await b.read('Patient', 'counter'))?.resource as Patient;
      expect(final.name?.flatMap((n) => n.given ?? []).sort()).toEqual(
        Array.from({ length: 20 }, (_, i) => `w${i}`).sort(),
      );
    });

    it('two instances creating the same new id concurrently: one creates, the other updates', async () => {
      const [a, b] = await twoInstances();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? a : b).transaction(async (tx) => {
            const existed = (await tx.read('Patient', 'same')) !== undefined;
            const version = await write(tx, patient('same', `W${i}`));
            return { existed, versionId: version.versionId };
          }),
        ),
      );
      // Serialised as SQLite would: exactly one saw no resource and wrote version 1.
      expect(results.filter((r) => !r.existed).map((r) => r.versionId)).toEqual(['1']);
      expect(results.map((r) => Number(r.versionId)).sort((x, y) => x - y)).toEqual(
        Array.from({ length: 10 }, (_, i) => i + 1),
      );
    });

    it('numbers subscription events without gaps under concurrency', async () => {
      const [a, b] = await twoInstances();
      const numbers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          (i % 2 ? a : b).transaction((tx) =>
            tx.appendSubscriptionEvent('sub-1', `Patient/p${i}/_history/1`, new Date().toISOString()),
          ),
        ),
      );
      expect([...numbers].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      expect(await a.subscriptionEventCount('sub-1')).toBe(100);
      const events = await b.subscriptionEvents('sub-1', 1, 100);
      expect(events.map((e) => e.eventNumber)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    });

    it('claimNotifications on both instances never hands out one notification twice', async () => {
      const [a, b] = await twoInstances();
      const total = 300;
      await Promise.all(
        Array.from({ length: 30 }, (_, batch) =>
          (batch % 2 ? a : b).transaction(async (tx) => {
            for (let i = 0; i < total / 30; i++) {
              await tx.appendSubscriptionEvent(
                `sub-${batch % 3}`,
                `Patient/p${batch}-${i}/_history/1`,
                '2024-01-01T00:00:00Z',
              );
            }
          }),
        ),
      );
      const claimed: number[] = [];
      const worker = async (store: FhirStore): Promise<void> => {
        for (;;) {
          const batch = await store.claimNotifications(Date.now() + 1000, 7, 60_000);
          if (batch.length === 0) {
            return;
          }
          claimed.push(...batch.map((n) => n.id));
          for (const n of batch) {
            expect(n.attempts).toBe(1);
            expect(n.focus).toMatch(/^Patient\/p/);
          }
        }
      };
      await Promise.all([worker(a), worker(b), worker(a), worker(b), worker(a), worker(b)]);
      expect(claimed).toHaveLength(total);
      expect(new Set(claimed).size).toBe(total);
      expect(await a.nextNotificationDueMs()).toBeGreaterThan(Date.now() + 30_000);
      // A lease that runs out makes the notification due again: nothing is lost.
      const again = await b.claimNotifications(Date.now() + 120_000, 1000, 60_000);
      expect(again).toHaveLength(total);
      expect(again.every((n) => n.attempts === 2)).toBe(true);
      await a.finishNotification(again[0]?.id as number, { status: 'delivered', atMs: Date.now() });
      await a.finishNotification(again[1]?.id as number, { status: 'failed', error: 'gone' });
      await a.finishNotification(again[2]?.id as number, {
        status: 'retry',
        nextAttemptMs: 1,
        error: 'later',
      });
      expect((await b.claimNotifications(Date.now(), 10, 1000)).map((n) => n.id)).toEqual([again[2]?.id]);
      const abandoned = await Promise.all([0, 1, 2].map((s) => b.abandonNotifications(`sub-${s}`, 'off')));
      expect(abandoned.reduce((x, y) => x + y, 0)).toBe(total - 2);
      expect(await a.nextNotificationDueMs()).toBeUndefined();
    });

    it('retries a deadlock: both transactions commit', async () => {
      const [a, b] = await twoInstances();
      await a.transaction(async (tx) => {
        await write(tx, patient('left', 'L'));
        await write(tx, patient('right', 'R'));
      });
      let attempts = 0;
      let release: () => void = () => undefined;
      const bothHoldOne = new Promise<void>((resolve) => {
        let waiting = 0;
        release = () => {
          if (++waiting === 2) resolve();
        };
      });
      const crosswise = (store: FhirStore, first: string, second: string) =>
        store.transaction(async (tx) => {
          attempts++;
          await tx.read('Patient', first);
          if (attempts <= 2) {
            release();
            await bothHoldOne;
          }
          await tx.read('Patient', second);
          await write(tx, patient(first, `${first}-${second}`));
          return write(tx, patient(second, `${first}-${second}`));
        });
      const [x, y] = await Promise.all([crosswise(a, 'left', 'right'), crosswise(b, 'right', 'left')]);
      expect(attempts).toBe(3);
      expect(new Set([x.versionId, y.versionId])).toEqual(new Set(['2', '3']));
    });
  });

  it('applies migrations once when several instances start at the same time', async () => {
    const url = withFreshSchema(server);
    const stores = await Promise.all(Array.from({ length: 6 }, () => open(url)));
    expect(stores.map((s) => s.dialect)).toEqual(Array(6).fill('postgres'));
    const client = new pg.Client({ connectionString: server });
    await client.connect();
    try {
      const schema = new URL(url).searchParams.get('schema');
      const { rows } = await client.query(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
      expect(rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
    } finally {
      await client.end();
    }
  });

  it('returns exactly the JSON written, keeps a JSONB copy, and stores what JSONB cannot hold', async () => {
    const url = withFreshSchema(server);
    const store = await open(url);
    // Key order JSONB would not keep, a number it would rewrite, NUL and a lone surrogate.
    const odd = {
      resourceType: 'Patient',
      id: 'odd',
      zeta: undefined,
      name: [{ text: 'A\u0000B \ud800 end', family: 'Zed', given: ['a'] }],
      gender: 'other',
      extension: [{ valueDecimal: 1.5e-7, url: 'http://example.org/x' }],
    } as unknown as Patient & { id: string };
    const written = await store.transaction((tx) => write(tx, odd));
    const read = await store.read('Patient', 'odd');
    expect(JSON.stringify(read?.resource)).toBe(JSON.stringify(written.resource));
    expect(Object.keys(read?.resource as object)).toEqual([
      'resourceType',
      'id',
      'meta',
      'name',
      'gender',
      'extension',
    ]);
    expect(Object.keys((read?.resource as Patient).name?.[0] ?? {})).toEqual(['text', 'family', 'given']);
    expect((read?.resource as Patient).name?.[0]?.text).toBe('A\u0000B \ud800 end');
    const found = await store.search({
      resourceType: 'Patient',
      filters: [{ kind: 'string', code: 'name', match: 'contains', values: ['a\u0000b'] }],
      sort: [],
      count: 10,
      offset: 0,
      total: false,
    });
    expect(found.resources.map((r) => r.id)).toEqual(['odd']);
    const client = new pg.Client({ connectionString: server });
    await client.connect();
    try {
      const schema = new URL(url).searchParams.get('schema');
      const { rows } = await client.query(
        `SELECT content->'name'->0->>'family' AS family, jsonb_typeof(content) AS t FROM ${schema}.resource WHERE id = 'odd'`,
      );
      expect(rows).toEqual([{ family: 'Zed', t: 'object' }]);
    } finally {
      await client.end();
    }
  });

  it('answers every kind of search exactly as SQLite does (same rows, order and total)', async () => {
    const sqlite = await openStore('sqlite::memory:');
    opened.push(sqlite);
    const postgres = await open(withFreshSchema(server));
    const resources = [
      patient('a', 'zebra', { gender: 'male', birthDate: '1980' }),
      patient('b', 'Äpfel', { gender: 'female', generalPractitioner: [{ reference: 'Practitioner/gp1' }] }),
      { resourceType: 'Patient', id: 'c', birthDate: '1980-01-01' },
      patient('d', 'apple', { birthDate: '1990-05-01', gender: 'female' }),
      patient('e', 'Ápple', {
        birthDate: '1990-05',
        generalPractitioner: [{ reference: 'Practitioner/gp2' }],
      }),
      patient('f', 'B%_\\x', { birthDate: '2024-03-05T10:00:00+02:00' }),
      patient('g', 'b', { identifier: [{ value: 'no-system' }] }),
      {
        resourceType: 'Observation',
        id: 'o1',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
        subject: { reference: 'Patient/a' },
        effectiveDateTime: '2024-01-02T03:04:05Z',
        valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      },
      {
        resourceType: 'Observation',
        id: 'o2',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
        subject: { reference: 'Patient/b' },
        effectiveDateTime: '2024-01-03',
        valueQuantity: { value: 80.5, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      },
      {
        resourceType: 'Observation',
        id: 'o3',
        status: 'preliminary',
        code: { text: 'none' },
        subject: { reference: 'Patient/b' },
        valueQuantity: { value: -3 },
      },
      {
        resourceType: 'RiskAssessment',
        id: 'r1',
        status: 'final',
        subject: { reference: 'Patient/a' },
        prediction: [{ probabilityDecimal: 0.25 }],
      },
      {
        resourceType: 'RiskAssessment',
        id: 'r2',
        status: 'final',
        subject: { reference: 'Patient/a' },
        prediction: [{ probabilityDecimal: 0.8 }],
      },
      { resourceType: 'ValueSet', id: 'v1', status: 'active', url: 'http://example.org/fhir/ValueSet/a' },
      { resourceType: 'ValueSet', id: 'v2', status: 'active', url: 'http://example.org/fhir/ValueSet/a/b' },
      { resourceType: 'ValueSet', id: 'v3', status: 'active', url: 'http://example.org/other' },
    ] as (Resource & { id: string })[];
    for (const store of [sqlite, postgres]) {
      await store.transaction(async (tx) => {
        for (const r of resources) await write(tx, r);
      });
    }
    const searches: [string, string][] = [
      ['Patient', '_sort=family'],
      ['Patient', '_sort=-family'],
      ['Patient', '_sort=birthdate,-_id'],
      ['Patient', '_sort=-birthdate&_count=3&_offset=1'],
      ['Patient', 'family=ap&_sort=-_id'],
      ['Patient', 'family:contains=%_\\&_sort=_id'],
      ['Patient', 'family:contains=p&_sort=_id'],
      ['Patient', 'family:exact=apple'],
      ['Patient', 'identifier=urn:test|a,urn:test|d&_sort=_id'],
      ['Patient', 'identifier=|no-system'],
      ['Patient', 'identifier=urn:test|&_sort=_id'],
      ['Patient', 'gender:not=female&_sort=_id'],
      ['Patient', 'gender:missing=true&_sort=_id'],
      ['Patient', 'general-practitioner=Practitioner/gp1'],
      ['Patient', 'general-practitioner:missing=false&_sort=_id'],
      ['Patient', 'birthdate=1980&_sort=_id'],
      ['Patient', 'birthdate=ge1990-05-01&_sort=_id'],
      ['Patient', 'birthdate=lt1990-05-15&_sort=_id'],
      ['Patient', 'birthdate=ap2024-03-05&_sort=_id'],
      ['Patient', 'birthdate=sa1985&_sort=_id'],
      ['Patient', 'birthdate=eb1990-05-02&_sort=_id'],
      ['Patient', 'birthdate=ne1980&_sort=_id'],
      ['Patient', '_id=a,c,zz&_sort=-_id'],
      ['Patient', '_lastUpdated=gt2000-01-01&_sort=_id'],
      ['Observation', 'value-quantity=gt75&_sort=_id'],
      ['Observation', 'value-quantity=ap72||/min'],
      ['Observation', 'value-quantity=le80.5|http://unitsofmeasure.org|/min&_sort=-value-quantity'],
      ['Observation', 'date=2024-01&_sort=-date'],
      ['Observation', 'subject=Patient/b&_sort=_id'],
      ['Observation', 'subject:missing=false&code=http://loinc.org|8867-4&_sort=date'],
      ['RiskAssessment', 'probability=gt0.5'],
      ['RiskAssessment', 'probability=ap0.25&_sort=-probability'],
      ['ValueSet', 'url:below=http://example.org/fhir&_sort=_id'],
      ['ValueSet', 'url:above=http://example.org/fhir/ValueSet/a/b/c&_sort=_id'],
      ['ValueSet', 'url=http://example.org/other'],
    ];
    let nonEmpty = 0;
    for (const [type, queryString] of searches) {
      const { query } = parseSearch(type, [...new URLSearchParams(queryString)], { strict: true });
      query.total = true;
      const expected = await sqlite.search(query);
      const actual = await postgres.search(query);
      const label = `${type}?${queryString}`;
      expect(
        actual.resources.map((r) => r.id),
        label,
      ).toEqual(expected.resources.map((r) => r.id));
      expect(actual.total, label).toBe(expected.total);
      nonEmpty += expected.resources.length > 0 ? 1 : 0;
      expect(actual.resources, label).toEqual(
        expected.resources.map((r) => ({ ...r, meta: actual.resources.find((x) => x.id === r.id)?.meta })),
      );
    }
    expect(nonEmpty).toBe(searches.length);
  });

  it('stores a value too long for a B-tree key, and still finds it by prefix and exact string', async () => {
    const store = await open(withFreshSchema(server));
    const family = `Long${randomBytes(6000).toString('base64')}`;
    const long = patient('long', family, { identifier: [{ system: 'urn:test', value: family }] });
    await store.transaction((tx) => write(tx, long));
    const search = (filters: SearchQuery['filters']) =>
      store.search({ resourceType: 'Patient', filters, sort: [], count: 10, offset: 0, total: false });
    expect(
      (await search([{ kind: 'string', code: 'family', match: 'start', values: ['long'] }])).resources,
    ).toHaveLength(1);
    expect(
      (await search([{ kind: 'string', code: 'family', match: 'exact', values: [family] }])).resources,
    ).toHaveLength(1);
  });

  it('a statement that fails inside a transaction is never committed as a success', async () => {
    const store = await open(withFreshSchema(server));
    await expect(
      store.transaction(async (tx) => {
        await write(tx, patient('kept', 'Kept'));
        // An event without a focus breaks a NOT NULL constraint; `work` swallows the error.
        await tx
          .appendSubscriptionEvent('sub-1', null as unknown as string, new Date().toISOString())
          .catch(() => undefined);
        return 'done';
      }),
    ).rejects.toMatchObject({ code: '23502' });
    expect(await store.read('Patient', 'kept')).toBeUndefined();
  });

  describe('when the database goes away', () => {
    /** A TCP proxy to the test server that can be cut and restored, like a database restart. */
    let proxy: { server: Server; port: number; sockets: Set<Socket>; target: { host: string; port: number } };
    const listen = (port = 0) =>
      new Promise<Server>((resolve, reject) => {
        const s = createServer((client) => {
          const upstream = connect(proxy.target.port, proxy.target.host);
          proxy.sockets.add(client).add(upstream);
          client.pipe(upstream).pipe(client);
          const drop = () => {
            client.destroy();
            upstream.destroy();
          };
          client.on('error', drop).on('close', drop);
          upstream.on('error', drop).on('close', drop);
        });
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve(s));
      });
    const cut = async () => {
      await new Promise<void>((resolve) => {
        proxy.server.close(() => resolve());
        for (const s of proxy.sockets) s.destroy();
        proxy.sockets.clear();
      });
    };
    afterAll(async () => {
      if (proxy?.server.listening) await cut();
    });

    it('answers store-unavailable (503) while it is down, and reconnects by itself', async () => {
      const target = new URL(server);
      proxy = {
        server: undefined as unknown as Server,
        port: 0,
        sockets: new Set(),
        target: { host: target.hostname, port: Number(target.port || 5432) },
      };
      proxy.server = await listen();
      proxy.port = (proxy.server.address() as AddressInfo).port;
      const viaProxy = new URL(withFreshSchema(server));
      viaProxy.hostname = '127.0.0.1';
      viaProxy.port = String(proxy.port);
      const store = await open(viaProxy.toString(), { poolSize: 3 });
      await store.transaction((tx) => write(tx, patient('up', 'Up')));

      await cut();
      const failures = await Promise.allSettled([
        store.read('Patient', 'up'),
        store.search(byIdentifier('up')),
        store.transaction((tx) => write(tx, patient('down', 'Down'))),
        store.ping(),
        store.claimNotifications(Date.now(), 10, 1000),
      ]);
      for (const failure of failures) {
        expect(failure.status).toBe('rejected');
        const reason = (failure as PromiseRejectedResult).reason;
        expect(isFhirError(reason), String(reason)).toBe(true);
        expect(reason).toMatchObject({ code: 'store-unavailable', status: 503 });
        expect(reason.outcome.issue[0].code).toBe('transient');
      }

      proxy.server = await listen(proxy.port);
      await store.ping();
      expect((await store.read('Patient', 'up'))?.versionId).toBe('1');
      const written = await store.transaction((tx) => write(tx, patient('up', 'Again')));
      expect(written.versionId).toBe('2');
    });

    it('fails to open with store-unavailable when nothing listens', async () => {
      const nowhere = new URL(server);
      nowhere.hostname = '127.0.0.1';
      nowhere.port = '1';
      nowhere.searchParams.set('schema', 'unreachable');
      await expect(openStore(nowhere.toString())).rejects.toMatchObject({
        code: 'store-unavailable',
        status: 503,
      });
    });
  });
});

describe('PostgreSQL migrations', () => {
  it('has a migration for every SQLite migration, under the same number', () => {
    expect(PG_MIGRATIONS.map((m) => [m.version, m.description])).toEqual(
      MIGRATIONS.map((m) => [m.version, m.description]),
    );
  });
});

describe('PostgreSQL placeholders', () => {
  it('numbers ? outside quotes only', () => {
    expect(numberPlaceholders("a = ? AND b LIKE ? ESCAPE '\\' AND c = '?' AND \"?\" = ?")).toBe(
      "a = $1 AND b LIKE $2 ESCAPE '\\' AND c = '?' AND \"?\" = $3",
    );
  });
});

describe('openStore configuration', () => {
  it('rejects a bad schema name or pool size before connecting', async () => {
    await expect(openStore('postgres://localhost/db?schema=Bad-Name')).rejects.toThrow(/schema/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://localhost/db', PG_POOL_SIZE: 'many' })).toThrow(
      /PG_POOL_SIZE/,
    );
    await expect(openStore('mysql://localhost/db')).rejects.toThrow(/DATABASE_URL/);
  });
});
