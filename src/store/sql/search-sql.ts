import type {
  IndexTable,
  RangeValue,
  SearchFilter,
  SearchQuery,
  SortRule,
} from '../../fhir/search/search-query.js';
import { INDEX_TABLES } from '../shared/index-tables.js';

/**
 * Turns a SearchQuery into parameterised SQL over the `resource` table and the `idx_*` index
 * tables. Written once for both dialects: it emits `?` placeholders (PostgreSQL numbers them) and
 * only ANSI SQL. Every value is a bound parameter; identifiers come from the one table list (shared/index-tables.ts).
 */
export interface SqlFragment {
  sql: string;
  params: unknown[];
}

/** Highest code point, so `norm >= 'abc' AND norm < 'abc\uffff'` is a prefix match that uses the index. */
const PREFIX_END = '\uffff';

/**
 * The most selective filter drives the query (an `IN` over its index); the others are checked
 * per candidate with correlated `EXISTS` on the owner index. `+r.deleted` keeps SQLite's planner
 * from walking the type/time index and testing every resource of the type, which it does
 * otherwise to avoid a sort (measured: an identifier search at 100k stored went 97 ms → 0.01 ms).
 * Unary `+` is a no-op in PostgreSQL.
 */
export function buildWhere(query: SearchQuery): SqlFragment {
  const clauses = ['r.resource_type = ?', '+r.deleted = 0'];
  const params: unknown[] = [query.resourceType];
  const ordered = [...query.filters].sort((a, b) => selectivityRank(a) - selectivityRank(b));
  ordered.forEach((filter, i) => {
    const fragment = filterSql(query.resourceType, filter, i === 0 ? 'drive' : 'check');
    clauses.push(fragment.sql);
    params.push(...fragment.params);
  });
  return { sql: clauses.join(' AND '), params };
}

/** Lower is more selective, by what such a parameter usually is (an id, a reference, a code, a status). */
function selectivityRank(filter: SearchFilter): number {
  switch (filter.kind) {
    case 'id':
      return filter.not ? 90 : 0;
    case 'reference':
      return 10;
    case 'token':
      if (filter.not) return 90;
      return filter.code === 'identifier' ? 5 : filter.values.some((v) => v.system) ? 30 : 40;
    case 'string':
      return filter.match === 'exact' ? 15 : 20;
    case 'uri':
      return 25;
    case 'quantity':
    case 'number':
      return 50;
    case 'date':
    case 'lastUpdated':
      return 60;
    case 'missing':
      return 95;
  }
}

/** What differs between dialects in the SQL built here. */
export interface SqlDialectOptions {
  /**
   * Spell out where a missing sort value (NULL) goes, as SQLite does by default: first when
   * ascending, last when descending. PostgreSQL's default is the opposite.
   */
  explicitNullOrder?: boolean;
}

export function buildOrderBy(query: SearchQuery, dialect: SqlDialectOptions = {}): SqlFragment {
  const parts: string[] = [];
  const params: unknown[] = [];
  for (const rule of query.sort) {
    const fragment = sortSql(rule);
    const nulls = dialect.explicitNullOrder ? (rule.descending ? ' NULLS LAST' : ' NULLS FIRST') : '';
    parts.push(`${fragment.sql} ${rule.descending ? 'DESC' : 'ASC'}${nulls}`);
    params.push(...fragment.params);
  }
  if (!query.sort.some((r) => r.code === '_lastUpdated')) {
    parts.push('r.last_updated_ms ASC');
  }
  parts.push('r.id ASC');
  return { sql: parts.join(', '), params };
}

function sortSql(rule: SortRule): SqlFragment {
  if (rule.code === '_id') {
    return { sql: 'r.id', params: [] };
  }
  if (rule.code === '_lastUpdated' || !rule.table) {
    return { sql: 'r.last_updated_ms', params: [] };
  }
  const column = { token: 'value', string: 'norm', date: 'low', number: 'low', quantity: 'low' }[
    rule.table as 'token' | 'string' | 'date' | 'number' | 'quantity'
  ];
  const aggregate = rule.descending ? 'MAX' : 'MIN';
  const sortColumn = rule.descending && (rule.table === 'date' || rule.table === 'number') ? 'high' : column;
  return {
    sql: `(SELECT ${aggregate}(s.${sortColumn}) FROM ${INDEX_TABLES[rule.table]} s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.code = ?)`,
    params: [rule.code],
  };
}

type FilterRole = 'drive' | 'check';

function inIndex(
  table: IndexTable,
  resourceType: string,
  code: string,
  condition: SqlFragment,
  negate: boolean,
  role: FilterRole,
): SqlFragment {
  const where = condition.sql ? ` AND (${condition.sql})` : '';
  if (role === 'drive' && !negate) {
    return {
      sql: `r.id IN (SELECT t.id FROM ${INDEX_TABLES[table]} t WHERE t.resource_type = ? AND t.code = ?${where})`,
      params: [resourceType, code, ...condition.params],
    };
  }
  return {
    sql: `${negate ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${INDEX_TABLES[table]} t WHERE t.resource_type = r.resource_type AND t.id = r.id AND t.code = ?${where})`,
    params: [code, ...condition.params],
  };
}

function anyOf(fragments: SqlFragment[]): SqlFragment {
  return {
    sql: fragments.map((f) => `(${f.sql})`).join(' OR '),
    params: fragments.flatMap((f) => f.params),
  };
}

function filterSql(resourceType: string, filter: SearchFilter, role: FilterRole): SqlFragment {
  switch (filter.kind) {
    case 'id':
      return {
        sql: `r.id ${filter.not ? 'NOT IN' : 'IN'} (${filter.values.map(() => '?').join(', ')})`,
        params: filter.values,
      };
    case 'lastUpdated':
      return {
        sql: `(${filter.values.map((v) => `(${rangeSql('r.last_updated_ms', 'r.last_updated_ms', v).sql})`).join(' OR ')})`,
        params: filter.values.flatMap((v) => rangeSql('', '', v).params),
      };
    case 'missing':
      return inIndex(filter.table, resourceType, filter.code, { sql: '', params: [] }, filter.missing, role);
    case 'token':
      return inIndex(
        'token',
        resourceType,
        filter.code,
        anyOf(
          filter.values.map((v) => {
            const parts: string[] = [];
            const params: unknown[] = [];
            if (v.value !== undefined) {
              parts.push('t.value = ?');
              params.push(v.value);
            }
            if (v.system === null) {
              parts.push('t.system IS NULL');
            } else if (v.system !== undefined) {
              parts.push('t.system = ?');
              params.push(v.system);
            }
            return { sql: parts.join(' AND ') || '1 = 1', params };
          }),
        ),
        filter.not,
        role,
      );
    case 'string':
      return inIndex(
        'string',
        resourceType,
        filter.code,
        anyOf(
          filter.values.map((v) =>
            filter.match === 'exact'
              ? { sql: 't.value = ?', params: [v] }
              : filter.match === 'contains'
                ? { sql: "t.norm LIKE ? ESCAPE '\\'", params: [`%${escapeLike(v)}%`] }
                : { sql: 't.norm >= ? AND t.norm < ?', params: [v, v + PREFIX_END] },
          ),
        ),
        false,
        role,
      );
    case 'reference':
      return inIndex(
        'reference',
        resourceType,
        filter.code,
        anyOf(
          filter.values.map((v) => {
            if (v.reference !== undefined) {
              return { sql: 't.reference = ?', params: [v.reference] };
            }
            if (v.targetType !== undefined) {
              return { sql: 't.target_id = ? AND t.target_type = ?', params: [v.targetId, v.targetType] };
            }
            return { sql: 't.target_id = ?', params: [v.targetId] };
          }),
        ),
        false,
        role,
      );
    case 'date':
    case 'number':
      return inIndex(
        filter.kind,
        resourceType,
        filter.code,
        anyOf(filter.values.map((v) => rangeSql('t.low', 't.high', v))),
        false,
        role,
      );
    case 'quantity':
      return inIndex(
        'quantity',
        resourceType,
        filter.code,
        anyOf(
          filter.values.map((v) => {
            const range = rangeSql('t.low', 't.high', v);
            const parts = [range.sql];
            const params = [...range.params];
            if (v.system) {
              parts.push('t.system = ?');
              params.push(v.system);
            }
            if (v.unit) {
              parts.push('t.unit = ?');
              params.push(v.unit);
            }
            return { sql: parts.map((p) => `(${p})`).join(' AND '), params };
          }),
        ),
        false,
        role,
      );
    case 'uri':
      return inIndex(
        'uri',
        resourceType,
        filter.code,
        anyOf(
          filter.values.map((v) =>
            filter.match === 'below'
              ? { sql: 't.value >= ? AND t.value < ?', params: [v, v + PREFIX_END] }
              : filter.match === 'above'
                ? { sql: 'substr(?, 1, length(t.value)) = t.value', params: [v] }
                : { sql: 't.value = ?', params: [v] },
          ),
        ),
        false,
        role,
      );
  }
}

/**
 * Range comparison per https://hl7.org/fhir/R4/search.html#prefix, where the stored value is the
 * range [low, high] and the search value the range [v.low, v.high].
 */
function rangeSql(low: string, high: string, v: RangeValue): SqlFragment {
  switch (v.prefix) {
    case 'eq':
      return { sql: `${low} >= ? AND ${high} <= ?`, params: [v.low, v.high] };
    case 'ne':
      return { sql: `NOT (${low} >= ? AND ${high} <= ?)`, params: [v.low, v.high] };
    case 'gt':
      return { sql: `${high} > ?`, params: [v.high] };
    case 'lt':
      return { sql: `${low} < ?`, params: [v.low] };
    // ge and le: the leading bound is implied by both branches, and lets an index range-scan.
    case 'ge':
      return {
        sql: `${high} >= ? AND (${high} > ? OR (${low} >= ? AND ${high} <= ?))`,
        params: [v.low, v.high, v.low, v.high],
      };
    case 'le':
      return {
        sql: `${low} <= ? AND (${low} < ? OR (${low} >= ? AND ${high} <= ?))`,
        params: [v.high, v.low, v.low, v.high],
      };
    case 'sa':
      return { sql: `${low} > ?`, params: [v.high] };
    case 'eb':
      return { sql: `${high} < ?`, params: [v.low] };
    case 'ap': {
      // "Approximately": the ranges overlap once the search range is widened by 10%.
      const margin = Math.max((v.high - v.low) * 0.1, Math.abs(v.low) * 0.1);
      return { sql: `${low} <= ? AND ${high} >= ?`, params: [v.high + margin, v.low - margin] };
    }
  }
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}
