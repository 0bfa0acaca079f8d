import { fhirError } from '../fhir/errors.js';

/** A request URL inside a Bundle entry (`Patient`, `Patient/1`, `Patient?identifier=x`, ...). */
export interface EntryUrl {
  resourceType: string;
  id?: string;
  versionId?: string;
  /** The query string without `?`, when present. */
  query?: string;
}

export function parseEntryUrl(url: string, baseUrl: string, expression: string): EntryUrl {
  let relative = url.startsWith(baseUrl + '/') ? url.slice(baseUrl.length + 1) : url;
  relative = relative.replace(/^\/+/, '');
  const [path = '', query] = splitOnce(relative, '?');
  const parts = path.split('/');
  const [resourceType = '', id, history, versionId] = parts;
  if (
    !/^[A-Z][A-Za-z]+$/.test(resourceType) ||
    parts.length > 4 ||
    (history !== undefined && history !== '_history')
  ) {
    throw fhirError(
      'invalid-bundle',
      `'${url.slice(0, 200)}' is not a request URL this server understands`,
      expression,
    );
  }
  return { resourceType, id: id || undefined, versionId, query };
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
