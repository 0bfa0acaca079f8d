import pg from 'pg';
import type { Resource } from '@medplum/fhirtypes';
import type { SearchIndexRows } from '../../fhir/search/index-rows.js';
import type { SearchQuery } from '../../fhir/search/search-query.js';
import type {
  HistoryPage,
  HistoryRequest,
  SearchResult,
  StoreReader,
  StoreTransaction,
  StoredVersion,
  WriteRequest,
} from '../fhir-store.js';
import { INDEX_TABLE_SPECS, indexColumnArrays } from '../shared/index-tables.js';
import { ReaderThrough } from '../shared/reader-through.js';
import { historyPage, referencedResources, searchResources, versionById } from '../shared/reads.js';
import { toStoredVersion, type VersionRow } from '../shared/rows.js';
import { versionValues, writtenVersion, type CurrentVersion, type Versioning } from '../shared/versioning.js';
import { WriteConflict } from './pg-errors.js';
import { clipIndexedText, jsonbSafeText, pgValue } from './pg-values.js';
import { numberPlaceholders } from './placeholders.js';
import { PG_READS, SQL, type Statement } from './statements.js';

/**
 * What a PostgreSQL transaction (or the pool, for reads) runs: the shared logic of the store's
 * reads and writes over this dialect's statements, row locks and index parameters.
 */
/** Something that runs a query: the pool (one statement, autocommit) or a transaction's client. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export class PgTransaction extends ReaderThrough implements StoreTransaction {
  /** The first statement that failed: the transaction is aborted from then on. */
  failure: unknown;
  finished = false;
  private readonly queries: PgQueries;

  constructor(
    private readonly client: pg.PoolClient,
    versions: Versioning,
  ) {
    super();
    this.queries = new PgQueries(
      async (sql, params) => {
        if (this.finished) {
          throw new Error('The transaction has already ended');
        }
        try {
          return await runOn(this.client, sql, params ?? []);
        } catch (err) {
          this.failure ??= err;
          throw err;
        }
      },
      true,
      versions,
      (err) => {
        this.failure ??= err;
      },
    );
  }

  protected override reading<T>(work: (reader: StoreReader) => Promise<T>): Promise<T> {
    return work(this.queries);
  }
  write(request: WriteRequest): Promise<StoredVersion> {
    return this.queries.write(request);
  }
  async lock(key: string): Promise<void> {
    await this.queries.exec(SQL.lock, [key]);
  }
  async appendSubscriptionEvent(subscriptionId: string, focus: string, occurredAt: string): Promise<number> {
    // Serialise event numbering per subscription across transactions and instances.
    await this.queries.exec(SQL.lock, [`subscription-event:${subscriptionId}`]);
    const { rows } = await this.queries.exec<{ n: number }>(SQL.appendEvent, [
      subscriptionId,
      focus,
      occurredAt,
      Date.now(),
    ]);
    return rows[0]?.n as number;
  }
}

type Exec = <R extends pg.QueryResultRow>(
  sql: Statement | string,
  params?: unknown[],
) => Promise<pg.QueryResult<R>>;

/** The statements, over either the pool (reads) or one transaction's connection. */
export class PgQueries implements StoreReader {
  /** Rows this transaction holds locked (read FOR UPDATE, or written): version and lastUpdated. */
  private readonly locked = new Map<string, CurrentVersion>();
  /** Resources this transaction found missing (which locks nothing). */
  private readonly missing = new Set<string>();

  constructor(
    readonly exec: Exec,
    private readonly inTransaction: boolean,
    private readonly versions?: Versioning,
    /** Records a conflict found here, so the transaction re-runs even if `work` catches it. */
    private readonly onConflict: (err: WriteConflict) => void = () => undefined,
  ) {}

  /** The shared reads' `?` SQL, numbered for PostgreSQL. */
  private readonly rows = async <R>(sql: string, params: unknown[]): Promise<R[]> =>
    (await this.exec<R & pg.QueryResultRow>(numberPlaceholders(sql), params)).rows;

  private conflict(key: string): WriteConflict {
    const err = new WriteConflict(key);
    this.onConflict(err);
    return err;
  }

  async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const { rows } = await this.exec<VersionRow>(this.inTransaction ? SQL.readForUpdate : SQL.read, [
      resourceType,
      id,
    ]);
    const row = rows[0];
    if (this.inTransaction) {
      const key = `${resourceType}/${id}`;
      if (row) {
        this.locked.set(key, { versionId: row.version_id, lastUpdatedMs: Date.parse(row.last_updated) });
      } else {
        this.missing.add(key);
      }
    }
    return row && toStoredVersion(row);
  }

  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    return versionById(
      versionId,
      async (version) => (await this.exec<VersionRow>(SQL.vread, [resourceType, id, version])).rows[0],
    );
  }

  search(query: SearchQuery): Promise<SearchResult> {
    return searchResources(query, PG_READS, this.rows);
  }

  readReferences(references: string[]): Promise<Resource[]> {
    // One statement for all of them, joined against the pairs.
    return referencedResources(references, async (targets) => {
      const { rows } = await this.exec<{ resource_type: string; id: string; content_text: string }>(
        SQL.readReferences,
        [targets.map((t) => t.type), targets.map((t) => t.id)],
      );
      return new Map(rows.map((r) => [`${r.resource_type}/${r.id}`, r.content_text]));
    });
  }

  history(request: HistoryRequest): Promise<HistoryPage> {
    return historyPage(request, PG_READS, this.rows);
  }

  async write(request: WriteRequest): Promise<StoredVersion> {
    const versions = this.versions as Versioning;
    const { resourceType, id } = request;
    const key = `${resourceType}/${id}`;
    // A row this transaction already holds cannot have changed; otherwise lock it now.
    let current = this.locked.get(key);
    if (!current) {
      const { rows } = await this.exec<CurrentVersion>(SQL.current, [resourceType, id]);
      current = rows[0];
      if (current && this.missing.has(key)) {
        // Created by another instance after this transaction found it missing: run again, so
        // the decision (create or update, If-None-Match, …) is taken on what is there now.
        throw this.conflict(key);
      }
    }
    const version = versions.next(request, current);
    const result = await this.exec<{ n: number }>(SQL.write, [
      ...versionValues(version),
      version.content === null ? null : jsonbSafeText(version.content, version.resource),
      current?.versionId ?? 0,
      ...indexParams(version.index),
    ]);
    if (result.rows[0]?.n !== 1) {
      throw this.conflict(key);
    }
    this.locked.set(key, { versionId: version.versionId, lastUpdatedMs: version.lastUpdatedMs });
    this.missing.delete(key);
    return writtenVersion(version);
  }
}

/**
 * The version's index rows as column arrays, table by table in INDEX_TABLE_SPECS order (the write
 * statement's parameters from $10); empty arrays for a deletion marker. Keyed text is clipped.
 */
function indexParams(index: SearchIndexRows | undefined): unknown[][] {
  return INDEX_TABLE_SPECS.flatMap((spec) =>
    index
      ? indexColumnArrays(index, spec, (value, column) =>
          column.keyed && column.type === 'text' ? clipIndexedText(value as string | null) : value,
        )
      : [[], ...spec.columns.map(() => [])],
  );
}

export async function runOn<R extends pg.QueryResultRow>(
  target: Queryable,
  sql: Statement | string,
  params: unknown[],
): Promise<pg.QueryResult<R>> {
  const values = params.map(pgValue);
  return typeof sql === 'string'
    ? await target.query<R>(sql, values)
    : await target.query<R>({ name: sql.name, text: sql.text, values });
}
