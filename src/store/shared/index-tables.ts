import type { SearchIndexRows } from '../../fhir/search/index-rows.js';
import type { IndexTable } from '../../fhir/search/search-query.js';

/**
 * The search index tables, listed once: the search SQL names them from here, both dialects delete
 * and insert a resource's rows from here, and migration 3 rebuilt their owner indexes from here.
 * (Migration 1's DDL spells the columns out per dialect: column types are dialect syntax.)
 */
export interface IndexColumn {
  /** The property of the SearchIndexRows entry. */
  field: string;
  /** The SQL column. */
  column: string;
  type: 'text' | 'number';
  /**
   * The column is part of a B-tree index key (a `_lookup` or `_literal` index of the schema), so
   * PostgreSQL bounds its size (see `clipIndexedText` in postgres/pg-values.ts).
   */
  keyed: boolean;
}

export interface IndexTableSpec {
  kind: IndexTable;
  table: string;
  /** Which list of SearchIndexRows fills it. */
  rows: keyof SearchIndexRows;
  /** Every table also has resource_type, id and code, which lead these. */
  columns: IndexColumn[];
  /**
   * The migration that created it. Migration 3 rebuilt the tables of migration 1, and must keep
   * doing exactly that on a fresh database when a later migration adds a table here.
   */
  createdIn: number;
}

const text = (field: string, keyed: boolean, column = field): IndexColumn => ({
  field,
  column,
  type: 'text',
  keyed,
});
const number = (field: string): IndexColumn => ({ field, column: field, type: 'number', keyed: true });

export const INDEX_TABLE_SPECS: readonly IndexTableSpec[] = [
  {
    kind: 'token',
    table: 'idx_token',
    rows: 'tokens',
    columns: [text('system', true), text('value', true)],
    createdIn: 1,
  },
  // `value` is what `:exact` compares; no index holds it, so it is kept whole.
  {
    kind: 'string',
    table: 'idx_string',
    rows: 'strings',
    columns: [text('value', false), text('norm', true)],
    createdIn: 1,
  },
  {
    kind: 'reference',
    table: 'idx_reference',
    rows: 'references',
    columns: [
      text('reference', true),
      text('targetType', true, 'target_type'),
      text('targetId', true, 'target_id'),
    ],
    createdIn: 1,
  },
  { kind: 'date', table: 'idx_date', rows: 'dates', columns: [number('low'), number('high')], createdIn: 1 },
  {
    kind: 'number',
    table: 'idx_number',
    rows: 'numbers',
    columns: [number('low'), number('high')],
    createdIn: 1,
  },
  {
    kind: 'quantity',
    table: 'idx_quantity',
    rows: 'quantities',
    columns: [text('system', false), text('unit', false), number('low'), number('high')],
    createdIn: 1,
  },
  { kind: 'uri', table: 'idx_uri', rows: 'uris', columns: [text('value', true)], createdIn: 1 },
];

/** The table of each kind of search parameter, for the search SQL. */
export const INDEX_TABLES = Object.fromEntries(
  INDEX_TABLE_SPECS.map((spec) => [spec.kind, spec.table]),
) as Record<IndexTable, string>;

type Row = Record<string, unknown> & { code: string };

/** The rows of one table in `index`, as value tuples: code, then `spec.columns` (missing → null). */
export function indexTuples(index: SearchIndexRows, spec: IndexTableSpec): unknown[][] {
  return (index[spec.rows] as Row[]).map((row) => [
    row.code,
    ...spec.columns.map((c) => row[c.field] ?? null),
  ]);
}

/**
 * The rows of one table in `index`, as column arrays: codes, then one array per column of
 * `spec.columns`, each value passed through `map` (PostgreSQL bounds keyed text this way).
 */
export function indexColumnArrays(
  index: SearchIndexRows,
  spec: IndexTableSpec,
  map: (value: unknown, column: IndexColumn) => unknown = (value) => value,
): unknown[][] {
  const rows = index[spec.rows] as Row[];
  return [
    rows.map((row) => row.code),
    ...spec.columns.map((column) => rows.map((row) => map(row[column.field], column))),
  ];
}
