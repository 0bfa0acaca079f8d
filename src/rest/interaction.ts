import { fhirError } from '../fhir/errors.js';
import { isKnownResourceType } from '../fhir/definitions.js';

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

/**
 * Turns a method, a path relative to the FHIR base (`/Patient/1`, `Patient?x=y` in a Bundle
 * entry) and its query into an Interaction, or throws the OperationOutcome the request deserves
 * (405 for unsupported methods, 404 for paths that name no interaction or no R4 resource type).
 *
 * The keywords (`metadata`, `_history`, `_search`, `$operation`) are matched on the path as sent,
 * as the former Express routes were: `/%6Detadata` is not the CapabilityStatement (it names a type
 * that does not exist). Only the values (type, id, version id) are %-decoded.
 */
export function classify(method: string, path: string, query: [string, string][] = []): Interaction {
  const m = method.toUpperCase();
  if (!METHODS.has(m)) {
    throw fhirError('method-not-allowed', `Method ${method.slice(0, 16)} is not supported`);
  }
  const raw = path.split('/').filter((p) => p !== '');
  const at = { method: m, query };
  const unknown = (): never => {
    throw fhirError('unknown-route', `No FHIR interaction at ${m} /${raw.join('/').slice(0, 100)}`);
  };
  const [first, second, third, fourth] = raw;
  if (first === undefined) {
    return m === 'POST' ? { ...at, kind: 'batch' } : unknown();
  }
  if (raw.length > 4) return unknown();
  if (first === 'metadata' && raw.length === 1) {
    return m === 'GET' || m === 'HEAD' ? { ...at, kind: 'capabilities' } : unknown();
  }
  if (first === '_history' && raw.length === 1) {
    return isRead(m) ? { ...at, kind: 'history-system' } : unknown();
  }
  if (first.startsWith('$')) {
    return raw.length === 1 ? operation(at, 'system', first) : unknown();
  }
  const type = resourceType(first);
  if (second === undefined) {
    if (isRead(m)) return { ...at, kind: 'search-type', type };
    if (m === 'POST') return { ...at, kind: 'create', type };
    if (m === 'PUT') {
      if (query.length === 0) {
        throw fhirError(
          'method-not-allowed',
          'PUT needs a resource id or search criteria (conditional update)',
        );
      }
      return { ...at, kind: 'conditional-update', type };
    }
    if (query.length === 0) {
      throw fhirError(
        'method-not-allowed',
        'DELETE needs a resource id or search criteria (conditional delete)',
      );
    }
    return { ...at, kind: 'conditional-delete', type };
  }
  if (raw.length === 2) {
    if (second === '_search') {
      return m === 'POST' ? { ...at, kind: 'search-type', type, searchViaPost: true } : unknown();
    }
    if (second === '_history') return isRead(m) ? { ...at, kind: 'history-type', type } : unknown();
    if (second.startsWith('$')) return operation(at, 'type', second, type);
    const id = decode(second);
    if (isRead(m)) return { ...at, kind: 'read', type, id };
    if (m === 'PUT') return { ...at, kind: 'update', type, id };
    if (m === 'DELETE') return { ...at, kind: 'delete', type, id };
    // POST [type]/[id] is no interaction of R4.
    return unknown();
  }
  const id = decode(second as string);
  if (raw.length === 3) {
    if (third === '_history') return isRead(m) ? { ...at, kind: 'history-instance', type, id } : unknown();
    if (third?.startsWith('$')) return operation(at, 'instance', third, type, id);
    return unknown();
  }
  if (third === '_history' && fourth !== undefined) {
    return isRead(m) ? { ...at, kind: 'vread', type, id, vid: decode(fourth) } : unknown();
  }
  return unknown();
}

/** The type a path names; unknown types answer 404 as every interaction on them would. */
function resourceType(segment: string): string {
  const type = decode(segment);
  if (!isKnownResourceType(type)) {
    throw fhirError(
      'unknown-resource-type',
      `Resource type '${type.slice(0, 64)}' is not an R4 resource type`,
    );
  }
  return type;
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
  return {
    ...at,
    kind: 'operation',
    level,
    operation: name,
    ...(type !== undefined ? { type } : {}),
    ...(id !== undefined ? { id } : {}),
  };
}

function isRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** A %-decoded value; a malformed %-escape is a malformed URL (400), never a 500. */
function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw fhirError('invalid-id', 'The request URL is malformed');
  }
}

/**
 * The route pattern of an interaction, for the request log: it names the shape of the request,
 * never its values (ids and queries may identify a patient).
 */
export function routeOf(interaction: Interaction): string {
  switch (interaction.kind) {
    case 'capabilities':
      return '/metadata';
    case 'batch':
      return '/';
    case 'history-system':
      return '/_history';
    case 'search-type':
      return interaction.searchViaPost ? '/:type/_search' : '/:type';
    case 'create':
    case 'conditional-update':
    case 'conditional-delete':
      return '/:type';
    case 'history-type':
      return '/:type/_history';
    case 'read':
    case 'update':
    case 'delete':
      return '/:type/:id';
    case 'history-instance':
      return '/:type/:id/_history';
    case 'vread':
      return '/:type/:id/_history/:vid';
    case 'operation':
      return interaction.level === 'system'
        ? '/:operation'
        : interaction.level === 'type'
          ? '/:type/:operation'
          : '/:type/:id/:operation';
  }
}

/** The query string of a URL or Bundle entry URL as name/value pairs. */
export function queryPairs(search: string): [string, string][] {
  return [...new URLSearchParams(search)];
}

/**
 * A Bundle entry's `request.url` relative to the base (https://hl7.org/fhir/R4/bundle.html#transaction):
 * `Patient/1`, `Patient?identifier=x`, an absolute URL under the base, or a path under the base's
 * own path (`/fhir/Patient/1`), split into the path and the query that `classify` takes. The query
 * is split off first, so a `/fhir/` inside it never moves the type (`ServiceRequest?x=/fhir/Patient`
 * is a ServiceRequest search).
 */
export function splitEntryUrl(url: string, baseUrl: string): { path: string; query: [string, string][] } {
  const q = url.indexOf('?');
  let path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? [] : queryPairs(url.slice(q + 1));
  const base = baseUrl.replace(/\/+$/, '');
  if (path === base || path.startsWith(`${base}/`)) {
    path = path.slice(base.length);
  } else {
    const basePath = pathOf(base);
    if (basePath && (path === basePath || path.startsWith(`${basePath}/`)))
      path = path.slice(basePath.length);
  }
  return { path, query };
}

function pathOf(url: string): string | undefined {
  try {
    return new URL(url).pathname.replace(/\/+$/, '') || undefined;
  } catch {
    return undefined;
  }
}
