import type { Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import type { SearchQuery } from '../../src/fhir/search/search-query.js';
import type { ObservableStore } from '../../src/store/fhir-store.js';
import { openStore } from '../../src/store/open-store.js';
import { contractDatabaseUrls } from './dialects.js';

/**
 * The store indexes what it writes (issue 10): callers hand `write` a resource and nothing else;
 * the store computes the search index rows from the version it stores, exactly once per version.
 */
const patient = (id: string, family: string, identifier = id): Patient & { id: string } => ({
  resourceType: 'Patient',
  id,
  name: [{ family }],
  identifier: [{ system: 'urn:test', value: identifier }],
});

const query = (filters: SearchQuery['filters']): SearchQuery => ({
  resourceType: 'Patient',
  filters,
  sort: [{ code: '_id', descending: false }],
  count: 10,
  offset: 0,
  total: true,
});
const byFamily = (value: string) =>
  query([{ kind: 'string', code: 'family', match: 'start', values: [value] }]);
const byIdentifier = (value: string) =>
  query([{ kind: 'token', code: 'identifier', not: false, values: [{ system: 'urn:test', value }] }]);

describe.each(contractDatabaseUrls())('Store indexing on $name', ({ url }) => {
  const opened: ObservableStore[] = [];
  const open = async (databaseUrl = url()): Promise<ObservableStore> => {
    const store = await openStore(databaseUrl);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close().catch(() => undefined)));
  });
  const ids = async (store: ObservableStore, q: SearchQuery) =>
    (await store.search(q)).resources.map((r) => r.id);

  it('computes the search index once per stored version, and none for a deletion marker', async () => {
    const store = await open();
    expect(store.stats.indexComputations).toBe(0);
    await store.transaction((tx) =>
      tx.write({ resourceType: 'Patient', id: 'p1', resource: patient('p1', 'One') }),
    );
    expect(store.stats.indexComputations).toBe(1);
    await store.transaction(async (tx) => {
      await tx.write({ resourceType: 'Patient', id: 'p1', resource: patient('p1', 'Uno') });
      await tx.write({ resourceType: 'Patient', id: 'p2', resource: patient('p2', 'Two') });
    });
    expect(store.stats.indexComputations).toBe(3);
    await store.transaction((tx) => tx.write({ resourceType: 'Patient', id: 'p2', deleted: true }));
    expect(store.stats.indexComputations).toBe(3);
    // Reads and searches compute nothing.
    await store.read('Patient', 'p1');
    await store.search(byFamily('uno'));
    expect(store.stats.indexComputations).toBe(3);
    const history = await store.history({ count: 100, offset: 0 });
    const stored = history.versions.filter((v) => !v.deleted);
    expect(history.total).toBe(4);
    expect(store.stats.indexComputations).toBe(stored.length);
  });

  it('counts per store: a second store (on the same database, where it can be shared) starts from zero', async () => {
    const databaseUrl = url();
    const first = await open(databaseUrl);
    await first.transaction((tx) =>
      tx.write({ resourceType: 'Patient', id: 'c1', resource: patient('c1', 'C') }),
    );
    const second = await open(databaseUrl);
    expect(second.stats.indexComputations).toBe(0);
    expect(first.stats.indexComputations).toBe(1);
  });

  it('makes a resource written without an index searchable, re-indexed on update, gone once deleted', async () => {
    const store = await open();
    await store.transaction((tx) =>
      tx.write({ resourceType: 'Patient', id: 's1', resource: patient('s1', 'Müller', 'MRN-1') }),
    );
    expect(await ids(store, byFamily('mul'))).toEqual(['s1']);
    expect(await ids(store, byIdentifier('MRN-1'))).toEqual(['s1']);

    await store.transaction((tx) =>
      tx.write({ resourceType: 'Patient', id: 's1', resource: patient('s1', 'Schmidt', 'MRN-2') }),
    );
    expect(await ids(store, byFamily('mul'))).toEqual([]);
    expect(await ids(store, byIdentifier('MRN-1'))).toEqual([]);
    expect(await ids(store, byFamily('schm'))).toEqual(['s1']);
    expect(await ids(store, byIdentifier('MRN-2'))).toEqual(['s1']);

    await store.transaction((tx) => tx.write({ resourceType: 'Patient', id: 's1', deleted: true }));
    expect((await store.search(byIdentifier('MRN-2'))).total).toBe(0);
  });

  it('indexes the version it stores, not what the caller might have indexed before the write', async () => {
    const store = await open();
    // A caller that still passes an index (callers outside the store did until issue 10) is
    // ignored: the rows come from the stored resource.
    const stale = { tokens: [{ code: 'identifier', system: 'urn:test', value: 'stale' }] };
    await store.transaction((tx) =>
      tx.write({ resourceType: 'Patient', id: 'i1', resource: patient('i1', 'Real'), index: stale } as never),
    );
    expect(await ids(store, byIdentifier('stale'))).toEqual([]);
    expect(await ids(store, byIdentifier('i1'))).toEqual(['i1']);
  });
});
