import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../src/fhir/definitions.js';
import { extractIndexRows, type SearchIndexRows } from '../src/fhir/search/index-rows.js';
import { openStore } from '../src/store/open-store.js';
import { MAX_INDEXED_BYTES, parsePostgresUrl } from '../src/store/postgres/postgres-store.js';
import { loadServiceRequests } from './load-service-requests.js';
import {
  buildPatient,
  buildPractitioner,
  buildReferral,
  patientCount,
  PRACTITIONER_COUNT,
} from './support/referral.js';

/**
 * Bulk-loads `count` realistic PT referrals (bench/support/referral.ts: the same ones
 * load-service-requests.ts writes), with the count/5 Patients and 200 Practitioners they
 * reference, into a PostgreSQL schema: the rows the store would write for version 1 of each
 * resource (resource, resource_version and the seven index tables, indexed by the service's own
 * extractIndexRows), inserted as batched multi-row INSERTs (unnest of column arrays) on several
 * connections at once. The store contract (one write statement per resource, see
 * load-service-requests.ts) does the same at a few thousand rows a second; this does a million
 * referrals in minutes. The schema is created and migrated by opening the store first, so the
 * tables are exactly the service's. `--verify` loads a small set both ways and compares the rows.
 *
 * CLI:
 *   tsx bench/load-postgres.ts 'postgres://postgres@127.0.0.1:55432/referrals_test?schema=million' 1000000
 *   tsx bench/load-postgres.ts 'postgres://…?schema=check' --verify
 * Env: LOAD_BATCH (referrals per INSERT batch, default 2000), LOAD_CONNECTIONS (default 3).
 */
export interface PgLoadOptions {
  /** `postgres://…?schema=<name>`; the schema is created and migrated if needed. */
  databaseUrl: string;
  count: number;
  batchSize?: number;
  connections?: number;
  /** Called after each committed batch with the number of referrals written so far. */
  onProgress?: (written: number) => void;
}

export interface PgLoadSummary {
  count: number;
  /** Every resource written: referrals, Patients, Practitioners. */
  resources: number;
  indexRows: number;
  seconds: number;
  perSecond: number;
}

interface Row {
  resourceType: string;
  id: string;
  lastUpdated: string;
  ms: number;
  content: string;
  index: SearchIndexRows;
}

/** Column arrays of one batch, in the order of the INSERT statements below. */
function columns(rows: Row[]) {
  const c = {
    resource: [[], [], [], [], []] as unknown[][],
    token: [[], [], [], [], []] as unknown[][],
    string: [[], [], [], [], []] as unknown[][],
    reference: [[], [], [], [], [], []] as unknown[][],
    date: [[], [], [], [], []] as unknown[][],
    number: [[], [], [], [], []] as unknown[][],
    quantity: [[], [], [], [], [], [], []] as unknown[][],
    uri: [[], [], [], []] as unknown[][],
  };
  const push = (target: unknown[][], ...values: unknown[]): void => {
    values.forEach((v, i) => target[i]?.push(v));
  };
  for (const r of rows) {
    const t = r.resourceType;
    push(c.resource, t, r.id, r.lastUpdated, r.ms, r.content);
    for (const x of r.index.tokens) push(c.token, t, r.id, x.code, clip(x.system), clip(x.value));
    for (const x of r.index.strings) push(c.string, t, r.id, x.code, x.value, clip(x.norm));
    for (const x of r.index.references)
      push(c.reference, t, r.id, x.code, clip(x.reference), clip(x.targetType), clip(x.targetId));
    for (const x of r.index.dates) push(c.date, t, r.id, x.code, x.low, x.high);
    for (const x of r.index.numbers) push(c.number, t, r.id, x.code, x.low, x.high);
    for (const x of r.index.quantities) push(c.quantity, t, r.id, x.code, x.system, x.unit, x.low, x.high);
    for (const x of r.index.uris) push(c.uri, t, r.id, x.code, clip(x.value));
  }
  return c;
}

const INSERTS: [keyof ReturnType<typeof columns>, string][] = [
  [
    'resource',
    `INSERT INTO resource (resource_type, id, version_id, last_updated, last_updated_ms, deleted, content, content_text)
     SELECT t, i, 1, lu, ms, 0, c::jsonb, c FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[]) AS u(t, i, lu, ms, c)`,
  ],
  [
    'resource',
    `INSERT INTO resource_version (resource_type, id, version_id, last_updated, last_updated_ms, deleted, content, content_text)
     SELECT t, i, 1, lu, ms, 0, c::jsonb, c FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[]) AS u(t, i, lu, ms, c)`,
  ],
  [
    'token',
    'INSERT INTO idx_token (resource_type, id, code, system, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])',
  ],
  [
    'string',
    'INSERT INTO idx_string (resource_type, id, code, value, norm) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])',
  ],
  [
    'reference',
    'INSERT INTO idx_reference (resource_type, id, code, reference, target_type, target_id) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])',
  ],
  [
    'date',
    'INSERT INTO idx_date (resource_type, id, code, low, high) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[])',
  ],
  [
    'number',
    'INSERT INTO idx_number (resource_type, id, code, low, high) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[])',
  ],
  [
    'quantity',
    'INSERT INTO idx_quantity (resource_type, id, code, system, unit, low, high) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[])',
  ],
  [
    'uri',
    'INSERT INTO idx_uri (resource_type, id, code, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])',
  ],
];

/** As the store does (postgres-store.ts `clip`): index keys are cut to MAX_INDEXED_BYTES of UTF-8. */
function clip(value: string | null): string | null {
  if (value === null || Buffer.byteLength(value, 'utf8') <= MAX_INDEXED_BYTES) return value;
  let bytes = 0;
  let end = 0;
  for (const ch of value) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (bytes + size > MAX_INDEXED_BYTES) break;
    bytes += size;
    end += ch.length;
  }
  return value.slice(0, end);
}

/** Version 1 of `resource` as the store writes it: resourceType, id, meta first. */
function toRow(resource: Resource, ms: number): Row {
  const lastUpdated = new Date(ms).toISOString();
  const { resourceType, id, meta, ...rest } = resource;
  const stored = { resourceType, id, meta: { ...meta, versionId: '1', lastUpdated }, ...rest } as Resource;
  return {
    resourceType,
    id: id as string,
    lastUpdated,
    ms,
    content: JSON.stringify(stored),
    index: extractIndexRows(stored),
  };
}

export async function loadServiceRequestsPostgres(options: PgLoadOptions): Promise<PgLoadSummary> {
  const batchSize = options.batchSize ?? 2000;
  const connections = options.connections ?? 3;
  loadFhirDefinitions();
  // Opening the store creates the schema and applies the service's migrations.
  await (await openStore(options.databaseUrl, { poolSize: 1 })).close();
  const { connectionString, schema } = parsePostgresUrl(options.databaseUrl);
  const target = new URL(connectionString);
  if (schema) target.searchParams.set('options', `-c search_path=${schema}`);
  const pool = new pg.Pool({ connectionString: target.toString(), max: connections });
  pool.on('error', () => undefined);
  const started = performance.now();
  let resources = 0;
  let indexRows = 0;
  let written = 0;
  // lastUpdated increases by a millisecond per resource, as sequential writes would.
  let clock = Date.now() - (options.count + patientCount(options.count) + PRACTITIONER_COUNT);

  const insertBatch = async (batch: Resource[]): Promise<void> => {
    const rows = batch.map((r) => toRow(r, clock++));
    const c = columns(rows);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      for (const [table, sql] of INSERTS) {
        if ((c[table][0]?.length ?? 0) > 0) await client.query(sql, c[table]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    resources += rows.length;
    indexRows += rows.reduce((n, r) => n + Object.values(r.index).reduce((m, a) => m + a.length, 0), 0);
  };

  try {
    const referenced: Resource[] = [
      ...Array.from({ length: PRACTITIONER_COUNT }, (_, i) => buildPractitioner(`pr-${i}`)),
      ...Array.from({ length: patientCount(options.count) }, (_, i) => buildPatient(`pt-${i}`)),
    ];
    // Batches are built on demand and handed to `connections` writers, so building (node) and
    // inserting (the server) overlap.
    const batches = function* (): Generator<{ resources: Resource[]; referrals: number }> {
      for (let start = 0; start < referenced.length; start += batchSize) {
        yield { resources: referenced.slice(start, start + batchSize), referrals: 0 };
      }
      for (let start = 0; start < options.count; start += batchSize) {
        const end = Math.min(options.count, start + batchSize);
        yield {
          resources: Array.from({ length: end - start }, (_, k) => ({
            ...buildReferral(start + k, options.count),
            id: `sr-${start + k}`,
          })),
          referrals: end - start,
        };
      }
    };
    const source = batches();
    const writer = async (): Promise<void> => {
      for (let next = source.next(); !next.done; next = source.next()) {
        await insertBatch(next.value.resources);
        written += next.value.referrals;
        if (next.value.referrals > 0) options.onProgress?.(written);
      }
    };
    await Promise.all(Array.from({ length: connections }, writer));
  } finally {
    await pool.end();
  }
  const seconds = (performance.now() - started) / 1000;
  return { count: options.count, resources, indexRows, seconds, perSecond: options.count / seconds };
}

/**
 * Loads `count` referrals with this loader into `<schema>_bulk` and through the store contract
 * (load-service-requests.ts) into `<schema>_store`, and compares every table but the clock
 * columns: the bulk loader must write what the store writes. Answers the differences (none: []).
 */
export async function verifyAgainstStore(databaseUrl: string, count = 500): Promise<string[]> {
  const base = new URL(databaseUrl);
  const schema = base.searchParams.get('schema') ?? 'verify_load';
  const urlFor = (suffix: string): string => {
    const u = new URL(base);
    u.searchParams.set('schema', `${schema}_${suffix}`);
    return u.toString();
  };
  await loadServiceRequestsPostgres({ databaseUrl: urlFor('bulk'), count, batchSize: 97 });
  await loadServiceRequests({ databaseUrl: urlFor('store'), count });
  const { connectionString } = parsePostgresUrl(databaseUrl);
  const client = new pg.Client({ connectionString });
  await client.connect();
  const differences: string[] = [];
  try {
    const tables: [string, string][] = [
      [
        'resource',
        "resource_type, id, version_id, deleted, (content - 'meta')::text, content_text::jsonb - 'meta'",
      ],
      [
        'resource_version',
        "resource_type, id, version_id, deleted, (content - 'meta')::text, content_text::jsonb - 'meta'",
      ],
      ['idx_token', 'resource_type, id, code, system, value'],
      ['idx_string', 'resource_type, id, code, value, norm'],
      ['idx_reference', 'resource_type, id, code, reference, target_type, target_id'],
      ['idx_date', 'resource_type, id, code, low, high'],
      ['idx_number', 'resource_type, id, code, low, high'],
      ['idx_quantity', 'resource_type, id, code, system, unit, low, high'],
      ['idx_uri', 'resource_type, id, code, value'],
    ];
    for (const [table, cols] of tables) {
      for (const [a, b] of [
        ['bulk', 'store'],
        ['store', 'bulk'],
      ]) {
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM (SELECT ${cols} FROM ${schema}_${a}.${table} EXCEPT ALL SELECT ${cols} FROM ${schema}_${b}.${table}) d`,
        );
        if (rows[0]?.n) differences.push(`${table}: ${rows[0].n} rows in ${a} not in ${b}`);
      }
    }
    // The stored JSON keeps the store's key order (resourceType, id, meta, …).
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${schema}_bulk.resource b JOIN ${schema}_store.resource s USING (resource_type, id)
       WHERE regexp_replace(b.content_text, '"lastUpdated":"[^"]*"', '') <> regexp_replace(s.content_text, '"lastUpdated":"[^"]*"', '')`,
    );
    if (rows[0]?.n) differences.push(`content_text differs (beyond lastUpdated) for ${rows[0].n} resources`);
  } finally {
    await client
      .query(`DROP SCHEMA IF EXISTS ${schema}_bulk, ${schema}_store CASCADE`)
      .catch(() => undefined);
    await client.end();
  }
  return differences;
}

async function cli(): Promise<void> {
  const [url, countArg] = process.argv.slice(2);
  if (!url || !/^postgres(ql)?:\/\//.test(url) || (!countArg?.match(/^\d+$/) && countArg !== '--verify')) {
    console.error(
      "usage: tsx bench/load-postgres.ts 'postgres://…?schema=<name>' <count>\n" +
        "       tsx bench/load-postgres.ts 'postgres://…?schema=<name>' --verify",
    );
    process.exitCode = 2;
    return;
  }
  if (countArg === '--verify') {
    const differences = await verifyAgainstStore(url);
    console.log(
      differences.length
        ? `The bulk loader differs from the store:\n  ${differences.join('\n  ')}`
        : 'The bulk loader writes exactly what the store writes (500 referrals, every table).',
    );
    process.exitCode = differences.length ? 1 : 0;
    return;
  }
  const count = Number(countArg);
  const env = (name: string): number | undefined =>
    process.env[name] ? Number(process.env[name]) : undefined;
  const summary = await loadServiceRequestsPostgres({
    databaseUrl: url,
    count,
    batchSize: env('LOAD_BATCH'),
    connections: env('LOAD_CONNECTIONS'),
    onProgress: (n) => process.stdout.write(`\r${n}/${count}`),
  });
  console.log(
    `\nLoaded ${summary.count} ServiceRequests (${summary.resources} resources with their Patients and ` +
      `Practitioners, ${summary.indexRows} index rows) in ${summary.seconds.toFixed(1)} s ` +
      `(${Math.round(summary.perSecond)} referrals/s)`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  cli().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
