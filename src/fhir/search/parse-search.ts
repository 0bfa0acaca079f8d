import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { FhirError, toIssue, type IssueInput } from '../errors.js';
import { parseDateRange } from './date-range.js';
import { MAX_PARAMETERS, MAX_REPEATS_PER_PARAMETER, MAX_VALUES_PER_PARAMETER } from './search-limits.js';
import { normalizeString } from './normalize.js';
import {
  getAllSearchParameters,
  getIndexedSearchParameters,
  type IndexedSearchParameter,
} from './search-parameters.js';
import type {
  RangePrefix,
  RangeValue,
  SearchFilter,
  SearchQuery,
  SortRule,
  TokenValue,
} from './search-query.js';

/**
 * Parses a FHIR search (https://hl7.org/fhir/R4/search.html) into a `SearchQuery` plus the
 * result-shaping parameters. Unknown parameters are reported back as warnings (or rejected under
 * `Prefer: handling=strict`); a known parameter used wrongly (bad modifier, bad value) is always
 * a 400, since ignoring it would return wrong results.
 */
export interface IncludeRequest {
  /** The resource type that holds the reference parameter. */
  sourceType: string;
  code: string;
  targetType?: string;
  iterate: boolean;
}

export interface ParsedSearch {
  query: SearchQuery;
  include: IncludeRequest[];
  revinclude: IncludeRequest[];
  elements?: string[];
  summary?: 'true' | 'text' | 'data' | 'count' | 'false';
  /** Issues to report in the searchset's OperationOutcome (unknown parameters, ignored ones). */
  warnings: OperationOutcomeIssue[];
}

export interface ParseOptions {
  strict: boolean;
  defaultCount?: number;
  maxCount?: number;
}

const PREFIXES: RangePrefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];
/** Result parameters that change only the shape of the answer and are safe to accept. */
const IGNORED_RESULT_PARAMETERS = new Set(['_format', '_pretty']);

export function parseSearch(
  resourceType: string,
  params: [string, string][],
  options: ParseOptions,
): ParsedSearch {
  const defaultCount = options.defaultCount ?? 20;
  const maxCount = options.maxCount ?? 1000;
  const parsed: ParsedSearch = {
    // Counting every match costs a second query over all of them; FHIR makes Bundle.total optional
    // (https://hl7.org/fhir/R4/search.html#total), so it is counted only when asked for.
    query: { resourceType, filters: [], sort: [], count: defaultCount, offset: 0, total: false },
    include: [],
    revinclude: [],
    warnings: [],
  };
  const errors: IssueInput[] = [];
  const indexed = getIndexedSearchParameters(resourceType);
  const all = getAllSearchParameters(resourceType);
  if (params.length > MAX_PARAMETERS) {
    throw new FhirError({
      code: 'invalid-search-parameter',
      message: `A search takes at most ${MAX_PARAMETERS} parameters; this one has ${params.length}`,
      expression: params[MAX_PARAMETERS]?.[0],
    });
  }
  const repeats = new Map<string, number>();

  for (const [rawName, rawValue] of params) {
    const [name = '', modifier] = splitOnce(rawName, ':');
    const where = `${rawName}`;
    try {
      const seen = (repeats.get(name) ?? 0) + 1;
      repeats.set(name, seen);
      if (seen > MAX_REPEATS_PER_PARAMETER) {
        if (seen === MAX_REPEATS_PER_PARAMETER + 1) {
          errors.push({
            code: 'invalid-search-parameter',
            message: `Search parameter '${name}' is repeated more than ${MAX_REPEATS_PER_PARAMETER} times`,
            expression: name,
          });
        }
        continue;
      }
      switch (name) {
        case '_count':
          parsed.query.count = Math.min(parseNonNegativeInt(rawValue, where), maxCount);
          continue;
        case '_offset':
          parsed.query.offset = parseNonNegativeInt(rawValue, where);
          continue;
        case '_total':
          if (!['none', 'estimate', 'accurate'].includes(rawValue)) {
            throw issue('invalid-search-parameter', `_total must be none, estimate or accurate`, where);
          }
          parsed.query.total = rawValue !== 'none';
          continue;
        case '_summary':
          if (!['true', 'text', 'data', 'count', 'false'].includes(rawValue)) {
            throw issue(
              'invalid-search-parameter',
              `_summary must be true, text, data, count or false`,
              where,
            );
          }
          parsed.summary = rawValue as ParsedSearch['summary'];
          continue;
        case '_elements':
          parsed.elements = splitValues(rawValue, where)
            .map((e) => e.trim())
            .filter(Boolean);
          continue;
        case '_sort':
          parsed.query.sort = parseSort(resourceType, splitValues(rawValue, where), indexed);
          continue;
        case '_include':
        case '_revinclude':
          (name === '_include' ? parsed.include : parsed.revinclude).push(
            parseInclude(rawValue, modifier, where, name === '_include' ? resourceType : undefined),
          );
          continue;
        case '_id':
          parsed.query.filters.push({
            kind: 'id',
            values: splitValues(rawValue, where),
            not: modifier === 'not',
          });
          if (modifier && modifier !== 'not') {
            throw issue('invalid-search-parameter', `Modifier :${modifier} is not supported on _id`, where);
          }
          continue;
        case '_lastUpdated':
          if (modifier) {
            throw issue(
              'invalid-search-parameter',
              `Modifier :${modifier} is not supported on _lastUpdated`,
              where,
            );
          }
          parsed.query.filters.push({
            kind: 'lastUpdated',
            values: splitValues(rawValue, where).map((v) => parseDateValue(v, where)),
          });
          continue;
      }
      if (IGNORED_RESULT_PARAMETERS.has(name)) {
        continue;
      }
      const param = indexed.get(name);
      if (!param) {
        const known = all[name] !== undefined;
        const message = name.includes('.')
          ? `Chained search parameter '${rawName}' is not supported`
          : known
            ? `Search parameter '${name}' (type ${all[name]?.type}) is not supported by this server`
            : `Unknown search parameter '${name}' for ${resourceType}`;
        const warning = { code: 'unknown-search-parameter' as const, message, expression: where };
        if (options.strict) {
          errors.push(warning);
        } else {
          parsed.warnings.push(toIssue({ ...warning, severity: 'warning' }));
        }
        continue;
      }
      parsed.query.filters.push(parseFilter(param, modifier, rawValue, where));
    } catch (err) {
      if (err instanceof IssueThrow) {
        errors.push(err.input);
      } else {
        throw err;
      }
    }
  }
  if (errors.length > 0) {
    throw new FhirError(errors[0] as IssueInput, errors.slice(1));
  }
  return parsed;
}

class IssueThrow extends Error {
  constructor(readonly input: IssueInput) {
    super(input.message);
  }
}

function issue(code: IssueInput['code'], message: string, expression: string): IssueThrow {
  return new IssueThrow({ code, message, expression });
}

function parseFilter(
  param: IndexedSearchParameter,
  modifier: string | undefined,
  raw: string,
  where: string,
): SearchFilter {
  const { code, table } = param;
  if (modifier === 'missing') {
    if (raw !== 'true' && raw !== 'false') {
      throw issue('invalid-search-parameter', `:missing takes true or false`, where);
    }
    return { kind: 'missing', code, table, missing: raw === 'true' };
  }
  const values = splitValues(raw, where);
  if (values.length === 0 || values.some((v) => v === '')) {
    throw issue('invalid-search-parameter', `Search parameter '${where}' has an empty value`, where);
  }
  switch (table) {
    case 'string':
      if (modifier && modifier !== 'exact' && modifier !== 'contains') {
        throw unsupportedModifier(modifier, 'string', where);
      }
      return {
        kind: 'string',
        code,
        match: modifier === 'exact' ? 'exact' : modifier === 'contains' ? 'contains' : 'start',
        values: modifier === 'exact' ? values : values.map(normalizeString),
      };
    case 'token':
      if (modifier && modifier !== 'not') {
        throw unsupportedModifier(modifier, 'token', where);
      }
      return { kind: 'token', code, not: modifier === 'not', values: values.map(parseTokenValue) };
    case 'reference': {
      if (modifier && !param.targets.includes(modifier)) {
        throw issue(
          'invalid-search-parameter',
          `Modifier :${modifier} is not supported on reference parameter '${code}' (allowed types: ${param.targets.join(', ')})`,
          where,
        );
      }
      return {
        kind: 'reference',
        code,
        values: values.map((v) => {
          if (/^[A-Za-z0-9\-.]{1,64}$/.test(v)) {
            return modifier ? { targetType: modifier, targetId: v } : { targetId: v };
          }
          const m = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(v);
          if (m && !/^[a-z]+:/.test(v)) {
            return { targetType: m[1], targetId: m[2] };
          }
          return { reference: v };
        }),
      };
    }
    case 'date':
      rejectModifier(modifier, 'date', where);
      return { kind: 'date', code, values: values.map((v) => parseDateValue(v, where)) };
    case 'number':
      rejectModifier(modifier, 'number', where);
      return { kind: 'number', code, values: values.map((v) => parseNumberValue(v, where)) };
    case 'quantity':
      rejectModifier(modifier, 'quantity', where);
      return {
        kind: 'quantity',
        code,
        values: values.map((v) => {
          const [num = '', system, unit] = splitEscaped(v, '|');
          return { ...parseNumberValue(num, where), system: system || undefined, unit: unit || undefined };
        }),
      };
    case 'uri':
      if (modifier && modifier !== 'below' && modifier !== 'above') {
        throw unsupportedModifier(modifier, 'uri', where);
      }
      return {
        kind: 'uri',
        code,
        match: modifier === 'below' ? 'below' : modifier === 'above' ? 'above' : 'exact',
        values,
      };
  }
}

function unsupportedModifier(modifier: string, type: string, where: string): IssueThrow {
  return issue(
    'invalid-search-parameter',
    `Modifier :${modifier} is not supported on ${type} parameters`,
    where,
  );
}

function rejectModifier(modifier: string | undefined, type: string, where: string): void {
  if (modifier) {
    throw unsupportedModifier(modifier, type, where);
  }
}

function parseTokenValue(v: string): TokenValue {
  const parts = splitEscaped(v, '|');
  if (parts.length === 1) {
    return { value: parts[0] };
  }
  const [system = '', value = ''] = parts;
  return { system: system === '' ? null : system, value: value === '' ? undefined : value };
}

function parsePrefix(v: string): [RangePrefix, string] {
  const prefix = v.slice(0, 2) as RangePrefix;
  if (PREFIXES.includes(prefix) && v.length > 2 && /[0-9-]/.test(v[2] ?? '')) {
    return [prefix, v.slice(2)];
  }
  return ['eq', v];
}

function parseDateValue(v: string, where: string): RangeValue {
  const [prefix, text] = parsePrefix(v);
  const range = parseDateRange(text);
  if (!range) {
    throw issue('invalid-search-parameter', `'${v}' is not a valid FHIR date for ${where}`, where);
  }
  return { prefix, ...range };
}

function parseNumberValue(v: string, where: string): RangeValue {
  const [prefix, text] = parsePrefix(v);
  if (!/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text)) {
    throw issue('invalid-search-parameter', `'${v}' is not a valid number for ${where}`, where);
  }
  const value = Number(text);
  if (prefix === 'eq' || prefix === 'ne' || prefix === 'ap') {
    // See https://hl7.org/fhir/R4/search.html#number: "100" means [99.5, 100.5).
    const decimals = /\.(\d+)/.exec(text)?.[1]?.length ?? 0;
    const half = 0.5 * 10 ** -decimals;
    return { prefix, low: value - half, high: value + half };
  }
  return { prefix, low: value, high: value };
}

function parseNonNegativeInt(v: string, where: string): number {
  if (!/^\d{1,9}$/.test(v)) {
    throw issue('invalid-search-parameter', `${where} must be a non-negative integer`, where);
  }
  return Number(v);
}

function parseSort(
  resourceType: string,
  parts: string[],
  indexed: Map<string, IndexedSearchParameter>,
): SortRule[] {
  return parts.map((part) => {
    const descending = part.startsWith('-');
    const code = descending ? part.slice(1) : part;
    if (code === '_id' || code === '_lastUpdated') {
      return { code, descending };
    }
    const param = indexed.get(code);
    if (!param || param.table === 'reference' || param.table === 'uri') {
      throw issue('invalid-search-parameter', `Cannot sort ${resourceType} by '${code}'`, '_sort');
    }
    return { code, table: param.table, descending };
  });
}

function parseInclude(
  raw: string,
  modifier: string | undefined,
  where: string,
  searchType?: string,
): IncludeRequest {
  if (modifier && modifier !== 'iterate') {
    throw issue('invalid-search-parameter', `Modifier :${modifier} is not supported on ${where}`, where);
  }
  const [sourceType = '', code = '', targetType] = raw.split(':');
  if (searchType && sourceType !== searchType && !modifier) {
    throw issue(
      'invalid-search-parameter',
      `_include must start with the searched type ${searchType}`,
      where,
    );
  }
  const param = getIndexedSearchParameters(sourceType).get(code);
  if (!param || param.table !== 'reference') {
    throw issue(
      'invalid-search-parameter',
      `'${raw}' is not a reference search parameter of ${sourceType}`,
      where,
    );
  }
  if (targetType && !param.targets.includes(targetType)) {
    throw issue('invalid-search-parameter', `'${sourceType}:${code}' cannot point at ${targetType}`, where);
  }
  return { sourceType, code, targetType, iterate: modifier === 'iterate' };
}

/**
 * Splits on unescaped commas (https://hl7.org/fhir/R4/search.html#escaping), at most
 * MAX_VALUES_PER_PARAMETER values: each is a clause of the SQL, and an unbounded list would make
 * ever new statement shapes and overrun the database's limits.
 */
function splitValues(raw: string, where: string): string[] {
  const values = splitEscaped(raw, ',');
  if (values.length > MAX_VALUES_PER_PARAMETER) {
    throw issue(
      'invalid-search-parameter',
      `Search parameter '${where}' has more than ${MAX_VALUES_PER_PARAMETER} values`,
      where,
    );
  }
  return values;
}

function splitEscaped(raw: string, separator: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '\\' && i + 1 < raw.length) {
      current += raw[i + 1];
      i++;
    } else if (ch === separator) {
      out.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  out.push(current);
  return out;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
