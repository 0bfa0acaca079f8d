import type { Patient, Resource } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import type { FhirStore } from '../../src/store/fhir-store.js';
import { openStore } from '../../src/store/open-store.js';
import { contractDatabaseUrls } from './dialects.js';

function writeRequest(resource: Resource & { id: string }) {
  return {
    resourceType: resource.resourceType,
    id: resource.id,
    resource,
  };
}

const patient = (id: string, family: string): Patient & { id: string } => ({
  resourceType: 'Patient',
  id,
  name: [{ family }],
  identifier: [{ system: 'urn:test', value: id }],
});

describe.each(contractDatabaseUrls())('FhirStore contract on $name', ({ url }) => {
  let store: FhirStore;
  const open = async (databaseUrl = url()): Promise<FhirStore> => {
    store = await openStore(databaseUrl);
    return store;
  };
  afterEach(async () => {
    await store?.close().catch(() => undefined);
  });

  it('assigns versionId 1, 2, 3 and a lastUpdated that never goes backwards', async () => {
    await open();
    const versions = [];
    for (let i = 0; i < 3; i++) {
      versions.push(await store.transaction((tx) => tx.write(writeRequest(patient('p1', `Name${i}`)))));
    }
    expect(versions.map((v) => v.versionId)).toEqual(['1', '2', '3']);
    const times = versions.map((v) => Date.parse(v.lastUpdated));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(versions[2]?.resource?.meta?.versionId).toBe('3');
    const current = await store.read('Patient', 'p1');
    expect((current?.resource as Patient).name?.[0]?.family).toBe('Name2');
    const first = await store.vread('Patient', 'p1', '1');
    expect((first?.resource as Patient).name?.[0]?.family).toBe('Name0');
  });

  it('keeps a deletion marker: read says deleted, vread of older versions still works', async () => {
    await open();
    await store.transaction((tx) => tx.write(writeRequest(patient('p2', 'Gone'))));
    const marker = await store.transaction((tx) =>
      tx.write({ resourceType: 'Patient', id: 'p2', deleted: true }),
    );
    expect(marker).toMatchObject({ versionId: '2', deleted: true });
    expect((await store.read('Patient', 'p2'))?.deleted).toBe(true);
    expect((await store.vread('Patient', 'p2', '1'))?.resource).toBeDefined();
    const search = await store.search({
      resourceType: 'Patient',
      filters: [{ kind: 'string', code: 'family', match: 'start', values: ['gone'] }],
      sort: [],
      count: 10,
      offset: 0,
      total: true,
    });
    expect(search.total).toBe(0);
  });

  it('rolls back every write of a transaction that throws', async () => {
    await open();
    await expect(
      store.transaction(async (tx) => {
        await tx.write(writeRequest(patient('a', 'A')));
        await tx.write(writeRequest(patient('b', 'B')));
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await store.read('Patient', 'a')).toBeUndefined();
    expect(await store.read('Patient', 'b')).toBeUndefined();
    expect((await store.history({ resourceType: 'Patient', count: 10, offset: 0 })).total).toBe(0);
  });

  it('answers searches from the write-time index, and re-indexes on update', async () => {
    await open();
    await store.transaction(async (tx) => {
      await tx.write(writeRequest(patient('x1', 'Müller')));
      await tx.write(writeRequest(patient('x2', 'Miller')));
    });
    const byFamily = (value: string) =>
      store.search({
        resourceType: 'Patient',
        filters: [{ kind: 'string', code: 'family', match: 'start', values: [value] }],
        sort: [{ code: '_id', descending: false }],
        count: 10,
        offset: 0,
        total: true,
      });
    expect((await byFamily('mul')).resources.map((r) => r.id)).toEqual(['x1']);
    expect((await byFamily('m')).total).toBe(2);
    await store.transaction((tx) => tx.write(writeRequest(patient('x1', 'Schmidt'))));
    expect((await byFamily('mul')).total).toBe(0);
    expect((await byFamily('schm')).resources.map((r) => r.id)).toEqual(['x1']);
  });

  it('lists history newest first, filtered by type, id and _since', async () => {
    await open();
    await store.transaction((tx) => tx.write(writeRequest(patient('h1', 'One'))));
    const between = new Date(Date.now() + 5).toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await store.transaction((tx) => tx.write(writeRequest(patient('h1', 'Two'))));
    await store.transaction((tx) => tx.write(writeRequest(patient('h2', 'Other'))));
    const all = await store.history({ count: 10, offset: 0 });
    expect(all.versions.map((v) => `${v.id}/${v.versionId}`)).toEqual(['h2/1', 'h1/2', 'h1/1']);
    const instance = await store.history({ resourceType: 'Patient', id: 'h1', count: 10, offset: 0 });
    expect(instance.total).toBe(2);
    const since = await store.history({ resourceType: 'Patient', since: between, count: 10, offset: 0 });
    expect(since.versions.map((v) => `${v.id}/${v.versionId}`)).toEqual(['h2/1', 'h1/2']);
  });

  it('keeps committed writes across a reopen (durable file store)', async () => {
    const databaseUrl = url();
    await open(databaseUrl);
    await store.transaction((tx) => tx.write(writeRequest(patient('d1', 'Durable'))));
    await store.close();
    if (databaseUrl === 'sqlite::memory:') {
      return; // an in-memory database is gone by design
    }
    await open(databaseUrl);
    expect((await store.read('Patient', 'd1'))?.versionId).toBe('1');
  });
});
