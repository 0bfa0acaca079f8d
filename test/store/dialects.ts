import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The database URLs the store contract suite runs against. Every dialect the service supports is
 * listed here, so one suite proves them all alike.
 */
export function contractDatabaseUrls(): { name: string; url: () => string }[] {
  return [
    { name: 'sqlite in memory', url: () => 'sqlite::memory:' },
    {
      name: 'sqlite file (WAL)',
      url: () => `sqlite:${join(mkdtempSync(join(tmpdir(), 'fhir-store-')), 'store.sqlite')}`,
    },
  ];
}
