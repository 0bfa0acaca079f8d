import { fhirError } from '../fhir/errors.js';

/**
 * One FHIR request, worked out once (https://hl7.org/fhir/R4/http.html): the routes, the scope
 * check, the audit record and every Bundle entry read this value, so a rule checked against one
 * parse is never enforced against another.
 */
export type InteractionKind =
  | 'capabilities'
  | 'read'
  | 'vread'
  | 'update'
  | 'conditional-update'
  | 'delete'
  | 'conditional-delete'
  | 'create'
  | 'search-type'
  | 'history-system'
  | 'history-type'
  | 'history-instance'
  | 'batch'
  | 'operation';

export type OperationLevel = 'system' | 'type' | 'instance';

export interface Interaction {
  kind: InteractionKind;
  method: string;
  /** The resource type, when the request names one. */
  type?: string;
  id?: string;
  vid?: string;
  /** The operation's name without `$`, for `kind: 'operation'`. */
  operation?: string;
  /** Where an operation was invoked. */
  level?: OperationLevel;
  /** The query string as name/value pairs (search criteria, conditional criteria, operation parameters). */
  query: [string, string][];
  /** `POST [type]/_search`: the form body adds search parameters. */
  searchViaPost?: boolean;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']);
const TYPE = /^[A-Z][A-Za-z]{0,63}$/;

/**
 * Turns a method, a path relative to the FHIR base (`/Patient/1`, `Patient?x=y` in a Bundle
 * entry) and its query into an Interaction, or throws the OperationOutcome the request deserves
 * (405 for unsupported methods, 404 for paths that name no interaction).
 */
export function classify(method: string, path: string, query: [string, string][] = []): Interaction {
  const m = method.toUpperCase();
  if (!METHODS.has(m)) {
    throw fhirError('method-not-allowed', `Method ${method.slice(0, 16)} is not supported`);
  }
  const parts = splitPath(path);
  const at = { method: m, query };
  const unknown = (): never => {
    throw fhirError('unknown-route', `No FHIR interaction at ${m} /${parts.join('/').slice(0, 100)}`);
  };
  const [first, second, third, fourth] = parts;
  if (first === undefined) {
    return m === 'POST' ? { ...at, kind: 'batch' } : unknown();
  }
  if (first === 'metadata' && parts.length === 1) {
    return m === 'GET' || m === 'HEAD' ? { ...at, kind: 'capabilities' } : unknown();
  }
  if (first === '_history' && parts.length === 1) {
    return isRead(m) ? { ...at, kind: 'history-system' } : unknown();
  }
  if (first.startsWith('$') && parts.length === 1) {
    return operation(at, 'system', first);
  }
  if (!TYPE.test(first)) return unknown();
  const type = first;
  if (second === undefined) {
    if (isRead(m)) return { ...at, kind: 'search-type', type };
    if (m === 'POST') return { ...at, kind: 'create', type };
    if (m === 'PUT') {
      if (query.length === 0) {
        throw fhirError('method-not-allowed', 'PUT needs a resource id or search criteria (conditional update)');
      }
      return { ...at, kind: 'conditional-update', type };
    }
    if (query.length === 0) {
      throw fhirError('method-not-allowed', 'DELETE needs a resource id or search criteria (conditional delete)');
    }
    return { ...at, kind: 'conditional-delete', type };
  }
  if (parts.length === 2) {
    if (second === '_search') {
      return m === 'POST' ? { ...at, kind: 'search-type', type, searchViaPost: true } : unknown();
    }
    if (second === '_history') return isRead(m) ? { ...at, kind: 'history-type', type } : unknown();
    if (second.startsWith('$')) return operation(at, 'type', second, type);
    const id = second;
    if (isRead(m)) return { ...at, kind: 'read', type, id };
    if (m === 'PUT') return { ...at, kind: 'update', type, id };
    if (m === 'DELETE') return { ...at, kind: 'delete', type, id };
    // POST [type]/[id] is no interaction of R4.
    return unknown();
  }
  const id = second as string;
  if (parts.length === 3) {
    if (third === '_history') return isRead(m) ? { ...at, kind: 'history-instance', type, id } : unknown();
    if (third?.startsWith('$')) return operation(at, 'instance', third, type, id);
    return unknown();
  }
  if (parts.length === 4 && third === '_history' && fourth !== undefined) {
    return isRead(m) ? { ...at, kind: 'vread', type, id, vid: fourth } : unknown();
  }
  return unknown();
}

function operation(
  at: { method: string; query: [string, string][] },
  level: OperationLevel,
  segment: string,
  type?: string,
  id?: string,
): Interaction {
  const name = segment.slice(1);
  if (!/^[A-Za-z][A-Za-z0-9-]{0,63}$/.test(name)) {
    throw fhirError('unknown-route', `'${segment.slice(0, 64)}' is not an operation name`);
  }
  return { ...at, kind: 'operation', level, operation: name, type, id };
}

function isRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/**
 * Path segments, %-decoded. A malformed %-escape names nothing (404), never an exception (500).
 * Empty segments (a trailing slash) are dropped, as Express's non-strict routing did.
 */
function splitPath(path: string): string[] {
  return path
    .split('/')
    .filter((p) => p !== '')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return '\u0000';
      }
    });
}

/** The query string of a URL or Bundle entry URL as name/value pairs. */
export function queryPairs(search: string): [string, string][] {
  return [...new URLSearchParams(search)];
}

/**
 * A Bundle entry's `request.url` relative to the base (`Patient/1`, `Patient?identifier=x`, or an
 * absolute URL under the base), split into the path and the query that `classify` takes.
 */
export function splitEntryUrl(url: string, baseUrl: string): { path: string; query: [string, string][] } {
  const relative = url.startsWith(`${baseUrl}/`) ? url.slice(baseUrl.length + 1) : url;
  const i = relative.indexOf('?');
  const path = i < 0 ? relative : relative.slice(0, i);
  return { path, query: i < 0 ? [] : queryPairs(relative.slice(i + 1)) };
}
