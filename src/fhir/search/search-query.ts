/**
 * A search request resolved against the R4 SearchParameters: every filter already knows its index
 * table and how to match. Dialects turn it into SQL; nothing here is SQL.
 */
export type IndexTable = 'token' | 'string' | 'reference' | 'date' | 'number' | 'quantity' | 'uri';

export type RangePrefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

export interface RangeValue {
  prefix: RangePrefix;
  low: number;
  high: number;
}

export interface TokenValue {
  /** undefined: any system; null: no system (`|code`). */
  system?: string | null;
  /** undefined: any code in the system (`system|`). */
  value?: string;
}

export interface ReferenceValue {
  /** The literal reference as sent (absolute URL or canonical). */
  reference?: string;
  targetType?: string;
  targetId?: string;
}

export type SearchFilter =
  | { kind: 'id'; values: string[]; not?: boolean }
  | { kind: 'lastUpdated'; values: RangeValue[] }
  | { kind: 'token'; code: string; not: boolean; values: TokenValue[] }
  | { kind: 'string'; code: string; match: 'start' | 'exact' | 'contains'; values: string[] }
  | { kind: 'reference'; code: string; values: ReferenceValue[] }
  | { kind: 'date' | 'number'; code: string; values: RangeValue[] }
  | { kind: 'quantity'; code: string; values: (RangeValue & { system?: string; unit?: string })[] }
  | { kind: 'uri'; code: string; match: 'exact' | 'below' | 'above'; values: string[] }
  | { kind: 'missing'; code: string; table: IndexTable; missing: boolean };

export interface SortRule {
  /** `_id`, `_lastUpdated`, or a search parameter code held in `table`. */
  code: string;
  table?: IndexTable;
  descending: boolean;
}

export interface SearchQuery {
  resourceType: string;
  filters: SearchFilter[];
  sort: SortRule[];
  count: number;
  offset: number;
  /** Count every match (for `Bundle.total`). */
  total: boolean;
}
