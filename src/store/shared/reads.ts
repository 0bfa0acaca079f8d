import type { Resource } from '@medplum/fhirtypes';
import type { SearchQuery } from '../../fhir/search/search-query.js';
import type { HistoryPage, HistoryRequest, SearchResult, StoredVersion } from '../fhir-store.js';
import { buildOrderBy, buildWhere } from '../sql/search-sql.js';
import { parseContent, parseVersionId, toStoredVersion, type VersionRow } from './rows.js';

/**
 * The reads whose logic is the same in both dialects (search paging and totals, history
 * filtering and paging), over a dialect's way to run `?`-placeholder SQL and answer its rows.
 */
export type RunRows = <R>(sql: string, params: unknown[]) => Promise<R[]> | R[];

/** What differs between dialects in these reads' SQL. */
export interface ReadDialect {
  /** The column with the exact JSON the service answers with. */
  content: string;
  /** A row count as a number (PostgreSQL's COUNT is a BIGINT, which node-postgres answers as a string). */
  count: string;
  /** See SqlDialectOptions in sql/search-sql.ts. */
  explicitNullOrder: boolean;
}

export function versionColumns(dialect: ReadDialect): string {
  return `resource_type, id, version_id, last_updated, deleted, ${dialect.content} AS content`;
}

export async function searchResources(
  query: SearchQuery,
  dialect: ReadDialect,
  rows: RunRows,
): Promise<SearchResult> {
  const where = buildWhere(query);
  const order = buildOrderBy(query, { explicitNullOrder: dialect.explicitNullOrder });
  const page =
    query.count === 0
      ? []
      : await rows<{ content: string }>(
          `SELECT r.${dialect.content} AS content FROM resource r WHERE ${where.sql} ORDER BY ${order.sql} LIMIT ? OFFSET ?`,
          [...where.params, ...order.params, query.count, query.offset],
        );
  const resources = page.map((r) => parseContent(r.content));
  if (!query.total) {
    return { resources };
  }
  // A first page that is not full holds every match: its length is the total, without counting.
  if (query.offset === 0 && resources.length < query.count && query.count > 0) {
    return { resources, total: resources.length };
  }
  const [counted] = await rows<{ n: number }>(
    `SELECT ${dialect.count} AS n FROM resource r WHERE ${where.sql}`,
    where.params,
  );
  return { resources, total: counted?.n ?? 0 };
}

/** Versions newest first (R4 http.html#history), filtered by type, id, `_since` and `_at`. */
export async function historyPage(
  request: HistoryRequest,
  dialect: ReadDialect,
  rows: RunRows,
): Promise<HistoryPage> {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (request.resourceType) {
    clauses.push('resource_type = ?');
    params.push(request.resourceType);
  }
  if (request.id) {
    clauses.push('id = ?');
    params.push(request.id);
  }
  if (request.since) {
    clauses.push('last_updated_ms >= ?');
    params.push(Date.parse(request.since));
  }
  if (request.at) {
    clauses.push('last_updated_ms <= ?');
    params.push(Date.parse(request.at));
  }
  const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
  const versions = await rows<VersionRow>(
    `SELECT ${versionColumns(dialect)} FROM resource_version ${where} ORDER BY seq DESC LIMIT ? OFFSET ?`,
    [...params, request.count, request.offset],
  );
  const [counted] = await rows<{ n: number }>(
    `SELECT ${dialect.count} AS n FROM resource_version ${where}`,
    params,
  );
  return { versions: versions.map(toStoredVersion), total: counted?.n ?? 0 };
}

/**
 * Current, non-deleted resources by `Type/id` reference, in the order asked, each once. `fetch`
 * answers the JSON of those it finds, keyed `Type/id`.
 */
export async function referencedResources(
  references: string[],
  fetch: (targets: { type: string; id: string }[]) => Promise<Map<string, string>> | Map<string, string>,
): Promise<Resource[]> {
  const targets = [...new Set(references)].map((reference) => {
    const [type = '', id = ''] = reference.split('/');
    return { type, id };
  });
  if (targets.length === 0) {
    return [];
  }
  const found = await fetch(targets);
  const out: Resource[] = [];
  for (const { type, id } of targets) {
    const content = found.get(`${type}/${id}`);
    if (content !== undefined) {
      out.push(parseContent(content));
    }
  }
  return out;
}

/** One version by its versionId; `fetch` selects the row of a well-formed one. */
export async function versionById(
  versionId: string,
  fetch: (version: number) => Promise<VersionRow | undefined> | VersionRow | undefined,
): Promise<StoredVersion | undefined> {
  const version = parseVersionId(versionId);
  if (version === undefined) {
    return undefined;
  }
  const row = await fetch(version);
  return row && toStoredVersion(row);
}
